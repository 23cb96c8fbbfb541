"""Who may look at the demo over HTTP: `backcheck serve --demo` issues tokens for a compliance
officer and a recruiter, and the demo candidate's portal link, and prints them once.

Served again on the same store, the same principals get new tokens (the old ones stop
working): a token is shown only when it is made.
"""

from __future__ import annotations

from uuid import UUID

from domain.errors import RuleBrokenError
from services.access import Role
from services.application import Backcheck
from services.dto import AddPrincipal, IssuePortalLink, RotatePrincipal

DEMO_STAFF = {"compliance:demo": Role.COMPLIANCE, "hr:demo": Role.RECRUITER}
ISSUER = "operator:serve-demo"


def demo_tokens(app: Backcheck, candidate_id: UUID) -> dict[str, str]:
    """name -> token: the demo's staff principals, and the candidate's portal link (named
    `candidate:<id>`)."""
    tokens: dict[str, str] = {}
    for name, role in DEMO_STAFF.items():
        try:
            issued = app.add_principal(AddPrincipal(name=name, role=role, actor=ISSUER))
        except RuleBrokenError:  # served before: a new token for the same principal
            issued = app.rotate_principal(RotatePrincipal(name=name, actor=ISSUER))
        tokens[name] = issued.token
    link = app.issue_portal_link(IssuePortalLink(candidate_id=candidate_id, actor=ISSUER))
    tokens[link.name] = link.token
    return tokens
