"""Access records and disclosures get time-ordered ids (UUID version 7): made one after
another, they sort in the order they were made, so the store appends them to its index."""

from __future__ import annotations

import time
from uuid import UUID, uuid4

from domain.access import Access, DataDisclosure
from domain.subject import time_ordered_id


def test_the_id_is_a_version_7_uuid_carrying_the_time_it_was_made_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    made = time_ordered_id()
    after = time.time_ns() // 1_000_000

    assert made.version == 7
    assert made.variant == "specified in RFC 4122"
    assert before <= made.int >> 80 <= after


def test_ids_made_a_millisecond_apart_sort_in_the_order_they_were_made() -> None:
    earlier = [time_ordered_id() for _ in range(50)]
    time.sleep(0.002)
    later = time_ordered_id()

    assert all(e.hex < later.hex for e in earlier)  # as stored: 32 hex digits of text


def test_ids_made_in_the_same_millisecond_do_not_collide() -> None:
    made = {time_ordered_id() for _ in range(20_000)}
    assert len(made) == 20_000


def test_access_records_and_disclosures_are_made_with_them() -> None:
    access = Access.record(
        uuid4(),
        "recruiter:wang",
        "recruiter",
        "screening",
        "profile",
        (),
        (),
        "allowed",
        (),
        "h",
        (),
        authentication="operator",
    )
    disclosure = DataDisclosure.record(
        uuid4(),
        "recruiter:wang",
        "manager:li",
        "screening",
        "email",
        ("user.name",),
        authentication="operator",
        role="recruiter",
    )

    assert isinstance(access.id, UUID)
    assert access.id.version == 7
    assert disclosure.id.version == 7
