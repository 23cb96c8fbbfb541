"""Read decisions counted, by outcome and deciding policy, without the use cases knowing.

The use cases ask a `DecisionPoint` (services/access.py, a port) about every read of personal
data and every whole view they open; the composition root hands them this wrapper around the
real one (Cedar, confined to assignments), which passes each question on unchanged and counts
the answer (`backcheck_read_decisions_total{outcome, policy}`, `infra/ops/metrics.py`).
Services import nothing of it: the import contracts stay as they are.
"""

from __future__ import annotations

from infra.ops import metrics
from services.access import AccessDecision, AccessRequest, DecisionPoint, ViewDecision


class CountedDecisions:
    """A `DecisionPoint` that counts what `inner` decides."""

    def __init__(self, inner: DecisionPoint) -> None:
        self.inner = inner
        self.policy_set_hash = inner.policy_set_hash

    def decide(self, request: AccessRequest) -> AccessDecision:
        decision = self.inner.decide(request)
        metrics.read_decision(decision.outcome.value, decision.policy_ids)
        return decision

    def decide_view(self, action: str, request: AccessRequest) -> ViewDecision:
        decision = self.inner.decide_view(action, request)
        metrics.read_decision(decision.outcome.value, decision.policy_ids)
        return decision
