"""The command topic the intake reads, known by its id: the same topic, or one made anew.

A broker that lost its data, or a topic deleted by hand and made again (by the intake, or by a
sender's client on first use), holds a new topic under the old name. Its messages start again
at offset 0, below what the intake's group had read of the old one, and an intake going on from
where it was read none of the commands sent to the new topic until it grew past that offset:
they were neither applied nor answered nor dead-lettered, and nothing said so (one line from
the Kafka client about a commit). Kafka gives each topic an id of its own, so:

- when the intake starts, a command topic whose id is not the one it last read (recorded in
  its data folder) is read from its start (the group's committed offsets dropped, decision
  0046): every command on it is read, and those applied before are answered again, never
  applied twice (their receipts);
- while it runs, it asks for the topic's id every few seconds (`--topic-check-ms`); a topic
  gone is made again with the partitions configured, and, gone or made anew, the intake stops
  with one line and exit code 75 (try again), to be started again (compose restarts it), which
  reads the new topic from its start as above. It stops as on SIGTERM, leaving its group, so
  the next one can drop the group's offsets at once.

A broker that does not answer a check is the consumer's to wait for: only a broker's answer
that the topic is not there, or is another one, stops the intake.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.kafka.topics import kafka_admin, remade_if_lost

EX_TEMPFAIL = 75  # sysexits: start it again
_UNKNOWN_TOPIC = 3  # Kafka's UNKNOWN_TOPIC_OR_PARTITION
RECORD = "command-topic.json"
_NOT_EMPTY = "NonEmptyGroup"  # a group with members: of an intake still running, or just stopped

log = logging.getLogger("backcheck.intake")


class TopicUnknownError(RuntimeError):
    """The broker did not say (it is away, or answered with an error other than no topic)."""


def topic_id(bootstrap: str, topic: str) -> str | None:
    """The topic's id as the broker holds it, or None when the broker says it has no such
    topic. Raises TopicUnknownError when the broker does not say."""
    try:
        admin = kafka_admin(bootstrap)
    except Exception as e:
        raise TopicUnknownError(str(e)) from None
    try:
        described = admin.describe_topics([topic])
    except Exception as e:
        if getattr(e, "errno", None) == _UNKNOWN_TOPIC or "UnknownTopicOrPartition" in repr(e):
            return None
        raise TopicUnknownError(str(e)) from None
    finally:
        admin.close()
    found = next((t for t in described if t.get("name") == topic), None)
    if found is None or found.get("error_code") == _UNKNOWN_TOPIC:
        return None
    if found.get("error_code"):
        raise TopicUnknownError(f"the broker answered error {found['error_code']} about {topic}")
    return str(found.get("topic_id"))


@dataclass(frozen=True)
class CommandTopic:
    """The intake's command topic and what it knows of it: its group, and the file where the
    id of the topic it last read is kept."""

    bootstrap: str
    topic: str
    group: str
    partitions: int  # of the topic, when the intake makes it again
    record: Path
    # seconds to wait for the group's members of before (an intake that stopped on a topic
    # made anew leaves its member to expire) before its offsets can be set
    settle_wait: float = 15.0

    def settle(self) -> str | None:
        """At start (the topic made already): the topic's id; read from its start if it is
        not the topic last read here. None: the broker did not say."""
        try:
            current = topic_id(self.bootstrap, self.topic)
        except TopicUnknownError:
            return None
        if current is None:
            return None
        last = self._last()
        if last is not None and last != current:
            self._from_the_start()
        self._keep(current)
        return current

    def changed(self, known: str | None) -> tuple[str | None, str | None]:
        """While running: why the intake must stop (the topic gone: made again here, by
        another client meanwhile, or not at all; or made anew elsewhere), or None while it is
        the topic `known`; and the topic's id as the broker said it (None: it did not say)."""
        try:
            found = topic_id(self.bootstrap, self.topic)
        except TopicUnknownError:
            return None, known  # the broker away: the consumer waits for it
        if found is None:
            if remade_if_lost(self.bootstrap, self.partitions, self.topic):
                again = f"made again with {self.partitions} partitions"
            else:
                again = self._not_made()
            return f"the broker had lost the command topic {self.topic}: {again}", None
        if known is not None and found != known:
            return f"the command topic {self.topic} was made anew (its topic id changed)", None
        return None, found

    def _not_made(self) -> str:
        """What became of a topic the broker lost that was not made again here: another
        client made it meanwhile (a sender's, on first use), or the broker did not answer or
        refused to make it (`remade_if_lost` said so in a line of its own). The intake stops
        either way; started again, it makes the topic if it is still missing, and reads it
        from its start."""
        try:
            again = topic_id(self.bootstrap, self.topic)
        except TopicUnknownError:
            again = None
        if again is not None:
            return "made again meanwhile by another client, not by this intake"
        return (
            "not made again, as the broker did not answer or refused to make it (the line "
            "before says which); the intake makes it when started again"
        )

    def _from_the_start(self) -> None:
        """The group's committed offsets dropped, so it reads the topic from its start (the
        intake's consumers start at the earliest offset of a partition with none): the group
        is deleted, as it reads only this topic. A group some intake still runs in cannot be:
        that one read the new topic already, from its start."""
        deadline = time.monotonic() + self.settle_wait
        while True:
            try:
                outcome = self._delete_group()
            except Exception as e:
                outcome = f"{type(e).__name__}: {e}"
            # a member of before not yet expired: waited for, as long as a session lasts
            if outcome == "OK" or _NOT_EMPTY not in outcome or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if outcome != "OK":
            log.warning(
                "the command topic %s was made anew since this intake last read it; its group "
                "%s was not set to read it from its start (%s)",
                self.topic,
                self.group,
                outcome,
            )
            return
        log.warning(
            "the command topic %s was made anew since this intake last read it: reading it "
            "from its start (commands applied before are answered again, not applied twice)",
            self.topic,
        )

    def _delete_group(self) -> str:
        admin = kafka_admin(self.bootstrap)
        try:
            answered = admin.delete_groups([self.group])
        finally:
            admin.close()
        found = (answered or {}).get(self.group, "no answer")
        return found if isinstance(found, str) else getattr(found, "__name__", str(found))

    def _last(self) -> str | None:
        try:
            kept: Any = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(kept, dict) or kept.get("topic") != self.topic:
            return None
        found = kept.get("id")
        return found if isinstance(found, str) else None

    def _keep(self, current: str) -> None:
        try:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            partial = self.record.with_suffix(".partial")
            partial.write_text(json.dumps({"topic": self.topic, "id": current}))
            partial.replace(self.record)
        except OSError as e:  # not kept: a topic made anew while stopped is not noticed
            log.warning("could not keep the command topic's id in %s: %s", self.record, e)


class TopicWatch:
    """Asks for the command topic's id every `interval` seconds while the intake runs, and
    stops the intake (`stop_for`) when it is gone or another."""

    def __init__(self, topic: CommandTopic, known: str | None, interval: float) -> None:
        self.topic = topic
        self.known = known  # None until the broker has said
        self.interval = interval

        self.stopped: str | None = None  # why the intake was stopped, if it was

    def check(self) -> str | None:
        """Why the intake must stop, if it must (blocking: the broker is asked)."""
        reason, self.known = self.topic.changed(self.known)
        return reason

    def stop(self, reason: str) -> None:
        """Stops the intake as SIGTERM does (its group left, what it applied committed),
        with one line; its exit code is then 75 (`exit_code`): started again, it reads the
        topic the broker now holds from its start."""
        if self.stopped is not None:
            return
        self.stopped = reason
        log.critical("the command intake stops: %s; start it again to read it", reason)
        os.kill(os.getpid(), signal.SIGTERM)

    def exit_code(self, code: int) -> int:
        """The worker's exit code, or 75 if this watch stopped it."""
        return EX_TEMPFAIL if self.stopped is not None and code == 0 else code
