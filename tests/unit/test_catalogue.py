"""The use-case table `backcheck use-cases` prints states each use case's rule in full."""

from __future__ import annotations

import pytest

from services.catalogue import USE_CASES, UseCase


@pytest.mark.parametrize("use_case", USE_CASES.values(), ids=lambda uc: uc.name)
def test_every_use_case_states_its_rule_in_whole_sentences(use_case: UseCase) -> None:
    summary = use_case.summary
    assert summary != use_case.method.replace("_", " "), "no rule stated, only the name"
    assert "\n" not in summary
    assert "  " not in summary
    assert summary.endswith((".", ")")), f"cut off mid-sentence: {summary!r}"


def test_a_rule_written_over_several_lines_is_given_whole() -> None:
    summary = USE_CASES["erase-subject"].summary
    assert summary.startswith("Crypto-shredding: record the erasure with a signed receipt")
    assert summary.endswith("A legal hold on any of their reports blocks it.")


def test_no_read_is_taken_from_the_command_topic() -> None:
    """A read is a person's recorded access for a stated purpose: a service's command
    topic has no one to answer, so every read use case is refused there."""
    from services.intake import NOT_FROM_SERVICES

    reads = {name for name, uc in USE_CASES.items() if uc.method.startswith("read_")}

    assert reads == {
        "read-profile",
        "read-profiles",
        "read-report",
        "read-investigation",
        "read-access-log",
        "read-consents",
        "read-timeline",
        "read-as-of",
    }
    assert reads <= NOT_FROM_SERVICES.keys()


def test_the_access_package_is_not_taken_from_the_command_topic() -> None:
    """An access package hands the subject's data over: a topic has no one to hand it to."""
    from services.intake import NOT_FROM_SERVICES

    assert "export-subject-data" in USE_CASES
    assert "export-subject-data" in NOT_FROM_SERVICES
    assert {r.value for r in USE_CASES["export-subject-data"].roles} == {"candidate", "compliance"}
