"""`backcheck principals`, run as an operator runs it: the token printed once and alone on
stdout, a listing without tokens or hashes, rotation and revocation refusing the old token,
and every refusal one line with its exit code."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from services.errors import AuthenticationError
from services.principals import token_hash
from tests.commands import request_consent
from tests.e2e.test_cli import run


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    return {"BACKCHECK_DATA_DIR": str(tmp_path / "data")}


def authenticate(store: dict[str, str], token: str) -> str:
    """Who the token establishes on the store, or why it is refused."""
    app = build_app(Settings(data_dir=Path(store["BACKCHECK_DATA_DIR"])))
    try:
        return app.authenticate(token).principal
    except AuthenticationError as refused:
        return str(refused)
    finally:
        app.close()


def test_principals_are_added_listed_rotated_and_revoked(store: dict[str, str]) -> None:
    added = run(store, "principals", "add", "hr:li.na", "--role", "recruiter")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("bck_")
    assert added.stdout == token + "\n"  # the token alone on stdout, for a pipe
    assert "shown this once" in added.stderr
    assert authenticate(store, token) == "hr:li.na"

    service = run(
        store, "principals", "add", "svc:ats", "--role", "service", "--kind", "service", "--json"
    )
    assert service.returncode == 0, service.stderr
    issued = json.loads(service.stdout)
    assert (issued["kind"], issued["role"]) == ("service", "service")

    listed = run(store, "principals", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(p["name"], p["revoked"]) for p in json.loads(listed.stdout)] == [
        ("hr:li.na", False),
        ("svc:ats", False),
    ]
    table = run(store, "principals", "list")
    assert "hr:li.na" in table.stdout
    assert "2 principal(s)" in table.stdout
    for shown in (listed.stdout, table.stdout):
        for secret in (token, issued["token"]):
            assert secret not in shown
            assert token_hash(secret) not in shown

    rotated = run(store, "principals", "rotate", "hr:li.na", "--valid-days", "10")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new != token
    assert authenticate(store, token) == "unknown token"
    assert authenticate(store, new) == "hr:li.na"

    revoked = run(store, "principals", "revoke", "hr:li.na", "--reason", "left the company")
    assert revoked.returncode == 0, revoked.stderr
    assert authenticate(store, new) == "token revoked"
    again = run(store, "principals", "revoke", "hr:li.na", "--reason", "again")
    assert again.returncode == 3
    assert again.stderr.strip().startswith("Rule broken (PrincipalRevoked): ")
    assert len(again.stderr.strip().splitlines()) == 1
    listed = run(store, "principals", "list", "--json")
    assert json.loads(listed.stdout)[0]["revoked_reason"] == "left the company"


def test_refused_principal_commands_are_one_line_with_their_exit_code(
    store: dict[str, str],
) -> None:
    assert run(store, "principals", "add", "hr:li.na", "--role", "recruiter").returncode == 0

    twice = run(store, "principals", "add", "hr:li.na", "--role", "recruiter", "--json")
    bad_name = run(store, "principals", "add", "Li Na", "--role", "recruiter")
    bad_role = run(store, "principals", "add", "hr:wu", "--role", "wizard")
    candidate = run(store, "principals", "add", "hr:wu", "--role", "candidate")
    unknown = run(store, "principals", "rotate", "nobody")
    no_candidate = run(store, "principals", "portal-link", "00000000-0000-4000-8000-000000000000")

    assert twice.returncode == 3
    assert json.loads(twice.stdout)["type"] == "PrincipalAlreadyExists"
    assert twice.stderr == ""
    assert (bad_name.returncode, bad_role.returncode, candidate.returncode) == (2, 2, 2)
    assert "field name" in bad_name.stderr
    assert "field role" in bad_role.stderr
    assert "portal link" in candidate.stderr
    assert unknown.returncode == 4
    assert "no principal named 'nobody'" in unknown.stderr
    assert no_candidate.returncode == 4
    for refused in (bad_name, bad_role, candidate, unknown, no_candidate):
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert refused.stdout == ""


def test_a_candidates_portal_link_is_issued_and_replaced(store: dict[str, str]) -> None:
    registered = run(
        store, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr:li"}', "--json"
    )
    assert registered.returncode == 0, registered.stderr
    candidate = json.loads(registered.stdout)["candidate_id"]

    first = run(store, "principals", "portal-link", candidate, "--valid-days", "7")
    second = run(store, "principals", "portal-link", candidate, "--json")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    link = json.loads(second.stdout)
    assert (link["name"], link["kind"], link["assignments"]) == (
        f"candidate:{candidate}",
        "portal",
        [candidate],
    )
    assert authenticate(store, first.stdout.strip()) == "unknown token"
    assert authenticate(store, link["token"]) == f"candidate:{candidate}"


def test_requesting_consent_sends_the_link_and_says_so_when_it_cannot(
    store: dict[str, str],
) -> None:
    registered = run(
        store, "do", "register-candidate", '{"name": "Zhou Min", "actor": "hr:li"}', "--json"
    )
    assert registered.returncode == 0, registered.stderr
    candidate = json.loads(registered.stdout)["candidate_id"]
    command = json.dumps(request_consent(UUID(candidate)))
    outbox = Path(store["BACKCHECK_DATA_DIR"]) / "outbox" / "portal-links"

    asked = run(store, "do", "request-consent", command)

    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["portal_link"]["status"] == "delivered"
    assert answer["portal_link"]["detail"] == f"outbox/portal-links/{candidate}.json"
    link = json.loads((outbox / f"{candidate}.json").read_bytes())["url"]
    assert link.startswith("http://127.0.0.1:8000/portal#token=bck_")
    token = link.partition("#token=")[2]
    assert token not in asked.stdout + asked.stderr
    assert authenticate(store, token) == f"candidate:{candidate}"

    # the link's file cannot be written (a directory stands in its place): the consent is
    # asked for all the same, exit 0, and the answer says how to send the link
    (outbox / f"{candidate}.json").unlink()
    (outbox / f"{candidate}.json").mkdir()
    again = run(store, "do", "request-consent", command)

    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    answer = json.loads(again.stdout)
    assert answer["status"] == "requested"
    assert answer["portal_link"]["status"] == "undelivered"
    assert f"backcheck principals portal-link {candidate}" in answer["portal_link"]["detail"]
    assert authenticate(store, token) == "unknown token"  # replaced, though not delivered
    resent = run(store, "principals", "portal-link", candidate)
    assert resent.returncode == 0, resent.stderr
    assert authenticate(store, resent.stdout.strip()) == f"candidate:{candidate}"
    assert f"the candidate opens: http://127.0.0.1:8000/portal#token={resent.stdout.strip()}" in (
        resent.stderr
    )
