"""`backcheck demo`: a complete, realistic screening story on the configured store.

Told in chapters, one module each, in this order: consent (Wang Fang registered and asked),
plan (nothing starts before consent and notice), claims, findings (witnesses cross-verified),
hearing (her question and dispute), report (review, her dispute, amendment, disclosure),
withdrawal (Liu Yang withdraws consent), reads (decided, redacted, recorded; her access log),
erasure (Liu Yang erased). Each chapter is a function of the app, a `Narrator` and the ids its
predecessors made, and returns the ids it made, so it can be run and tested alone.

Each step is a real use-case call. Where the story meets a rule, it first tries the wrong
thing, shows the refusal (and that nothing was stored), then does it right.
"""

from __future__ import annotations

from infra.demo.narrator import DemoFailedError, Narrator
from infra.demo.story import DemoRun, run_demo, tell_story

__all__ = ["DemoFailedError", "DemoRun", "Narrator", "run_demo", "tell_story"]
