"""`backcheck events` names each record's aggregate by a short id. Access records and
disclosures have time-ordered ids (version 7), which begin with the time: their first eight
digits were the same for every record of a moment, so the table showed them all alike."""

from __future__ import annotations

from uuid import UUID

from domain.subject import time_ordered_id
from infra.cli.events import short_id


def test_time_ordered_ids_made_together_are_told_apart() -> None:
    made = [time_ordered_id() for _ in range(50)]

    assert len({str(i)[:8] for i in made}) < 5  # the weakness: their first digits agree
    assert len({short_id(i) for i in made}) == 50
    assert all(short_id(i) == f"…{str(i)[-8:]}" for i in made)


def test_a_random_id_is_shown_by_its_first_digits_as_before() -> None:
    candidate = UUID("574e81a4-41cd-49a3-a812-dcf1f83fa6d2")

    assert short_id(candidate) == "574e81a4"
