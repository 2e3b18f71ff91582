"""Callbacks at chosen times, for the alert and digest tests: a call is a join and a shutdown
(with a reason that decides its outcome), optionally a timed transcript whose user turns say
:data:`PHRASE`, a recording copy failure or guardrail triggers. Each callback is stored as
having arrived at its own timestamp, so that a fake clock decides what is recent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

#: Something a caller says in every test transcript: it must never leave in a message.
PHRASE = "my account number is 4417 1234 5678 9113"

COMPLETED = "participant_left_timeout"
FAILED = "exception_encountered_during_conversation_startup"
NO_SHOW = "participant_absent_timeout reached"


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post(store, body: dict, at: datetime) -> None:
    store.insert_callback(json.dumps(body).encode(), received_at=iso(at))


def call(
    store,
    cid: str,
    start: datetime,
    *,
    minutes: float = 5,
    reason: str = COMPLETED,
    replica: str = "r1",
    delays: list[float] | None = None,
) -> datetime:
    """Store one call; return when it ended. ``delays``: a timed transcript with these answer
    delays (seconds), the caller saying :data:`PHRASE` each time."""
    end = start + timedelta(minutes=minutes)
    post(
        store,
        {
            "conversation_id": cid,
            "event_type": "system.replica_joined",
            "message_type": "system",
            "timestamp": iso(start),
            "properties": {"replica_id": replica},
        },
        start,
    )
    post(
        store,
        {
            "conversation_id": cid,
            "event_type": "system.shutdown",
            "message_type": "system",
            "timestamp": iso(end),
            "properties": {"replica_id": replica, "shutdown_reason": reason},
        },
        end,
    )
    if delays is not None:
        turns, t = [{"role": "system", "content": "You are a helpful replica."}], 1.0
        for delay in delays:
            turns.append(
                {"role": "user", "content": PHRASE, "seconds_from_start": t, "duration": 2.0}
            )
            t += 2.0 + delay
            turns.append(
                {
                    "role": "assistant",
                    "content": "I hear you.",
                    "seconds_from_start": t,
                    "duration": 3.0,
                }
            )
            t += 4.0
        post(
            store,
            {
                "conversation_id": cid,
                "event_type": "application.transcription_ready",
                "message_type": "application",
                "timestamp": iso(end + timedelta(milliseconds=1)),
                "properties": {"replica_id": replica, "transcript": turns},
            },
            end + timedelta(seconds=1),
        )
    return end


def recording_failed(store, cid: str, at: datetime, code: str = "DESTINATION_AUTH_FAILED") -> None:
    post(
        store,
        {
            "conversation_id": cid,
            "event_type": "application.recording_copy_failed",
            "message_type": "application",
            "timestamp": iso(at),
            "properties": {
                "recording_id": f"rec-{cid}",
                "s3_key": f"recordings/{cid}.mp4",
                "duration": 120,
                "storage_provider": "s3",
                "error_code": code,
                "error_message": "Access Denied",
            },
        },
        at,
    )


def guardrail(store, cid: str, at: datetime, name: str = "no_medical_advice") -> None:
    """One trigger: the same body each time, as Tavus sends it."""
    post(
        store,
        {"conversation_id": cid, "properties": {"guardrail": name, "guardrail_uuid": "g1"}},
        at,
    )


def calls(store, prefix: str, start: datetime, n: int, **kwargs) -> None:
    """``n`` calls a minute apart from ``start``."""
    for i in range(n):
        call(store, f"{prefix}{i:03d}", start + timedelta(minutes=i), **kwargs)


def objective(store, cid: str, at: datetime, name: str = "qualify_lead") -> None:
    """An objective completion, in the documented flat shape (no timestamp: timed by arrival)."""
    post(
        store,
        {"conversation_id": cid, "objective_name": name, "output_variables": {"budget": "50k"}},
        at,
    )
