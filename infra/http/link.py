"""The portal link a candidate opens: `<server>/portal#token=<portal link token>`.

The one place the link is formed, for every caller that shows or sends it (`serve --demo`,
`principals portal-link`, the link outbox). The token travels in the fragment, which a browser
never sends to the server, so it reaches no server or proxy log; the portal page
(infra/http/static/portal.js) reads it from there and takes it out of the address bar.
Nothing here needs the web framework, so a process that only sends links does not load it.
"""

from __future__ import annotations

PORTAL_PATH = "/portal"


def portal_link(base: str, token: str) -> str:
    """The link that opens the portal of the server at `base` (scheme://host[:port]) with
    this token."""
    return f"{base.rstrip('/')}{PORTAL_PATH}#token={token}"
