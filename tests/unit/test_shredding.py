"""The rule behind crypto-shredding (issue 17, defects 7 and 8): which data keys a store must
hold and which it must not, judged from what the stream records (services/shredding.py);
how a view keeps a value whose key is gone unreadable (infra/views/codec.py); and how a key
gone without a recorded erasure is reported (infra/problem.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import orjson
import pytest

from domain.classification import KEY_MISSING_VALUE, WITHHELD_VALUE, PersonalField
from infra.problem import problem_for
from infra.views.codec import Codec, Parsed
from services.errors import DataKeyMissingError
from services.shredding import (
    ERASURE_UNFINISHED,
    MISSING,
    RETENTION_UNFINISHED,
    KeyLedger,
    Recorded,
)

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LI, HAN = uuid4(), uuid4()


def ledger() -> KeyLedger:
    """Li has general and confidential values, Han general ones."""
    found = KeyLedger()
    found.see_values(1, LI, {"general"})
    found.see_values(2, HAN, {"general"})
    found.see_values(3, LI, {"confidential"})
    return found


def test_a_key_gone_with_nothing_recorded_is_missing_and_named_by_subject_and_tier() -> None:
    (missing,) = ledger().missing({(LI, "general"), (HAN, "general")})

    assert (missing.rule, missing.candidate_id, missing.tiers) == (MISSING, LI, ("confidential",))
    assert missing.position == 3  # the first value sealed with it
    assert f"the confidential data key of candidate {LI} is gone" in missing.detail


def test_keys_an_erasure_or_a_retention_run_destroyed_are_not_missing() -> None:
    found = ledger()
    found.see_erasure(HAN, Recorded(4, AT))
    found.see_shred(LI, "confidential", Recorded(5, AT))

    assert found.missing({(LI, "general")}) == []
    assert found.unfinished({(LI, "general")}) == []


def test_an_erasure_with_keys_left_is_unfinished_and_says_how_to_finish_it() -> None:
    found = ledger()
    found.see_erasure(LI, Recorded(4, AT))

    (cut_off,) = found.unfinished({(LI, "confidential"), (HAN, "general")})

    assert (cut_off.rule, cut_off.candidate_id, cut_off.position) == (ERASURE_UNFINISHED, LI, 4)
    assert cut_off.tiers == ("confidential",)
    assert AT.isoformat() in cut_off.detail
    assert f"backcheck subject erase {LI}" in cut_off.detail
    assert found.missing({(LI, "confidential"), (HAN, "general")}) == []


def test_a_retention_run_with_its_key_left_is_unfinished() -> None:
    found = ledger()
    found.see_shred(LI, "confidential", Recorded(5, AT))

    (cut_off,) = found.unfinished({(LI, "general"), (LI, "confidential"), (HAN, "general")})

    assert (cut_off.rule, cut_off.tiers) == (RETENTION_UNFINISHED, ("confidential",))
    assert "backcheck retention run" in cut_off.detail


def test_a_key_made_again_for_values_after_a_retention_run_is_not_taken_for_its_key() -> None:
    found = ledger()
    found.see_shred(LI, "confidential", Recorded(5, AT))
    found.see_values(6, LI, {"confidential"})  # collected again after the shredding

    assert found.unfinished({(LI, "general"), (LI, "confidential"), (HAN, "general")}) == []


def test_parts_of_one_stream_merge_in_order() -> None:
    first, second = KeyLedger(), KeyLedger()
    first.see_values(1, LI, {"general"})
    second.see_values(9, LI, {"general"})
    second.see_erasure(LI, Recorded(10))

    first.merge(second)

    assert (first.first[(LI, "general")], first.last[(LI, "general")]) == (1, 9)
    assert first.erased == {LI: Recorded(10)}


def test_a_key_gone_without_an_erasure_is_its_own_problem_and_exit_code() -> None:
    problem = problem_for(DataKeyMissingError(LI, "general").recorded())

    assert problem is not None
    assert (problem.status, problem.exit_code, problem.type) == (500, 65, "data-key-missing")
    assert problem.line().startswith("Data key missing (data-key-missing): the general data key")
    assert problem.line().endswith("nothing was returned, and the attempt was recorded")


def test_a_value_an_event_could_not_open_is_kept_unreadable_in_a_view_never_erased() -> None:
    codec = Codec(sealer=None)  # a marker needs no key: nothing is sealed
    subject = str(LI)
    row = {"identity": [PersonalField("name", "user.name", KEY_MISSING_VALUE)]}

    stored = codec.encode("profile", subject, subject, row)
    parsed = Parsed.of(subject, subject, stored)

    (marker,) = orjson.loads(stored)["identity"]
    assert marker == {
        "name": "name",
        "category": "user.name",
        "tier": "general",
        "unreadable": True,
    }
    with pytest.raises(DataKeyMissingError, match=f"general data key of candidate {LI}"):
        parsed.open("profile", codec, frozenset({"user.name"}))
    withheld = parsed.open("profile", codec, frozenset())  # a read is decided on this
    assert withheld["identity"][0].value == WITHHELD_VALUE
    again = codec.decode("profile", subject, subject, stored)  # as the projection reads it
    assert codec.encode("profile", subject, subject, again) == stored


def test_a_decoded_value_is_missing_only_when_it_could_not_be_opened() -> None:
    """Replayed events name a value's category and tier, not the key that sealed it: the
    sealer, which read the envelope, marks a value whose key is gone with nothing recorded.
    A value never sealed (a record from before its field was classified) needs no key."""
    from types import SimpleNamespace

    found = KeyLedger()
    gone = PersonalField("school", "user.education", KEY_MISSING_VALUE)
    clear = PersonalField("employer", "user.employment.employer", "Acme")  # from clear text
    events = [
        (1, SimpleNamespace(candidate_id=LI, fields=(clear,))),
        (2, SimpleNamespace(candidate_id=LI, fields=(gone,))),
        (3, SimpleNamespace(candidate_id=HAN, fields=(clear,))),
    ]

    assert [p for p, _ in found.observe(iter(events))] == [1, 2, 3]
    (missing,) = found.missing(set())  # no key held at all: only the unopened value counts

    assert (missing.candidate_id, missing.position) == (LI, 2)
    assert missing.tiers == ("user.education", "general")
    assert "the user.education (general) or general data key" in missing.detail
    found.see_shred(LI, "user.education", Recorded(4, AT))
    assert found.missing(set()) == []  # a recorded shredding covers it
