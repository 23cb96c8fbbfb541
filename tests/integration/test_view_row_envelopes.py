"""A view row rewritten in a batch keeps the envelope of each value it was read with, where that
value goes back unchanged to the same place (infra/views/codec.py: one encryption for the value
added, not one for every value the row holds); a value changed, moved or sealed with an older
key is sealed anew, and every value still opens where it is."""

from __future__ import annotations

import dataclasses
from uuid import uuid4

import orjson

from domain.classification import PersonalField
from infra.privacy.sealing import Sealer
from infra.views.codec import Codec, Opened
from services.application import Backcheck


def codec_of(app: Backcheck) -> Codec:
    sealer = app.mapper.sealer  # type: ignore[attr-defined]
    assert isinstance(sealer, Sealer)
    return Codec(sealer)


def test_a_row_rewritten_keeps_the_envelopes_of_its_unchanged_values(
    sqlite_app: Backcheck,
) -> None:
    codec, subject = codec_of(sqlite_app), str(uuid4())
    name = PersonalField("name", "user.name", "Li Lei")
    email = PersonalField("email", "user.contact.email", "li.lei@example.com")
    stored = codec.encode("profile", subject, subject, {"identity": [name, email]})
    before = orjson.loads(stored)["identity"]

    noted: Opened = {}
    row = codec.decode("profile", subject, subject, stored, noted)
    employer = PersonalField("employer", "user.employment.employer", "Acme Logistics Ltd")
    row["claims"] = [employer]
    rewritten = codec.encode("profile", subject, subject, row, noted)
    after = orjson.loads(rewritten)

    assert after["identity"] == before  # the very same envelopes, not sealed again
    assert after["claims"][0]["sealed"] not in {e["sealed"] for e in before}
    assert codec.decode("profile", subject, subject, rewritten) == {
        "identity": [name, email],
        "claims": [employer],
    }


def test_a_value_changed_or_moved_is_sealed_anew_and_opens_where_it_is(
    sqlite_app: Backcheck,
) -> None:
    codec, subject = codec_of(sqlite_app), str(uuid4())
    name = PersonalField("name", "user.name", "Li Lei")
    email = PersonalField("email", "user.contact.email", "li.lei@example.com")
    stored = codec.encode("profile", subject, subject, {"identity": [name, email]})
    before = orjson.loads(stored)["identity"]

    noted: Opened = {}
    row = codec.decode("profile", subject, subject, stored, noted)
    opened_name, opened_email = row["identity"]
    renamed = dataclasses.replace(opened_name, value="Li Lei-Han")
    moved = {"identity": [renamed], "contact": opened_email}  # email at another path
    rewritten = orjson.loads(codec.encode("profile", subject, subject, moved, noted))

    assert rewritten["identity"][0]["sealed"] != before[0]["sealed"]
    assert rewritten["contact"]["sealed"] != before[1]["sealed"]
    assert codec.decode("profile", subject, subject, orjson.dumps(rewritten)) == {
        "identity": [PersonalField("name", "user.name", "Li Lei-Han")],
        "contact": email,
    }
    # into another row (another place bound in the sealed value): sealed anew for it
    other = str(uuid4())
    elsewhere = orjson.loads(codec.encode("profile", other, subject, {"i": [opened_email]}, noted))
    assert elsewhere["i"][0]["sealed"] != before[1]["sealed"]
    assert codec.decode("profile", other, subject, orjson.dumps(elsewhere)) == {"i": [email]}


def test_a_value_sealed_with_its_tiers_key_is_sealed_anew_with_its_categorys(
    sqlite_app: Backcheck,
) -> None:
    codec, subject = codec_of(sqlite_app), str(uuid4())
    assert codec.sealer is not None
    name = PersonalField("name", "user.name", "Li Lei")
    codec.sealer.by_category = False  # as envelopes were written before keys per category
    try:
        stored = codec.encode("profile", subject, subject, {"identity": [name]})
    finally:
        codec.sealer.by_category = True
    assert "key" not in orjson.loads(stored)["identity"][0]

    noted: Opened = {}
    row = codec.decode("profile", subject, subject, stored, noted)
    rewritten = orjson.loads(codec.encode("profile", subject, subject, row, noted))

    assert rewritten["identity"][0]["key"] == "category"
    assert codec.decode("profile", subject, subject, orjson.dumps(rewritten)) == {
        "identity": [name]
    }
