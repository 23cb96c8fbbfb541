"""Impersonation is impossible: what a caller may do comes from its token alone. A candidate's
portal link tries every way a request could name someone else — headers, query parameters,
body fields — and gets nothing more than the link allows; every access it makes is recorded
under the link's principal."""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.principal import principal_id
from services.access import Role
from services.dto import ReadAccessLog
from tests.http import COMPLIANCE, Served, problem
from tests.story import RECRUITER, terms_in

FORGED_HEADERS = {
    "X-Role": "compliance",
    "X-Principal": COMPLIANCE,
    "X-Forwarded-User": COMPLIANCE,
    "X-Remote-User": COMPLIANCE,
    "Role": "compliance",
}
FORGED_QUERY = {"role": "compliance", "principal": COMPLIANCE, "as": COMPLIANCE}


def two_candidates(api: Served) -> tuple[UUID, UUID]:
    ids = []
    for name in ("Li Lei", "Han Meimei"):
        r = api.post(RECRUITER, "/v1/candidates", {"name": name, "email": "x@example.com"})
        assert r.status_code == 201, r.text
        ids.append(UUID(r.json()["candidate_id"]))
    return ids[0], ids[1]


def log_of(api: Served, candidate: UUID) -> list[tuple[str, str, str, str]]:
    entries = api.app.read_access_log(
        ReadAccessLog(
            candidate_id=candidate, principal=COMPLIANCE, role=Role.COMPLIANCE, purpose="audit"
        )
    ).entries
    return [(e.principal, e.role, e.authentication or "", e.outcome) for e in entries]


def test_forged_headers_change_nothing_and_forged_query_parameters_are_refused(
    api: Served,
) -> None:
    mine, other = two_candidates(api)
    api.portal(mine)
    me = f"candidate:{mine}"
    headers = api.as_(me, **FORGED_HEADERS)
    # a query parameter no operation takes is refused (it was ignored): nothing decided
    head = api.head()
    for path, params in (
        ("/v1/me", FORGED_QUERY),
        (f"/v1/candidates/{other}/access-log", {**FORGED_QUERY, "purpose": "audit"}),
    ):
        forged = api.client.get(path, params=params, headers=headers)
        errors = problem(forged, 422, "validation")["errors"]
        assert {(e["field"], e["rule"]) for e in errors} == {
            (name, "unknown_parameter") for name in FORGED_QUERY
        }
    assert api.head() == head
    who = api.client.get("/v1/me", headers=headers)
    assert who.status_code == 200, who.text
    assert who.json() == {
        "principal": me,
        "role": "candidate",
        "authentication": "portal-link",
        "assignments": [str(mine)],
    }
    # another candidate's access log: compliance may read it, this link may not
    r = api.client.get(
        f"/v1/candidates/{other}/access-log", params={"purpose": "audit"}, headers=headers
    )
    assert "principal-assignments" in problem(r, 403, "AccessRefused")["detail"]
    # a store-wide compliance route
    problem(api.client.get("/v1/audit/violations", headers=headers), 403, "use-case-not-permitted")
    # what was recorded names the link, never the forged names
    assert log_of(api, other)[0][:3] == (me, "candidate", "portal-link")
    assert all(entry[0] != COMPLIANCE for entry in log_of(api, other)[:-1])


def test_forged_body_fields_are_refused_and_record_nothing(api: Served) -> None:
    mine, _ = two_candidates(api)
    api.portal(mine)
    me = f"candidate:{mine}"
    head = api.head()
    for forged in ({"actor": COMPLIANCE}, {"principal": COMPLIANCE}, {"role": "compliance"}):
        r = api.post(me, f"/v1/candidates/{mine}/erasure-request", {"reason": "x", **forged})
        body = problem(r, 422, "validation")
        assert body["errors"][0]["rule"] == "extra_forbidden"
    assert api.head() == head


def test_a_portal_link_changes_nothing_about_another_candidate(api: Served) -> None:
    mine, other = two_candidates(api)
    api.portal(mine)
    head = api.head()
    r = api.post(f"candidate:{mine}", f"/v1/candidates/{other}/erasure-request", {"reason": "x"})
    problem(r, 403, "outside-assignments")
    assert api.head() == head
    own = api.post(f"candidate:{mine}", f"/v1/candidates/{mine}/erasure-request", {"reason": "x"})
    assert own.status_code == 200, own.text


def test_a_token_scoped_to_some_candidates_reads_no_other(api: Served) -> None:
    mine, other = two_candidates(api)
    api.issue("compliance:scoped", Role.COMPLIANCE, assignments=(mine,))
    ok = api.get("compliance:scoped", f"/v1/candidates/{mine}/access-log", purpose="audit")
    assert ok.status_code == 200, ok.text
    refused = api.get("compliance:scoped", f"/v1/candidates/{other}/access-log", purpose="audit")
    problem(refused, 403)
    assert ("compliance:scoped", "compliance", "token", "refused") in log_of(api, other)


def test_no_rule_about_another_candidate_is_told_to_a_scoped_principal(api: Served) -> None:
    mine, other = two_candidates(api)
    erased = api.post(RECRUITER, f"/v1/candidates/{other}/erasure-request", {"reason": "asked"})
    assert erased.status_code == 200, erased.text
    api.portal(mine)
    api.issue("hr:scoped", Role.RECRUITER, assignments=(mine,))
    head = api.head()
    for principal, path, body in (
        (f"candidate:{mine}", f"/v1/candidates/{other}/erasure-request", {"reason": "x"}),
        ("hr:scoped", f"/v1/candidates/{other}/erasure-request", {"reason": "x"}),
        ("hr:scoped", f"/v1/candidates/{other}/consents", {"terms": terms_in().model_dump()}),
    ):
        r = api.post(principal, path, body)
        # the other candidate has asked for erasure: a rule would refuse with 409 saying so
        detail = problem(r, 403, "outside-assignments")["detail"]
        assert "erasure" not in detail, detail
    assert api.head() == head


def test_a_candidate_cannot_take_the_id_a_principal_or_portal_link_will_need(api: Served) -> None:
    mine, _ = two_candidates(api)
    head = api.head()
    for name in ("hr:newhire", f"candidate:{mine}"):  # a staff principal; mine's portal link
        squat = api.post(
            RECRUITER, "/v1/candidates", {"name": "Squat", "candidate_id": str(principal_id(name))}
        )
        errors = problem(squat, 422, "validation")["errors"]
        assert [(e["field"], e["rule"]) for e in errors] == [("candidate_id", "uuid_version")]
    assert api.head() == head
    api.issue("hr:newhire", Role.RECRUITER)  # both ids are still free
    api.portal(mine)
    chosen = uuid4()
    taken = api.post(RECRUITER, "/v1/candidates", {"name": "Ok", "candidate_id": str(chosen)})
    assert taken.status_code == 201, taken.text
    assert taken.json()["candidate_id"] == str(chosen)


def test_an_id_a_record_of_another_kind_holds_is_taken_not_already_registered(
    api: Served,
) -> None:
    mine, _ = two_candidates(api)
    asked = api.post(
        RECRUITER, f"/v1/candidates/{mine}/consents", {"terms": terms_in().model_dump()}
    )
    assert asked.status_code == 201, asked.text
    consent = asked.json()["consent_id"]
    head = api.head()
    taken = api.post(RECRUITER, "/v1/candidates", {"name": "Squat", "candidate_id": consent})
    body = problem(taken, 409, "CandidateIdTaken")
    assert "already registered" not in body["detail"]
    assert "is taken" in body["detail"]
    assert str(mine) not in taken.text  # nothing of the record that holds it
    assert "consent" not in body["detail"]
    again = api.post(RECRUITER, "/v1/candidates", {"name": "Again", "candidate_id": str(mine)})
    assert "already registered" in problem(again, 409, "CandidateAlreadyRegistered")["detail"]
    assert api.head() == head


def test_a_scoped_token_lists_nothing_as_a_list_names_every_candidate(api: Served) -> None:
    mine, other = two_candidates(api)
    api.issue("hr:scoped", Role.RECRUITER, assignments=(mine,))
    for path in ("/v1/candidates", "/v1/investigations", "/v1/reports"):
        refused = api.get("hr:scoped", path)
        detail = problem(refused, 403, "outside-assignments")["detail"]
        assert "hr:scoped is scoped to some candidates" in detail
        assert str(other) not in refused.text
        assert api.get(RECRUITER, path).status_code == 200
    listed = api.get(RECRUITER, "/v1/candidates").json()["items"]
    assert {item["candidate_id"] for item in listed} >= {str(mine), str(other)}


def test_two_authorization_headers_sign_no_one_in(api: Served) -> None:
    mine, _ = two_candidates(api)
    recruiter = api.as_(RECRUITER)["Authorization"]
    compliance = api.as_(COMPLIANCE)["Authorization"]
    for first, second in ((recruiter, compliance), (compliance, recruiter)):
        r = api.client.get("/v1/me", headers=[("Authorization", first), ("Authorization", second)])
        assert "2 Authorization headers" in problem(r, 401)["detail"]
        read = api.client.get(
            f"/v1/candidates/{mine}/access-log",
            params={"purpose": "audit"},
            headers=[("Authorization", first), ("Authorization", second)],
        )
        problem(read, 401)


def test_a_refusal_about_another_candidates_consent_does_not_say_whose_it_is(
    api: Served,
) -> None:
    mine, other = two_candidates(api)
    asked = api.post(
        RECRUITER, f"/v1/candidates/{other}/consents", {"terms": terms_in().model_dump()}
    )
    assert asked.status_code == 201, asked.text
    consent = asked.json()["consent_id"]
    api.portal(mine)
    head = api.head()

    r = api.post(f"candidate:{mine}", f"/v1/consents/{consent}/withdrawal", {"reason": "x"})

    problem(r, 403, "outside-assignments")
    assert str(other) not in r.text
    assert api.head() == head


def test_a_scoped_token_is_refused_alike_about_a_candidate_there_or_not(api: Served) -> None:
    """To a token confined to some candidates, every other id is refused the same way, and
    the refusal of a read is recorded the same way: whether a candidate exists is not told
    (an unknown id was 404, a known one 403)."""
    mine, other = two_candidates(api)
    nobody = uuid4()
    api.portal(mine)
    api.issue("hr:scoped", Role.RECRUITER, assignments=(mine,))
    api.issue("compliance:scoped", Role.COMPLIANCE, assignments=(mine,))
    reads = {"purpose": "audit"}
    for principal in (f"candidate:{mine}", "hr:scoped", "compliance:scoped"):
        for method, path, params in (
            ("GET", "profile", reads),
            ("GET", "profile", {**reads, "break_glass": "a court order"}),
            ("GET", "consents", reads),
            ("GET", "access-log", reads),
            ("GET", "timeline", reads),
            ("GET", "as-of", {**reads, "at": "2030-01-01T00:00:00+00:00"}),
            ("GET", "visibility", {}),
            ("POST", "erasure-request", {}),
            ("POST", "access-package", {}),
        ):
            answers = []
            for candidate in (other, nobody):
                r = api.client.request(
                    method,
                    f"/v1/candidates/{candidate}/{path}",
                    params=params,
                    json={"reason": "x"} if path == "erasure-request" else None,
                    headers=api.as_(principal),
                )
                answers.append((r.status_code, r.text.replace(str(candidate), "ID")))
            assert answers[0] == answers[1], (principal, path, answers)
            assert answers[0][0] == 403, (principal, path, answers)
    # the refused reads of the candidate who is not there are in the trail as the others are
    recorded = {(e.principal, e.view, e.outcome) for e in api.app.recorded_accesses(nobody)}
    assert ("hr:scoped", "profile", "refused") in recorded
    assert ("compliance:scoped", "timeline", "refused") in recorded
    assert ("hr:scoped", "profile", "refused") in {
        (e.principal, e.view, e.outcome) for e in api.app.recorded_accesses(other)
    }
    # an unscoped reader is still told an unknown id is unknown, and nothing is recorded
    problem(api.get(COMPLIANCE, f"/v1/candidates/{uuid4()}/profile", purpose="audit"), 404)
