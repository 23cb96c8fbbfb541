"""A lost topic that cannot be checked or made again is said where an operator looks
(infra/kafka/topics.py `remade_if_lost`).

After a send to a topic fails, the intake and its command-topic watch ask the broker whether
it lost the topic, and make it again if so. When that admin call itself failed, it was
logged at debug level only: with the default level nothing said why the topic was not made
again, though the sends kept failing.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from infra.kafka.topics import OUTCOMES_TOPIC, remade_if_lost

TOPIC = OUTCOMES_TOPIC
LOGGER = "infra.kafka.topics"


@pytest.fixture
def no_broker() -> Iterator[str]:
    """An address that refuses connections: a port bound here, never listened on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{held.getsockname()[1]}"


def test_a_topic_that_cannot_be_checked_is_said_at_warning_in_one_line(
    no_broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        made = remade_if_lost(no_broker, 3, TOPIC)

    assert made is False  # left to the sender's next try
    [said] = [r for r in caplog.records if r.name == LOGGER]
    assert said.levelno == logging.WARNING
    line = said.getMessage()
    assert "\n" not in line
    assert said.exc_info is None  # one line, no traceback
    assert line == (
        f"could not check whether the broker at {no_broker} still has the topic {TOPIC}, or "
        f"make it again (BrokerUnavailableError: no Kafka broker answered at {no_broker}); "
        "tried again at the next send"
    )
