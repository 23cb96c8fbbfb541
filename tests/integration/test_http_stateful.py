"""Schemathesis' stateful run against the served OpenAPI document: scenarios that follow the
document's links (a new candidate's consent request, its grant, the investigation planned on
it, its report, ...) from one answer to the next, each request checked as the stateless run
checks them (no server error; status codes, content types and response schemas as
documented). On a store the demo story filled, each request made with the token of a
principal whose role may make it (in turn, when several may), so chains go past the first
refusal. The links it follows are counted: they must be the document's own (schemathesis'
inferred links are off), and followed to answers that are not errors, or the run proves
nothing about them.

Bounded by SCHEMATHESIS_SCENARIOS (state machine runs) and SCHEMATHESIS_STEPS (steps in each);
SCHEMATHESIS_SEED starts it elsewhere.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from itertools import count
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.errors import Flaky
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.definitions import OPENAPI_31

from infra.http.table import COMMANDS, READS, CommandRoute, ReadRoute
from services.access import Role
from services.catalogue import USE_CASES
from tests.conformance import CHECKS
from tests.http import Demo, demo_served
from tests.story import INVESTIGATOR, PURPOSE, RECRUITER, REVIEWER

SCENARIOS = int(os.environ.get("SCHEMATHESIS_SCENARIOS", "100"))
STEPS = int(os.environ.get("SCHEMATHESIS_STEPS", "12"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "0"))  # the first suite's; another explores anew
# The story's own staff (its investigator is assigned to its investigation, its reviewer to its
# report), so reads of what the story recorded are permitted to someone and answer with the ids
# whose links go on; strangers would be refused each of them, and no link out of a read followed
STAFF = {
    RECRUITER: Role.RECRUITER,
    INVESTIGATOR: Role.INVESTIGATOR,
    REVIEWER: Role.REVIEWER,
    "compliance:sf": Role.COMPLIANCE,
    "ats:sf": Role.SERVICE,
}
# Who may make each request of the table (the others are refused by role alone: the
# stateless run sends every token)
ROLES: dict[tuple[str, str], frozenset[Role]] = {
    **{("POST", r.path): frozenset(USE_CASES[r.use_case].roles) for r in COMMANDS},
    **{("GET", r.path): frozenset(USE_CASES[r.use_case].roles) for r in READS},
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_served(tmp_path_factory.mktemp("stateful"), STAFF) as demo:
        yield demo


class Followed:
    """The document's links a run followed, by link, those answered 2xx, and what failed.

    A failure is kept when its step fails: Hypothesis then replays the scenario to report it,
    and on a store the first run changed the replay goes another way (it says `Flaky`), so the
    failure itself would be lost."""

    def __init__(self) -> None:
        self.taken: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.failures: list[str] = []
        self.scenarios = 0
        self.statuses: Counter[int] = Counter()


def state_machine(demo: Demo, followed: Followed) -> Any:
    # the dashboard's stream never ends (test_dashboard_http reads it over a connection)
    schema = schemathesis.openapi.from_asgi("/openapi.json", demo.http).exclude(
        path="/v1/dashboard/stream"
    )
    # only the document's own links: a link that vanished from it must not be made up
    schema.config.phases.stateful.inference.algorithms = []
    turn = count()

    def token_for(method: str, path: str) -> str:
        allowed = ROLES.get((method.upper(), path))
        names = [n for n, r in demo.roles.items() if allowed is None or r in allowed]
        return demo.tokens[names[next(turn) % len(names)]]

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            # the purpose the demo's consents name, so reads get past the policies and their
            # answers are checked too, and no drawn If-Match (never an ETag), so commands get
            # to their rules: the stateless run sends drawn purposes and If-Match headers
            if isinstance(case.query, dict) and "purpose" in case.query:
                case.query = {**case.query, "purpose": PURPOSE}
            if case.headers:
                case.headers.pop("If-Match", None)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            token = token_for(case.operation.method, case.operation.path)
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def step(self, input: Any) -> Any:
            try:
                output = super().step(input)
            except Exception as e:
                case = input.case
                followed.failures.append(f"{case.operation.label} {case.path_parameters}: {e}")
                raise
            link = input.transition
            if link is not None and not link.is_inferred and input.is_applied:
                name = link.id.rsplit(" -> ", 1)[0]  # "POST /v1/… -> [201] grant-consent"
                followed.taken[name] += 1
                if output.response.status_code < 300:
                    followed.answered[name] += 1
            followed.statuses[output.response.status_code] += 1
            return output

        def teardown(self) -> None:
            followed.scenarios += 1
            super().teardown()

        def validate_response(
            self,
            response: Any,
            case: Any,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

    return Scenarios


def read_sources(followed: Followed) -> set[str]:
    """The reads of one resource (a path with an id) whose answers' links the run followed."""
    sources = {name.split(" -> ")[0] for name in followed.taken}
    return {s for s in sources if s.startswith("GET ") and "{" in s}


def run_suites(machine: Any, followed: Followed) -> None:
    """Runs scenarios until SCENARIOS have run, as schemathesis' own runner does: a suite ends
    early when Hypothesis finds the store answered a step otherwise than when it first drew it
    (`Flaky`: the store is the state, and it moved on); the next suite starts on another seed.
    Links out of a read are reached only by chains that got a read permitted first (a walk may
    not, on some seeds): until one was followed, suites go on, up to 3 x SCENARIOS.
    A step's failure ends the run."""
    for suite in range(3 * SCENARIOS):
        wanted = SCENARIOS if read_sources(followed) else 3 * SCENARIOS
        left = wanted - followed.scenarios
        if left <= 0 or followed.failures:
            return
        machine.rule_order_seed = SEED + suite
        try:
            run_state_machine_as_test(
                seed(SEED + suite)(machine),
                settings=settings(
                    max_examples=min(left, SCENARIOS),
                    stateful_step_count=STEPS,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except Flaky:
            continue


def test_scenarios_following_the_documents_links_answer_within_it(demo: Demo) -> None:
    followed = Followed()
    run_suites(state_machine(demo, followed), followed)
    print(
        f"{followed.scenarios} scenarios; links followed: {dict(followed.taken)}\n"
        f"answered 2xx: {dict(followed.answered)}\nstatuses: {dict(followed.statuses)}"
    )
    assert not followed.failures, "\n\n".join(followed.failures)
    assert len(followed.taken) >= 10, "the document's links were not followed"
    sources = {name.split(" -> ")[0] for name in followed.taken}
    assert {"POST /v1/candidates", "GET /v1/candidates"} <= sources, sources  # creation, list
    assert read_sources(followed), sources  # a read of one resource
    assert followed.answered, "no link followed led to an answer that was not an error"


# --- the links themselves ---------------------------------------------------------------------

# No answer names a report dispute's id (a report's open disputes are in no answer that
# links: its compilation's are none yet), so nothing links to their rejection.
UNLINKED = {"reject-report-dispute"}


def test_the_served_document_with_its_links_is_valid_openapi_3_1(demo: Demo) -> None:
    document = demo.http.openapi()
    assert document["openapi"].startswith("3.1")
    errors = [str(e) for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(document)]
    assert not errors, errors


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _holds(document: dict[str, Any], schema: dict[str, Any], pointer: str) -> bool:
    """Whether an answer of `schema` has a place at `pointer` (`/checks/0/check_id`)."""
    for part in pointer.strip("/").split("/"):
        schema = _resolve(document, schema)
        if part.isdigit() and schema.get("type") == "array":
            schema = schema["items"]
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        else:
            return False
    return True


def test_every_link_names_an_operation_and_ids_its_answer_holds(demo: Demo) -> None:
    """Each link's operation exists, its parameters are that operation's path parameters (all
    of them) and its body fields the body's, each taken from a place the answer's schema has;
    and every command and read of the table that takes an id is linked to, but those whose id
    no answer names."""
    document = demo.http.openapi()
    targets: set[str] = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                answer = response.get("content", {}).get("application/json", {}).get("schema")
                for name, link in response.get("links", {}).items():
                    path, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
                    target = document["paths"][path.replace("~1", "/").replace("~0", "~")][method]
                    wanted = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                    assert set(link.get("parameters", {})) == wanted, (name, status)
                    body = link.get("requestBody", {})
                    if body:
                        schema = target["requestBody"]["content"]["application/json"]["schema"]
                        assert set(body) <= set(_resolve(document, schema)["properties"]), name
                    for expression in [*link.get("parameters", {}).values(), *body.values()]:
                        assert expression.startswith("$response.body#/"), expression
                        assert answer is not None, (name, status)
                        assert _holds(document, answer, expression.split("#", 1)[1]), expression
                    targets.add(name)
    routes: list[CommandRoute | ReadRoute] = [*COMMANDS, *READS]
    takes_ids = {r.use_case for r in routes if r.path_ids}
    assert targets >= takes_ids - UNLINKED
    assert not targets & UNLINKED
