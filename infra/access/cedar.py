"""The policy decision point: Cedar policies (infra/access/policies/*.cedar) decide each read.

Actions: `read` (one category of a candidate's personal data, asked per category),
`read-access-log` and `read-consents` (a subject's whole access log or consent register,
asked once), and `break-glass` (may the principal state a break-glass justification at all,
asked once per read that states one).

Policies are parsed once. Every attribute a policy looks at travels in the request context
(none in entities, none in principal or resource ids), so a decision depends on the context
alone and is cached by it: the same role asking about the same tier under the same consent
facts gets the same answer without asking Cedar again. Decisions name the policies that made
them (their @id annotations) and the hash of the policy set they came from.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cedarpy
import orjson

from domain.classification import tier_of
from infra.config import ConfigError
from services.access import (
    BREAK_GLASS,
    READ_ACCESS_LOG,
    READ_CONSENTS,
    AccessDecision,
    AccessRequest,
    ViewDecision,
)

_ID = re.compile(r'@id\("([^"]+)"\)\s*(?:permit|forbid)\s*\(')
_POLICY = re.compile(r"^\s*(?:permit|forbid)\s*\(", re.MULTILINE)

Context = tuple[tuple[str, object], ...]
_PRINCIPAL = {"type": "Principal", "id": "p"}  # policies read the context, never the ids
READ = "read"  # one category of a candidate's personal data
_ACTIONS = {
    a: {"type": "Action", "id": a} for a in (READ, READ_ACCESS_LOG, READ_CONSENTS, BREAK_GLASS)
}
_SUBJECT = {"type": "Subject", "id": "s"}
DEFAULT_DENY = "no-policy-permits"  # Cedar denies what no policy permits; named for the record


def default_policy_text() -> str:
    files = sorted(
        (
            f
            for f in resources.files("infra.access").joinpath("policies").iterdir()
            if f.name.endswith(".cedar")
        ),
        key=lambda f: f.name,
    )
    return "\n".join(f.read_text() for f in files)


class CedarDecisionPoint:
    def __init__(self, text: str | None = None, *, cache_size: int = 4096) -> None:
        self.text = text if text is not None else default_policy_text()
        ids = _ID.findall(self.text)
        if len(ids) != len(_POLICY.findall(self.text)):
            raise ConfigError('every access policy needs an @id("...") annotation')
        if len(set(ids)) != len(ids):
            raise ConfigError("access policy ids must be unique")
        self._names = {f"policy{i}": name for i, name in enumerate(ids)}
        self.policy_set_hash = hashlib.sha256(self.text.encode()).hexdigest()
        self._policies = cedarpy.PolicySet.from_str(self.text)
        self._entities = cedarpy.Entities.from_json_str("[]")
        self._decide_context = lru_cache(maxsize=cache_size)(self._ask_cedar)

    @classmethod
    def from_file(cls, path: Path) -> CedarDecisionPoint:
        return cls(path.read_text())

    def _ask_cedar(self, context: Context, action: str = READ) -> tuple[bool, tuple[str, ...]]:
        # A JSON string context and structured ids are the cheapest forms for cedarpy to take.
        result = cedarpy.is_authorized(
            {
                "principal": _PRINCIPAL,
                "action": _ACTIONS[action],
                "resource": _SUBJECT,
                "context": orjson.dumps(dict(context)).decode(),
            },
            self._policies,
            self._entities,
        )
        if result.diagnostics.errors:
            raise ConfigError(f"access policy evaluation failed: {result.diagnostics.errors}")
        reasons = tuple(self._names.get(r, r) for r in result.diagnostics.reasons)
        return bool(result.allowed), reasons or (DEFAULT_DENY,)

    def context_for(self, request: AccessRequest, category: str) -> Context:
        return (
            ("role", request.role.value),
            ("tier", tier_of(category).value),
            ("self", request.is_subject),
            ("handles", request.handles),
            ("assigned", request.assigned),
            ("in_plan", category in request.planned_categories),
            ("in_report", category in request.report_categories),
            ("disclosed", category in request.disclosed_categories),
            ("break_glass", bool(request.break_glass and request.break_glass.strip())),
            ("consent_active", request.consent_active),
            ("purpose_consented", request.purpose in request.consented_purposes),
            ("category_named", category in request.named_categories),
            ("view", request.view),
        )

    def decide(self, request: AccessRequest) -> AccessDecision:
        allowed: list[str] = []
        withheld: list[str] = []
        reasons: dict[str, tuple[str, ...]] = {}
        for category in dict.fromkeys(request.categories):
            ok, why = self._decide_context(self.context_for(request, category))
            (allowed if ok else withheld).append(category)
            reasons[category] = why
        return AccessDecision(
            allowed=tuple(allowed),
            withheld=tuple(withheld),
            policy_ids=tuple(sorted({p for why in reasons.values() for p in why})),
            policy_set_hash=self.policy_set_hash,
            reasons=reasons,
        )

    def decide_view(self, action: str, request: AccessRequest) -> ViewDecision:
        if action == READ or action not in _ACTIONS:
            raise ValueError(f"{action!r} is not a view or action the policies decide whole")
        context = (
            ("role", request.role.value),
            ("self", request.is_subject),
            ("handles", request.handles),
            ("assigned", request.assigned),
        )
        ok, why = self._decide_context(context, action)
        return ViewDecision(ok, tuple(sorted(why)), self.policy_set_hash)

    def cache_info(self) -> str:
        return str(self._decide_context.cache_info())
