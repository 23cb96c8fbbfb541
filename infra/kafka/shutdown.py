"""Stopping a daemon on SIGINT or SIGTERM within a bounded time.

Asked to stop, each daemon stops cleanly: the relay once the page in flight is acknowledged
or given up, a faust worker once its consumer has committed what it handled. A clean stop may
wait on the broker (an acknowledgement, a commit, leaving the group), and a broker that went
away or stopped answering would hold it for as long as its clients retry. So the first signal
also starts a deadline: a daemon still stopping `STOP_GRACE` seconds later exits at once, with
one line saying so and exit code 0 (it was asked to stop, and it did).

Nothing is lost by that: the relay records a position only once the broker acknowledged every
event before it, the workers and the intake apply each message once however often it is
delivered, and every write to the store is one transaction.
"""

from __future__ import annotations

import os
import sys
import threading

STOP_GRACE = 8.0  # seconds a daemon may take to stop cleanly once asked

_armed = threading.Lock()


def exit_at_deadline(what: str, grace: float = STOP_GRACE) -> None:
    """Starts the deadline of `what` (e.g. "the relay"), once however many signals come."""
    if not _armed.acquire(blocking=False):
        return
    timer = threading.Timer(grace, _exit_now, args=(what, grace))
    timer.daemon = True
    timer.start()


def _exit_now(what: str, grace: float) -> None:
    try:
        sys.stderr.write(
            f"{what} was still stopping {grace:.0f} s after it was asked to (the Kafka broker "
            "not answering?): exiting now; what was not acknowledged or committed is sent or "
            "read again when it starts again, and applied once\n"
        )
        sys.stderr.flush()
    finally:
        os._exit(0)
