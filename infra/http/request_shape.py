"""What a request to the API must look like before any of its values is read.

- **A body is JSON, and says so.** Its `Content-Type` is `application/json` (or a `+json`
  type); a body sent as anything else, or with no `Content-Type` at all, is 415 Unsupported
  Media Type (RFC 9110 15.5.16), naming the type the API takes: a client says what it sends,
  and the server never guesses (a form or a text body was read as JSON, or refused as invalid
  JSON, before).

Each route checks these only once its caller is known and permitted (a 401 or a 403 comes
first, whatever the request looks like): the table's commands in infra/http/routes.py, the
routes FastAPI serves through `checked_first` (infra/http/auth.py).
"""

from __future__ import annotations

from email.message import Message

from fastapi import Request
from fastapi.responses import JSONResponse

from infra.http.problems import problem_response

JSON_MEDIA = "application/json"
_SHOWN = 100  # of a Content-Type quoted back: enough to recognise it


def is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type, parameters aside; nothing said is not JSON."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def unsupported_media_type(request: Request) -> JSONResponse | None:
    """The 415 for a request with a body not said to be JSON; None when it is said to be."""
    sent = request.headers.get("content-type")
    if is_json(sent):
        return None
    said = (
        f"as {sent[:_SHOWN]!r}" if sent else "without a Content-Type (a client says what it sends)"
    )
    return problem_response(
        415,
        "Unsupported media type",
        "unsupported-media-type",
        f"the body was sent {said}; this API takes JSON: send it with "
        f"`Content-Type: {JSON_MEDIA}`. Nothing was read or recorded",
        request,
        # the media types a POST here takes (the W3C's Accept-Post, in the IANA registry)
        {"Accept-Post": JSON_MEDIA},
        rule="unsupported-media-type",
        accepted=[JSON_MEDIA],
    )
