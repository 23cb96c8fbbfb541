"""Chapter 9: Liu Yang asks to be erased."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.candidate import Candidate
from domain.classification import ERASED_VALUE
from infra.demo.narrator import DemoFailedError, Narrator
from infra.demo.script import COMPLIANCE
from infra.demo.withdrawal import WithdrawalIds
from services import dto
from services.application import Backcheck


@dataclass(frozen=True)
class ErasureIds:
    """Whom compliance erased, and how many of her data keys were destroyed."""

    erased_candidate_id: UUID
    keys_destroyed: int


def erase_on_request(app: Backcheck, n: Narrator, withdrawn: WithdrawalIds) -> ErasureIds:
    """Needs Liu Yang (chapter 7)."""
    n.chapter("9. Liu Yang asks to be erased")
    candidate_id = withdrawn.other_candidate_id
    erased = n.do(
        "compliance erases Liu Yang: her keys are destroyed, a signed receipt is recorded",
        lambda: app.erase_subject(
            dto.EraseSubject(
                candidate_id=candidate_id, reason="candidate request", actor=COMPLIANCE
            )
        ),
    )
    gone = {f.value for f in app.load(Candidate, candidate_id).identity}
    if gone != {ERASED_VALUE}:
        raise DemoFailedError("erasure left a readable personal value")
    n.detail(
        f"{erased.keys_destroyed} key(s) destroyed; her name now reads {ERASED_VALUE}; "
        f"her history (who did what, when) remains"
    )
    return ErasureIds(erased_candidate_id=candidate_id, keys_destroyed=erased.keys_destroyed)
