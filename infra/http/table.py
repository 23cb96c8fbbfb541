"""Which use case answers which method and path: the API's one table.

Each command is `POST` on the resource it changes; the path's ids are the command's own fields
of the same name (never sent twice), and `actor` is the authenticated principal (never sent at
all). A command that creates a resource answers 201 with its `Location`.

The OpenAPI links come from this table too (`links`): an answer that names an id the request
did not send links to every operation that takes it, so a client (and schemathesis' stateful
run) can follow one resource from its creation through the commands and reads on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints

from pydantic import BaseModel

from services.application import Backcheck
from services.catalogue import USE_CASES, UseCase


def path_ids(path: str) -> tuple[str, ...]:
    """The ids a path names, in order: `/v1/a/{x}/b/{y}` -> ("x", "y")."""
    return tuple(p.split("}")[0] for p in path.split("{")[1:])


@dataclass(frozen=True)
class CommandRoute:
    path: str
    use_case: str
    tag: str
    created: str | None = None  # "/v1/…/{id field}…": a new resource, answered 201 with Location
    # the answer's field naming the aggregate created (its version is the ETag): by default
    # the last id of `created`
    new_id: str | None = None
    body_ids: tuple[str, ...] = ()  # ids its body names that earlier answers give (linked)

    @property
    def path_ids(self) -> tuple[str, ...]:
        return path_ids(self.path)


@dataclass(frozen=True)
class ReadRoute:
    path: str
    use_case: str
    tag: str
    values: bool  # a read of personal values (may state a break-glass justification)

    @property
    def path_ids(self) -> tuple[str, ...]:
        return path_ids(self.path)


_C = "candidates"
_K = "consents"
_I = "investigations"
_R = "reports"
_A = "compliance"

COMMANDS: tuple[CommandRoute, ...] = (
    # a Location is a route that answers (a read, given its purpose), never a bare id
    CommandRoute(
        "/v1/candidates", "register-candidate", _C, "/v1/candidates/{candidate_id}/profile"
    ),
    CommandRoute("/v1/candidates/{candidate_id}/claims", "submit-claims", _C),
    CommandRoute("/v1/candidates/{candidate_id}/erasure-request", "request-erasure", _C),
    CommandRoute("/v1/candidates/{candidate_id}/erasure", "erase-subject", _C),
    CommandRoute(
        "/v1/candidates/{candidate_id}/consents",
        "request-consent",
        _K,
        "/v1/candidates/{candidate_id}/consents",
        new_id="consent_id",
    ),
    CommandRoute("/v1/consents/{consent_id}/grant", "grant-consent", _K),
    CommandRoute("/v1/consents/{consent_id}/withdrawal", "withdraw-consent", _K),
    CommandRoute("/v1/consents/{consent_id}/expiry", "expire-consent", _K),
    CommandRoute(
        "/v1/investigations",
        "plan-investigation",
        _I,
        "/v1/investigations/{investigation_id}",
        body_ids=("candidate_id", "consent_id"),
    ),
    CommandRoute("/v1/investigations/{investigation_id}/notice", "notify-candidate", _I),
    CommandRoute("/v1/investigations/{investigation_id}/start", "start-investigation", _I),
    CommandRoute("/v1/investigations/{investigation_id}/resumption", "resume-investigation", _I),
    CommandRoute("/v1/investigations/{investigation_id}/investigators", "assign-investigator", _I),
    CommandRoute("/v1/investigations/{investigation_id}/findings", "record-finding", _I),
    CommandRoute(
        "/v1/investigations/{investigation_id}/checks/{check_id}/conclusion", "conclude-check", _I
    ),
    CommandRoute("/v1/investigations/{investigation_id}/disputes", "raise-dispute", _I),
    CommandRoute(
        "/v1/investigations/{investigation_id}/disputes/{dispute_id}/resolution",
        "resolve-dispute",
        _I,
    ),
    CommandRoute("/v1/investigations/{investigation_id}/feedback", "give-feedback", _I),
    CommandRoute(
        "/v1/investigations/{investigation_id}/feedback/{feedback_id}/answer",
        "answer-feedback",
        _I,
    ),
    CommandRoute("/v1/investigations/{investigation_id}/completion", "complete-investigation", _I),
    CommandRoute("/v1/investigations/{investigation_id}/cancellation", "cancel-investigation", _I),
    CommandRoute(
        "/v1/investigations/{investigation_id}/report",
        "compile-report",
        _R,
        "/v1/reports/{report_id}",
    ),
    CommandRoute("/v1/reports/{report_id}/review", "review-report", _R),
    CommandRoute("/v1/reports/{report_id}/sharing", "share-report", _R),
    CommandRoute("/v1/reports/{report_id}/disputes", "dispute-report", _R),
    CommandRoute(
        "/v1/reports/{report_id}/disputes/{dispute_id}/rejection", "reject-report-dispute", _R
    ),
    CommandRoute("/v1/reports/{report_id}/amendments", "amend-report", _R),
    CommandRoute("/v1/reports/{report_id}/reissue", "reissue-report", _R),
    CommandRoute("/v1/reports/{report_id}/disclosures", "disclose-report", _R),
    CommandRoute("/v1/reports/{report_id}/legal-hold", "place-legal-hold", _R),
    CommandRoute("/v1/reports/{report_id}/legal-hold/release", "release-legal-hold", _R),
    CommandRoute("/v1/reports/{report_id}/destruction", "destroy-report", _R),
)

READS: tuple[ReadRoute, ...] = (
    ReadRoute("/v1/candidates/{candidate_id}/profile", "read-profile", _C, values=True),
    ReadRoute("/v1/candidates/{candidate_id}/consents", "read-consents", _K, values=False),
    ReadRoute("/v1/candidates/{candidate_id}/access-log", "read-access-log", _C, values=False),
    ReadRoute("/v1/candidates/{candidate_id}/timeline", "read-timeline", _A, values=False),
    ReadRoute("/v1/candidates/{candidate_id}/as-of", "read-as-of", _A, values=False),
    ReadRoute("/v1/investigations/{investigation_id}", "read-investigation", _I, values=True),
    ReadRoute("/v1/reports/{report_id}", "read-report", _R, values=True),
)


# --- links ----------------------------------------------------------------------------------

PATH_IDS = frozenset(
    [*(i for r in COMMANDS for i in r.path_ids), *(i for r in READS for i in r.path_ids)]
)


# Lists whose items call their own id `id`: the path parameter it is, by the list's name
# (an investigation's feedback and disputes, services/dto/reads.py ExchangeView).
ITEM_IDS = {"feedback": "feedback_id", "disputes": "dispute_id"}


def answer_ids(model: Any) -> dict[str, str]:
    """Where an answer of `model` names an id some path takes, as JSON pointers: its own field
    of that name, else the first item's of a list it holds (`/checks/0/check_id`, and
    `/feedback/0/id` by ITEM_IDS); the first place found wins."""
    held: dict[str, str] = {}
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return held
    for name, info in model.model_fields.items():
        if name in PATH_IDS:
            held.setdefault(name, f"/{name}")
        item = next(iter(get_args(info.annotation)), None)
        if isinstance(item, type) and issubclass(item, BaseModel):
            for inner in item.model_fields:
                if inner in PATH_IDS:
                    held.setdefault(inner, f"/{name}/0/{inner}")
                elif inner == "id" and name in ITEM_IDS:
                    held.setdefault(ITEM_IDS[name], f"/{name}/0/id")
    return held


def operation_ref(path: str, method: str) -> str:
    """The operation's place in the OpenAPI document, a JSON pointer (RFC 6901 escapes)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def links(held: Mapping[str, str], taken: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """The OpenAPI links of an answer that names the ids `held` (id -> JSON pointer into the
    answer) to a request that sent the ids `taken`: one to each operation of the table that
    takes only ids the answer names, and at least one the request did not send (what the
    request sent, its caller had already; following it again adds nothing). Ids a command's
    body takes are merged into the body schemathesis draws."""
    found: dict[str, dict[str, Any]] = {}
    routes: tuple[CommandRoute | ReadRoute, ...] = (*COMMANDS, *READS)
    for route in routes:
        body = route.body_ids if isinstance(route, CommandRoute) else ()
        wanted = {*route.path_ids, *body}
        if not wanted or not wanted <= held.keys() or wanted <= set(taken):
            continue
        method = "post" if isinstance(route, CommandRoute) else "get"
        link: dict[str, Any] = {
            "operationRef": operation_ref(route.path, method),
            "description": f"{route.use_case} on the {', '.join(sorted(wanted))} named here",
        }
        if route.path_ids:
            link["parameters"] = {i: f"$response.body#{held[i]}" for i in route.path_ids}
        if body:
            link["requestBody"] = {i: f"$response.body#{held[i]}" for i in body}
        found[route.use_case] = link
    return found


def result_model(use_case: UseCase) -> Any:
    """What the use case answers: the route's response model."""
    return get_type_hints(getattr(Backcheck, use_case.method))["return"]


def linked(
    route: CommandRoute | ReadRoute, status: int, responses: dict[int | str, dict[str, Any]]
) -> dict[int | str, dict[str, Any]]:
    """`responses` with the links of the answer (`links`): a creation's and a
    read's, the answers that name ids first; another command answers about the resource its
    path already names."""
    if isinstance(route, CommandRoute) and not route.created:
        return responses
    found = links(answer_ids(result_model(USE_CASES[route.use_case])), route.path_ids)
    if not found:
        return responses
    return {**responses, status: {**responses.get(status, {}), "links": found}}
