"""The chain's hashing: one definition (Python), one optional C core; they must agree."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.audit import chain
from tests.c_core import require_c_core

link_inputs = st.tuples(
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=1, max_value=2**62),
    st.integers(min_value=0, max_value=2**62),
    st.binary(min_size=16, max_size=16),
    st.integers(min_value=1, max_value=2**62),
    st.text(min_size=1, max_size=80).map(str.encode),
    st.binary(max_size=2000),
)


@given(st.lists(link_inputs, max_size=20))
def test_the_batch_definition_is_link_applied_item_by_item(items: list[chain.LinkInput]) -> None:
    assert chain._link_many_python(items) == [chain.link(*item) for item in items]


@given(st.lists(link_inputs, max_size=20))
def test_the_c_core_computes_exactly_the_python_links(items: list[chain.LinkInput]) -> None:
    assert require_c_core(chain._link_many_c)(items) == chain._link_many_python(items)


@given(st.lists(link_inputs, max_size=20))
def test_the_links_come_with_the_records_digests_in_order(items: list[chain.LinkInput]) -> None:
    """What audit verify's chain pass hands the tree pass: the same links, and every record's
    digest as one bytes object, from the Python definition and from the C core alike."""
    links = [chain.link(*item) for item in items]
    digests = b"".join(chain.digest(*item[3:]) for item in items)
    assert chain._link_many_digests_python(items) == (links, digests)


@given(st.lists(link_inputs, max_size=20))
def test_the_c_core_hands_back_the_same_links_and_digests(items: list[chain.LinkInput]) -> None:
    links, digests = chain._link_many_digests_python(items)
    assert require_c_core(chain._link_many_digests_c)(items) == (links, digests)


def test_the_c_core_is_built_where_ci_runs() -> None:
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only CI insists on the accelerator; elsewhere the Python core is used")
    assert chain.ACCELERATED


def test_the_c_core_refuses_malformed_items_instead_of_reading_past_them() -> None:
    link_many = require_c_core(chain._link_many_c)
    with pytest.raises(ValueError, match="32 bytes"):
        link_many([(b"short", 1, 0, bytes(16), 1, b"t", b"s")])
    with pytest.raises(TypeError, match="7-tuple"):
        link_many([(bytes(32), 1, 0)])


def test_a_chain_extends_from_its_head() -> None:
    import uuid

    head = chain.Head(0, chain.GENESIS)
    oid = uuid.uuid4()
    links = chain.extend(head, [(1, oid, 1, "t", b"a"), (2, oid, 2, "t", b"b")])

    assert links[0].hash == chain.link(chain.GENESIS, 1, 0, oid.bytes, 1, b"t", b"a")
    assert links[1].hash == chain.link(links[0].hash, 2, 1, oid.bytes, 2, b"t", b"b")
    assert links[1].prev_position == 1
