"""The schemas of the Kafka headers of each kind of message: CloudEvents 1.0 in binary mode.

What each header holds is `infra/kafka/cloudevent.py`'s, which writes and reads them; the
constants are taken from there (the content type, the length bound of a command's ids, the dead
letters' headers and reasons), so the document moves with it. A header's value is bytes on the
wire; each is described as the UTF-8 text it is. The demo's real messages are checked against
these schemas (tests/integration/test_contract_messages.py): a header the relay adds or drops
fails there until it is described here.
"""

from __future__ import annotations

from typing import Any

from infra.kafka.cloudevent import (
    CONTENT_TYPE,
    DEAD_LETTER_HEADERS,
    MAX_ID_LENGTH,
    DeadLetterReason,
)

JsonSchema = dict[str, Any]

REASONS = (
    "why it was set aside: one of "
    + ", ".join(f"`{reason.value}`" for reason in DeadLetterReason)
    + " (an open set: a reason added later is a new value here, so treat one you do not know "
    "as a refusal)"
)

_POSITION = {"type": "string", "pattern": "^[1-9][0-9]*$"}
_TIME = {"type": "string", "format": "date-time"}


def _text(description: str, **more: Any) -> JsonSchema:
    return {"type": "string", "description": description, **more}


def _headers(properties: dict[str, JsonSchema], optional: tuple[str, ...] = ()) -> JsonSchema:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


SPECVERSION = {"const": "1.0", "description": "CloudEvents 1.0"}
JSON_CONTENT = {"const": CONTENT_TYPE}


def event_headers(ce_type: str) -> JsonSchema:
    """A relayed event's headers; `ce_type` its public name."""
    schema = _headers(
        {
            "ce_specversion": SPECVERSION,
            "ce_id": _text(
                "`{originator id}:{version}`: the same event always has the same id",
                pattern="^[0-9a-f-]{36}:[1-9][0-9]*$",
            ),
            "ce_type": {"const": ce_type, "description": "the event type and its version"},
            "ce_source": _text("/backcheck, or the relay's --source", minLength=1),
            "ce_subject": _text(
                "the data subject (candidate) the event is about; a principal's own id for "
                "a principal's events. Also the message key.",
                format="uuid",
            ),
            "ce_time": {**_TIME, "description": "when the event happened (RFC 3339)"},
            "ce_position": {
                **_POSITION,
                "description": "the event's position in the store's log (extension)",
            },
            "content-type": JSON_CONTENT,
            "ce_prevposition": {
                "type": "string",
                "pattern": "^(0|[1-9][0-9]*)$",
                "description": "the position of the event before it on the same partition "
                "(0: none): a consumer seeing one it has not applied has missed messages",
            },
        }
    )
    schema["additionalProperties"] = False
    return schema


def command_headers(use_case: str) -> JsonSchema:
    """A command's headers, as the intake reads them; `use_case` its `ce_type`."""
    bounded = {"minLength": 1, "maxLength": MAX_ID_LENGTH}
    return _headers(
        {
            "ce_specversion": SPECVERSION,
            "ce_id": _text("the sender's id of the command: applied once per source", **bounded),
            "ce_source": _text(
                "the sending service: the name of its principal holding a sender key, e.g. "
                "`svc:ats` (any other is refused as `unknown-sender`)",
                **bounded,
            ),
            "ce_type": {"const": use_case, "description": "the use case"},
            "ce_time": {
                **_TIME,
                "description": "when it was sent; the intake refuses it beyond its clock skew "
                "(300 s by default) either way. Required of a signed command (without it: "
                "`expired`)",
            },
            "content-type": JSON_CONTENT,
            "ce_keyid": _text(
                "the sender key's id: the first 16 bytes of the SHA-256 of the raw 32-byte "
                "Ed25519 public key, in hex. Required, with ce_signature (without them: "
                "`unsigned`), unless the intake runs with --accept-unsigned",
                pattern="^[0-9a-f]{32}$",
            ),
            "ce_signature": _text(
                "base64 (standard, padded) of the Ed25519 signature of netstring("
                '"backcheck-command-signature-v1") + netstring(ce_id) + netstring(ce_source) '
                "+ netstring(ce_type) + netstring(ce_time) + netstring(value), where "
                "netstring(b) is `<len(b) in decimal>:<b>,` over the bytes as sent (an absent "
                "ce_time is empty). Required, with ce_keyid",
                pattern="^[A-Za-z0-9+/]{86}==$",
            ),
        },
        # an intake run with --accept-unsigned takes a message with neither signature header
        optional=("ce_time", "ce_keyid", "ce_signature"),
    )


def dead_letter_headers(what: str) -> JsonSchema:
    """A dead letter's own headers, after the original message's (`what` names them)."""
    descriptions = {
        "dlq_reason": _text(REASONS),
        "dlq_error": _text("why, on one line: the field and the rule where one is known"),
        "dlq_topic": _text("the topic the message was on (or was to go to)"),
        "dlq_partition": {"type": "string", "pattern": "^[0-9]+$"},
        "dlq_offset": {
            "type": "string",
            "pattern": "^(-1|[0-9]+)$",
            "description": "its offset there; -1: it never was on the topic",
        },
        "dlq_time": {**_TIME, "description": "when it was set aside"},
    }
    assert tuple(descriptions) == DEAD_LETTER_HEADERS  # cloudevent.py's, in its order
    schema = _headers(descriptions)
    schema["description"] = (
        f"The original message's headers ({what}), unchanged and in order, then these."
    )
    return schema


def outcome_headers(ce_type: str) -> JsonSchema:
    """A command outcome's headers: its own CloudEvent attributes, then the command's."""
    return _headers(
        {
            "ce_specversion": SPECVERSION,
            "ce_id": _text("the same for every answer to the same command message"),
            "ce_source": {"const": "/backcheck"},
            "ce_type": {"const": ce_type},
            "ce_time": _TIME,
            "content-type": JSON_CONTENT,
            "ce_correlationid": _text("the command's ce_id (the correlation id)"),
            "ce_correlationsource": _text("the command's ce_source"),
            "ce_commandtype": _text("the command's ce_type"),
        },
        # left out when the command did not carry them readably (a malformed message)
        optional=("ce_correlationid", "ce_correlationsource", "ce_commandtype"),
    )


def checkpoint_headers(ce_type: str) -> JsonSchema:
    """A checkpoint's or a cosigned checkpoint's headers (infra/kafka/checkpoints.py)."""
    return _headers(
        {
            "ce_specversion": SPECVERSION,
            "ce_id": _text(
                "`{origin}/{tree size}` for a checkpoint, `{origin}/{tree size}/{witness}` "
                "for a cosigned one"
            ),
            "ce_source": {"const": "/backcheck"},
            "ce_type": {"const": ce_type},
            "ce_time": _TIME,
            "content-type": JSON_CONTENT,
        }
    )
