"""Fuzzing every use case on both backends: any command yields its events or a named refusal,
never a crash and never a partial write; every stored text comes back as it was sent.

The commands are drawn from each use case's own JSON schema (tests/fuzz.py) against the demo
story's store, their ids taken from the aggregates in it, and one in three is broken once. After
the run the chain still verifies and the read views still equal a rebuild. `FUZZ_EXAMPLES`
(default 150) sets how many commands each test sends. The draws are the same on every run
(derandomised: `make test` and CI do not flake); `FUZZ_RANDOM=1` draws afresh each run, as
`bench/fuzz.py` does with thousands of examples.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.access import Access
from infra.audit.verification import open_source, verify
from infra.config import Settings
from infra.problem import problem_for
from services.access import Role
from services.application import Backcheck
from services.catalogue import USE_CASES
from services.dto import ClaimIn, PersonalFieldIn, ReadProfile, RegisterCandidate, SubmitClaims
from tests.fuzz import TEXT, command
from tests.integration.test_views import runner_of

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # a failure prints the command that caused it
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Categories a candidate may read of themselves (no prohibited tier), one per field drawn.
CATEGORIES = ["user.education", "user.employment.employer", "user.credential", "user.statement"]


def ids_in(app: Backcheck) -> dict[str, list[UUID]]:
    """Every id the stored events name, by the field that names one of its kind: aggregates
    (`consent_id` for a consent's), and the checks, claims and disputes inside them."""
    found: dict[str, dict[UUID, None]] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, UUID) and name.endswith("_id"):
            found.setdefault(name, {})[value] = None
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, key if isinstance(key, str) else name)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, name)
        elif hasattr(value, "__dict__"):
            walk(vars(value), name)

    for _, event in app.replay():
        kind = type(event).__qualname__.split(".")[0].lower()
        found.setdefault(f"{kind}_id", {})[event.originator_id] = None
        walk(vars(event), "")
    return {name: list(pool) for name, pool in found.items()}


def events_since(app: Backcheck, position: int) -> list[object]:
    return [event for at, event in app.replay() if at > position]


def assert_store_whole(app: Backcheck, settings_: Settings) -> None:
    with open_source(settings_) as source:
        verdict = verify(source)
    assert verdict.intact, verdict.first
    runner = runner_of(app)
    runner.catch_up()
    before = runner.store.dump()
    runner.rebuild(batch=500)
    assert runner.store.dump() == before


def test_any_command_yields_its_events_or_a_named_refusal(
    demo_app: Backcheck, settings: Settings
) -> None:
    ids = ids_in(demo_app)
    names = sorted(USE_CASES)
    outcomes: dict[str, int] = {}

    @FUZZ
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(names), label="use case")
        doc = data.draw(command(USE_CASES[name].command.model_json_schema(), ids), label="doc")
        before = demo_app.recorder.max_notification_id() or 0
        error: Exception | None = None
        try:
            USE_CASES[name].run(demo_app, doc)
        except Exception as raised:
            error = raised
        if error is None:
            assert events_since(demo_app, before) or name.startswith("read-"), name
            outcomes["applied"] = outcomes.get("applied", 0) + 1
            return
        problem = problem_for(error)
        assert problem is not None, f"{name} crashed with {error!r}"
        assert 400 <= problem.status < 500, (name, problem)
        # nothing written, but a refused read's own access record
        written = events_since(demo_app, before)
        assert all(isinstance(e, Access.Recorded) for e in written), (name, written)
        outcomes[problem.type] = outcomes.get(problem.type, 0) + 1

    one()
    # the fuzz reached past validation: some commands were applied, some refused by a rule
    assert outcomes.get("applied", 0) > 0, outcomes
    assert len(outcomes) > 3, outcomes
    assert_store_whole(demo_app, settings)


@st.composite
def registration(draw: st.DrawFn) -> tuple[RegisterCandidate, list[PersonalFieldIn]]:
    name = draw(TEXT.filter(lambda s: s.strip()))
    values = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=4))
    fields = [
        PersonalFieldIn(name=f"f{i}", category=CATEGORIES[i % len(CATEGORIES)], value=v)
        for i, v in enumerate(values)
    ]
    return RegisterCandidate(name=name, actor="hr:fuzz"), fields


def test_every_stored_text_reads_back_as_it_was_sent(
    demo_app: Backcheck, settings: Settings
) -> None:
    @FUZZ
    @given(sent=registration())
    def one(sent: tuple[RegisterCandidate, list[PersonalFieldIn]]) -> None:
        register, fields = sent
        candidate = demo_app.register_candidate(register).candidate_id
        demo_app.submit_claims(
            SubmitClaims(
                candidate_id=candidate,
                claims=[ClaimIn(kind="education", fields=fields)],
                actor="hr:fuzz",
            )
        )
        profile = demo_app.read_profile(
            ReadProfile(
                candidate_id=candidate,
                principal=f"candidate:{candidate}",
                role=Role.CANDIDATE,
                purpose="see what is held about me",
            )
        )
        read = {f.name: f.value for f in profile.fields}
        assert read.pop("name") == register.name
        assert read == {f"education.{f.name}": f.value for f in fields}

    one()
    assert_store_whole(demo_app, settings)
