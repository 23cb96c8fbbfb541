"""faust as backcheck runs it: the app's settings, the worker process, and retrying work that
is nobody's message. Shared by the projection workers and the command intake."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from infra.kafka.shutdown import exit_at_deadline
from infra.kafka.topics import broker_security, refuse_topic_auto_creation
from infra.ops import retry

T = TypeVar("T")
_log = logging.getLogger(__name__)

# Messages as bytes, as they came: key, value and headers are the relay's or the sender's.
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def faust_app(
    group: str,
    bootstrap: str,
    partitions: int,
    datadir: str,
    *,
    session_timeout: float,
    heartbeat_interval: float,
    max_poll_interval: float,
    rebalance_timeout: float | None = None,
    wait_empty: bool = True,
) -> Any:
    """A faust app of the consumer group `group` that declares no topics (`ensure_topics`
    creates them with their partitions) and never has the broker create one. With
    `wait_empty`, stopping waits until the messages being handled are done; without, it commits
    what was done and leaves the rest to be delivered again (for agents that apply a message
    once however often it comes, and may be retrying one that cannot be applied yet)."""
    import faust

    refuse_topic_auto_creation()
    timeouts: dict[str, Any] = {}
    if rebalance_timeout is not None:
        timeouts["broker_rebalance_timeout"] = rebalance_timeout
    return faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        broker_credentials=faust_credentials(),
        store="memory://",
        datadir=datadir,
        web_enabled=False,
        topic_partitions=partitions,
        topic_allow_declare=False,  # created with their partitions by `ensure_topics`
        topic_disable_leader=True,  # no leader election here, so no `{group}-__assignor-__leader`
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=heartbeat_interval,
        broker_max_poll_interval=max_poll_interval,
        stream_wait_empty=wait_empty,
        **timeouts,
    )


def faust_credentials() -> Any:
    """The broker's TLS and SASL settings as faust takes them (None: PLAINTEXT), the same as
    every other client's (`broker_security`)."""
    import faust

    security = broker_security()
    context = security.ssl_context()
    if security.protocol.sasl:
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=secret.get_secret_value() if (secret := security.sasl_password) else None,
            mechanism=security.sasl_mechanism and security.sasl_mechanism.value,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def _logging_config() -> dict[str, Any]:
    """faust's logging: on a terminal coloured (mode's coloured formatter asks standard output
    whether it is one, but the log goes to standard error); off one, JSON lines
    (`infra/ops/logs.py`); either way a library's repeated message once a minute at most."""
    from mode.utils.logging import DEFAULT_FORMATTERS

    colored: dict[str, Any] = {"()": "infra.ops.logs.Json"}  # JSON lines off a terminal
    if sys.stderr.isatty():
        colored = {**cast(dict[str, Any], DEFAULT_FORMATTERS["colored"]), "stream": sys.stderr}
    # mode's own handler (its level left to the root logger's), the libraries' repeats held
    # back (a worker whose broker went away wrote 74 lines a second of aiokafka's failures)
    handler = {"class": "colorlog.StreamHandler", "formatter": "colored", "filters": ["repeats"]}
    return {
        "merge": True,
        "formatters": {"colored": colored},
        "filters": {"repeats": {"()": "infra.ops.logs.Repeats"}},
        "handlers": {"default": handler},
    }


def run_faust(app: Any, loglevel: str, redirect_stdouts: bool = True) -> int:
    """Runs a faust worker for `app` until SIGINT/SIGTERM; returns its exit code. Off a
    terminal it writes no escape codes (no colours, no spinner hiding the cursor). Once a
    signal came, it stops within `STOP_GRACE` seconds (`infra/kafka/shutdown.py`)."""
    from faust.worker import Worker as FaustWorker

    class Worker(FaustWorker):
        def _schedule_shutdown(self, signal: Any) -> None:
            exit_at_deadline(f"the faust worker of {app.conf.id}")
            super()._schedule_shutdown(signal)

    threading.excepthook = _thread_failed
    worker = Worker(
        app,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=redirect_stdouts,
        logging_config=_logging_config(),
    )
    if not worker.stdout.isatty():
        worker.spinner = None  # it hides the cursor with an escape code, tty or not
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        return int(stopped.code or 0)
    return 0


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """A thread of the Kafka client that failed (its broker gone, while it stops): one line,
    the traceback at debug level."""
    name = args.thread.name if args.thread is not None else "a thread"
    error = f"{args.exc_type.__name__}: {args.exc_value}"
    _log.error("%s stopped: %s", name, error)
    if args.exc_value is not None:
        _log.debug("%s stopped", name, exc_info=args.exc_value)


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    log: logging.Logger,
    first_delay: float = 1.0,
    process: str = "the faust worker",
) -> T:
    """Tries `attempt` until it succeeds, as long as it fails transiently (`infra/ops/retry.py`:
    the store locked or unreachable, the broker away): moving on would drop the message, so it
    is tried again after a pause, with backoff and jitter up to 30 s, and the worker stays up
    (shutdown cancels the wait). Each failure is one line; its traceback only at debug level.
    Any other failure stops the worker at once with one line, the message not committed
    (delivered again once it is fixed), rather than retry it forever: a known fault with its
    own exit code (a master key rotated away, 78), anything else as a bug (70)."""
    try:
        return await retry.until_done(attempt, what, log, first_delay)
    except Exception as e:
        retry.stop_on_bug(process, what, e)
        raise  # not reached: stop_on_bug exits


def off_the_loop(work: Callable[[], T], executor: Any = None) -> Callable[[], Awaitable[T]]:
    """`work`, run on a thread (`executor`, or the loop's default) when awaited."""
    return lambda: asyncio.get_running_loop().run_in_executor(executor, work)
