"""Rows of a view that holds no personal values are written without the sealing walk — and a
personal value that turns up there anyway is refused, never written in plaintext."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from domain.classification import ERASED_VALUE, PersonalField
from infra.views.codec import Codec
from infra.views.integrity import RowSeal
from projections.read_views import PLAIN_VIEWS

ACCESS_ROW = {
    "access_id": "0b7c6f8e-4a51-4d7c-9a3e-9f2d7d9c1e11",
    "at": "2026-03-02T09:00:00+00:00",
    "position": 42,
    "principal": "recruiter:wang",
    "role": "recruiter",
    "purpose": "pre-employment screening",
    "view": "profile",
    "returned": ["user.name", "user.contact.email"],
    "withheld": ("user.criminal_history",),
    "outcome": "partial",
}


def test_the_access_log_is_declared_plain() -> None:
    assert "access" in PLAIN_VIEWS
    assert "profile" not in PLAIN_VIEWS


def test_a_plain_row_is_stored_exactly_as_the_sealing_walk_would_store_it() -> None:
    codec = Codec(sealer=None)
    # keys sorted, as every row is stored (infra/views/integrity.py: jsonb gives it back so)
    walked = orjson.dumps(codec.seal("access", "k", "s", ACCESS_ROW), option=orjson.OPT_SORT_KEYS)

    assert codec.encode("access", "k", "s", ACCESS_ROW) == walked
    assert codec.decode("access", "k", "s", walked) == {
        **ACCESS_ROW,
        "withheld": ["user.criminal_history"],
    }


def test_a_personal_value_in_a_plain_view_is_refused_not_written() -> None:
    codec = Codec(sealer=None)
    leaked = {**ACCESS_ROW, "note": {"said": PersonalField("note", "user.statement", "divorced")}}

    with pytest.raises(TypeError) as refused:
        codec.encode("access", "k", "s", leaked)

    assert "a personal value in a view declared to hold none" in str(refused.value.__cause__)


def test_a_row_without_envelopes_reads_as_parsed_and_one_with_markers_is_still_opened() -> None:
    """The opening walk is skipped only where the stored bytes hold nothing it would open."""
    codec = Codec(sealer=None)
    plain_row = orjson.dumps({"stage": "registered", "tiers": ["general"], "open": []})
    erased = {"name": "name", "category": "user.name", "erased": True}
    marked = orjson.dumps({"identity": [erased], "erased": False})

    assert codec.decode("dashboard_case", "k", "s", plain_row) == orjson.loads(plain_row)
    assert codec.decode("profile", "k", "s", marked)["identity"] == [
        PersonalField("name", "user.name", ERASED_VALUE)
    ]


def test_a_rows_mac_is_hmac_sha256_of_its_length_prefixed_place_and_document() -> None:
    """The stored format (infra/views/integrity.py): rows written before must still verify."""
    key = bytes(range(32))
    place = [b"profile", b"row-key", b"subject-id"]
    message = b"".join(len(p).to_bytes(4, "big") + p for p in place) + b'{"a":1}'

    made = RowSeal(lambda: key).mac("profile", "row-key", "subject-id", b'{"a":1}')

    assert made == hmac.new(key, message, hashlib.sha256).digest()
    assert RowSeal(lambda: key).mac("profile", "row-key", "subject-id", b'{"a":2}') != made
