"""The readable SQL views, generated for both engines from one set of specs.

A view is derived, never stored: each is written once here, as a spec (its columns as small
templates over the JSON of the body), and rendered for SQLite (``json_extract`` on ``body``) or
PostgreSQL (jsonb operators on ``body_json``) by a :class:`Dialect`. ``conversations_view`` and
``turns_view`` follow the rule book of :mod:`tavus_analytics.events` (which join, shutdown and
transcript count for a conversation, the shutdown category and the outcome), the same rules the
loader applies, so that a Datasette user and a notebook user get the same answer.

Templates in a column: ``{t:properties.analysis}`` is the JSON value at that path as text (a
string as is, a number or an object as its JSON text; ``json_extract``'s reading), ``{n:...}``
the value when it is a number, ``{j:properties}`` the JSON value itself (JSON text on SQLite,
``jsonb`` on PostgreSQL). ``{mt:role}`` and ``{mn:duration}`` read a transcript message.

Where a view cannot follow a rule exactly: times are compared as SQLite's ``julianday`` reads
them (ISO 8601 text; a Unix time in the ``timestamp`` column is not a time there), to the
millisecond.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .. import events as ev

_TEMPLATE = re.compile(r"\{(t|n|j|mt|mn):([A-Za-z0-9_.]+)\}")


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(_quote(v) for v in values) + ")"


@dataclass(frozen=True)
class Dialect:
    """How one engine reads JSON and times."""

    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    # -- JSON of the body (``j``) and of a transcript message (``m.value``) ------------------
    def text(self, path: str, j: str = "j") -> str:
        if self.postgres:
            return f"""(({j} #>> '{{{path.replace(".", ",")}}}') COLLATE "C")"""
        return f"json_extract({j}, '$.{path}')"

    def number(self, path: str, j: str = "j") -> str:
        if self.postgres:
            value = f"({j} #> '{{{path.replace('.', ',')}}}')"
            return f"CASE WHEN jsonb_typeof({value}) = 'number' THEN {value}::numeric END"
        return (
            f"CASE WHEN json_type({j}, '$.{path}') IN ('integer', 'real') "
            f"THEN json_extract({j}, '$.{path}') END"
        )

    def value(self, path: str, j: str = "j") -> str:
        if self.postgres:
            return f"nullif({j} #> '{{{path.replace('.', ',')}}}', 'null'::jsonb)"
        return f"json_extract({j}, '$.{path}')"

    def is_string(self, path: str, j: str = "j") -> str:
        if self.postgres:
            return f"jsonb_typeof({j} #> '{{{path.replace('.', ',')}}}') = 'string'"
        return f"json_type({j}, '$.{path}') = 'text'"

    def is_object(self, path: str, j: str = "j") -> str:
        if self.postgres:
            return f"jsonb_typeof({j} #> '{{{path.replace('.', ',')}}}') = 'object'"
        return f"json_type({j}, '$.{path}') = 'object'"

    def is_array(self, path: str, j: str = "j") -> str:
        if self.postgres:
            return f"jsonb_typeof({j} #> '{{{path.replace('.', ',')}}}') = 'array'"
        return f"json_type({j}, '$.{path}') = 'array'"

    def render(self, template: str, j: str = "j") -> str:
        """A column template (see the module) as this engine's SQL."""

        def one(m: re.Match) -> str:
            kind, path = m.group(1), m.group(2)
            if kind == "t":
                return self.text(path, j)
            if kind == "n":
                return self.number(path, j)
            if kind == "j":
                return self.value(path, j)
            if kind == "mt":
                return self.text(path, "m.value")
            return self.number(path, "m.value")

        return _TEMPLATE.sub(one, template)

    # -- sources -----------------------------------------------------------------------------
    def callbacks(self) -> str:
        """``callbacks`` with ``j``: the body as JSON (NULL where the engine cannot read it)."""
        if self.postgres:
            return "(SELECT *, body_json AS j FROM callbacks) AS c"
        return "(SELECT *, CASE WHEN json_valid(body) THEN body END AS j FROM callbacks) AS c"

    def messages(self, j: str = "c.j") -> tuple[str, str, str]:
        """A transcript's messages: the FROM item (``m.value`` each), the condition keeping the
        messages that are objects, and the expression of a message's index in the list."""
        transcript = f"CASE WHEN {self.is_array('properties.transcript', j)} THEN {j}"
        if self.postgres:
            return (
                f"jsonb_array_elements({transcript} #> '{{properties,transcript}}' END) "
                "WITH ORDINALITY AS m (value, ordinality)",
                "jsonb_typeof(m.value) = 'object'",
                "(m.ordinality - 1)::integer",
            )
        return (
            f"json_each({transcript} END, '$.properties.transcript') AS m",
            "m.type = 'object'",
            "CAST(m.key AS INTEGER)",
        )

    def count_messages(self, role: str, j: str = "j") -> str:
        """Messages of a transcript with this role (a scalar subquery)."""
        if self.postgres:
            return (
                "(SELECT count(*) FROM jsonb_array_elements(CASE WHEN "
                f"{self.is_array('properties.transcript', j)} "
                f"THEN {j} #> '{{properties,transcript}}' END) AS m (value) "
                f"WHERE m.value ->> 'role' = {_quote(role)} "
                "AND jsonb_typeof(m.value -> 'role') = 'string')"
            )
        return (
            f"(SELECT count(*) FROM json_each({j}, '$.properties.transcript') AS m "
            f"WHERE m.type = 'object' AND json_type(m.value, '$.role') = 'text' "
            f"AND json_extract(m.value, '$.role') = {_quote(role)})"
        )

    # -- scalars -----------------------------------------------------------------------------
    def time_ms(self, expr: str) -> str:
        """Milliseconds since 1970 of an ISO 8601 text, NULL when it is not one."""
        if self.postgres:
            return f"tavus_time_ms({expr})"
        return f"CAST(round((julianday({expr}) - 2440587.5) * 86400000.0) AS INTEGER)"

    def flag(self, condition: str) -> str:
        """1 when ``condition`` holds, else 0 (also when it is NULL)."""
        return f"CASE WHEN {condition} THEN 1 ELSE 0 END"

    def trim(self, expr: str) -> str:
        chars = ev.REASON_WHITESPACE
        if self.postgres:
            return f"btrim({expr}, {_quote(chars)})"
        return f"trim({expr}, {' || '.join(f'char({ord(c)})' for c in chars)})"

    def lower(self, expr: str) -> str:
        """ASCII lower case, as :func:`tavus_analytics.events.normalize_reason` folds."""
        if self.postgres:
            return f"translate({expr}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
        return f"lower({expr})"  # SQLite's lower() folds ASCII only

    def digits_after(self, expr: str, prefix_len: int) -> str:
        """The whole number after ``prefix_len`` characters and any spaces or underscores, or
        NULL when what follows is not only digits."""
        rest = f"ltrim(substr({expr}, {prefix_len + 1}), ' _')"
        if self.postgres:
            return f"CASE WHEN {rest} ~ '^[0-9]{{1,18}}$' THEN ({rest})::bigint END"
        return (
            f"CASE WHEN {rest} <> '' AND {rest} NOT GLOB '*[^0-9]*' AND length({rest}) <= 18 "
            f"THEN CAST({rest} AS INTEGER) END"
        )

    def matches_internal_error(self, expr: str) -> str:
        if self.postgres:
            return f"{expr} ~ '^internal[ _]error[ _]occurred[ _]at[ _]step'"
        return f"{expr} GLOB 'internal[ _]error[ _]occurred[ _]at[ _]step*'"


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


@dataclass(frozen=True)
class View:
    """A view that reads one row per callback: ``columns`` (alias, template) of ``callbacks``
    rows matching ``where`` (plain SQL on its columns)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    where: str = ""

    def sql(self, d: Dialect) -> str:
        cols = ", ".join(f"{d.render(t)} AS {alias}" for alias, t in self.columns)
        where = f" WHERE {self.where}" if self.where else ""
        return f"CREATE VIEW {self.name} AS SELECT {cols} FROM {d.callbacks()}{where}"


_CALLBACK = (("callback_id", "id"), ("conversation_id", "conversation_id"))
_SIMPLE: tuple[View, ...] = (
    View(
        "events_view",
        (
            ("id", "id"),
            ("received_at", "received_at"),
            ("timestamp", "timestamp"),
            ("kind", "kind"),
            ("event_type", "event_type"),
            ("message_type", "message_type"),
            ("conversation_id", "conversation_id"),
            ("replica_id", "replica_id"),
            ("video_id", "video_id"),
            ("status", "status"),
            ("shutdown_reason", "{t:properties.shutdown_reason}"),
            ("properties", "{j:properties}"),
            ("sha256", "sha256"),
            ("remote_addr", "remote_addr"),
            ("user_agent", "user_agent"),
        ),
    ),
    View(
        "perception_view",
        (
            *_CALLBACK,
            ("replica_id", "replica_id"),
            ("timestamp", "timestamp"),
            ("event_type", "event_type"),
            ("analysis", "{t:properties.analysis}"),
            ("unavailable_reason", "{t:properties.reason}"),
            ("received_at", "received_at"),
        ),
        f"event_type IN {_in((ev.PERCEPTION_ANALYSIS, ev.PERCEPTION_UNAVAILABLE))}",
    ),
    View(
        "recordings_view",
        (
            *_CALLBACK,
            ("replica_id", "replica_id"),
            ("timestamp", "timestamp"),
            ("event_type", "event_type"),
            ("storage_provider", "{t:properties.storage_provider}"),
            (
                "storage_uri",
                "coalesce({t:properties.storage_uri}, 's3://' || {t:properties.bucket_name} "
                "|| '/' || {t:properties.s3_key})",
            ),
            ("bucket_name", "{t:properties.bucket_name}"),
            ("s3_key", "{t:properties.s3_key}"),
            ("duration_s", "{n:properties.duration}"),
            ("error_message", "{t:properties.error_message}"),
            ("received_at", "received_at"),
        ),
        f"event_type IN {_in((ev.RECORDING_READY, ev.RECORDING_COPY_FAILED))}",
    ),
    View(
        "post_call_actions_view",
        (
            *_CALLBACK,
            ("replica_id", "replica_id"),
            ("timestamp", "timestamp"),
            ("tool_id", "{t:properties.tool_id}"),
            ("tool_name", "{t:properties.tool_name}"),
            ("status", "{t:properties.status}"),
            ("request", "{t:properties.request}"),
            ("response", "{t:properties.response}"),
            ("received_at", "received_at"),
        ),
        f"event_type = {_quote(ev.POST_CALL_ACTION)}",
    ),
    View(
        "videos_view",
        (
            ("callback_id", "id"),
            ("video_id", "video_id"),
            ("video_name", "{t:video_name}"),
            ("replica_id", "replica_id"),
            ("status", "status"),
            ("status_details", "{t:status_details}"),
            ("generation_progress", "{t:generation_progress}"),
            ("created_at", "{t:created_at}"),
            ("updated_at", "{t:updated_at}"),
            ("download_url", "{t:download_url}"),
            ("hosted_url", "{t:hosted_url}"),
            ("stream_url", "{t:stream_url}"),
            ("error_details", "{t:error_details}"),
            ("script", "{t:data.script}"),
            ("received_at", "received_at"),
        ),
        f"kind = {_quote(ev.KIND_VIDEO)}",
    ),
    View(
        "replica_trainings_view",
        (
            ("callback_id", "id"),
            ("replica_id", "replica_id"),
            ("status", "status"),
            ("error_message", "{t:error_message}"),
            ("received_at", "received_at"),
        ),
        f"kind = {_quote(ev.KIND_REPLICA_TRAINING)}",
    ),
)


def _picked(d: Dialect) -> str:
    """One row per conversation callback with its rule-book facts and ``pick``: 1 for the join,
    shutdown and transcript that count (:data:`tavus_analytics.events.COUNTS`)."""
    is_join = f"event_type IN {_in(ev.JOIN_EVENTS)}"
    is_shutdown = f"event_type = {_quote(ev.SHUTDOWN)}"
    is_transcript = (
        f"event_type = {_quote(ev.TRANSCRIPTION_READY)} AND {d.is_array('properties.transcript')}"
    )
    groups = {"join": is_join, "shutdown": is_shutdown, "transcript": is_transcript}
    group = "CASE " + " ".join(f"WHEN {c} THEN '{g}'" for g, c in groups.items()) + " END"
    # Earliest: the smallest time first (times that are not times last), then the first to
    # arrive. Latest: the largest time, then the last to arrive.
    latest = [g for g in groups if ev.COUNTS[g] == "latest"]
    sign = f"CASE WHEN _group IN {_in(latest)} THEN -1 ELSE 1 END" if latest else "1"
    is_recording = f"event_type = {_quote(ev.RECORDING_READY)} AND {d.is_object('properties')}"
    is_analysis = (
        f"event_type = {_quote(ev.PERCEPTION_ANALYSIS)} AND {d.is_string('properties.analysis')}"
    )
    is_post_call_action = f"event_type = {_quote(ev.POST_CALL_ACTION)}"
    reason = d.text("properties.shutdown_reason")
    facts = (
        "SELECT id, conversation_id, replica_id, event_type, received_at, "
        "coalesce(timestamp, received_at) AS ts, "
        f"{d.time_ms('coalesce(timestamp, received_at)')} AS ts_ms, {group} AS _group, "
        f"CASE WHEN {is_shutdown} AND {d.is_string('properties.shutdown_reason')} "
        f"THEN {reason} END AS reason, "
        f"CASE WHEN {is_transcript} THEN {d.count_messages('user')} END AS user_turns, "
        f"CASE WHEN {is_transcript} THEN {d.count_messages('assistant')} END "
        "AS assistant_turns, "
        f"{d.flag(is_join)} AS is_join, {d.flag(is_shutdown)} AS is_shutdown, "
        f"{d.flag(is_transcript)} AS is_transcript, {d.flag(is_recording)} AS is_recording, "
        f"{d.flag(is_analysis)} AS is_analysis, "
        f"{d.flag(is_post_call_action)} AS is_post_call_action "
        f"FROM {d.callbacks()} "
        f"WHERE kind = {_quote(ev.KIND_CONVERSATION)} AND conversation_id IS NOT NULL"
    )
    return (
        "SELECT *, row_number() OVER (PARTITION BY conversation_id, _group "
        f"ORDER BY ts_ms IS NULL, ({sign}) * ts_ms, ({sign}) * id) AS pick "
        f"FROM ({facts}) AS facts"
    )


def _conversations(d: Dialect) -> str:
    """``conversations_view``: one row per conversation, by the rule book."""

    def of(group: str, column: str) -> str:
        return f"max(CASE WHEN _group = '{group}' AND pick = 1 THEN {column} END)"

    per_call = (
        "SELECT conversation_id, "
        "coalesce(min(CASE WHEN is_join = 1 THEN replica_id END), min(replica_id)) AS replica_id, "
        f"{of('join', 'ts')} AS joined_at, {of('join', 'ts_ms')} AS joined_ms, "
        f"{of('shutdown', 'ts')} AS shutdown_at, {of('shutdown', 'ts_ms')} AS shutdown_ms, "
        f"{of('shutdown', 'reason')} AS shutdown_reason, "
        f"{of('transcript', 'user_turns')} AS user_turns, "
        f"{of('transcript', 'assistant_turns')} AS assistant_turns, "
        "max(is_join) AS has_join, max(is_shutdown) AS has_shutdown, "
        "max(is_transcript) AS has_transcript, max(is_analysis) AS has_perception, "
        "max(is_recording) AS has_recording, sum(is_post_call_action) AS post_call_actions, "
        "count(*) AS callbacks, min(received_at) AS first_received_at, "
        "max(received_at) AS last_received_at "
        f"FROM ({_picked(d)}) AS picked GROUP BY conversation_id"
    )
    # The shutdown category, from the reason normalised as events.normalize_reason does.
    n = d.lower(d.trim("shutdown_reason"))
    suffix = len(" reached")
    norm = (
        f"CASE WHEN {n} LIKE '% reached' OR {n} LIKE '%\\_reached' ESCAPE '\\' "
        f"THEN {d.trim(f'substr({n}, 1, length({n}) - {suffix})')} ELSE {n} END"
    )
    category = (
        "CASE WHEN shutdown_reason IS NULL THEN NULL "
        + " ".join(
            f"WHEN _norm = {_quote(k)} THEN {_quote(v)}" for k, v in ev.EXACT_REASONS.items()
        )
        + f" WHEN {d.matches_internal_error('_norm')} THEN 'internal_error' ELSE 'other' END"
    )
    outcomes: dict[str, list[str]] = {}
    for cat, outcome in ev.CATEGORY_OUTCOME.items():
        outcomes.setdefault(outcome, []).append(cat)
    outcome = (
        "CASE "
        + " ".join(
            f"WHEN shutdown_category IN {_in(cats)} THEN '{o}'" for o, cats in outcomes.items()
        )
        + " WHEN has_shutdown = 1 THEN 'unknown' END"
    )
    status = (
        "CASE WHEN has_join = 1 AND has_shutdown = 1 THEN 'complete' "
        "WHEN has_join = 1 THEN 'in_progress' ELSE 'incomplete' END"
    )
    step = (
        "CASE WHEN shutdown_category = 'internal_error' "
        f"THEN {d.digits_after('_norm', len('internal error occurred at step'))} END"
    )
    duration = "(shutdown_ms - joined_ms) / 1000.0"
    if d.postgres:
        duration = f"({duration})::double precision"
    return (
        "CREATE VIEW conversations_view AS SELECT conversation_id, replica_id, joined_at, "
        f"shutdown_at, {duration} AS duration_s, shutdown_reason, shutdown_category, "
        f"{outcome} AS outcome, user_turns, assistant_turns, has_transcript, has_perception, "
        "has_recording, post_call_actions, callbacks, first_received_at, last_received_at, "
        f"{status} AS status, {step} AS shutdown_error_step "
        f"FROM (SELECT *, {category} AS shutdown_category "
        f"FROM (SELECT *, {norm} AS _norm FROM ({per_call}) AS c) AS n) AS s"
    )


def _turns(d: Dialect) -> str:
    """``turns_view``: the messages of the transcript that counts for each conversation."""
    messages, is_object, turn = d.messages()
    picked = f"SELECT id FROM ({_picked(d)}) AS picked WHERE _group = 'transcript' AND pick = 1"
    return (
        "CREATE VIEW turns_view AS SELECT c.conversation_id, c.replica_id, "
        f"c.id AS callback_id, {turn} AS turn, "
        f"{d.render('{mt:role}')} AS role, {d.render('{mt:content}')} AS content, "
        f"{d.render('{mt:timestamp}')} AS message_timestamp, "
        f"{d.render('{mn:seconds_from_start}')} AS seconds_from_start, "
        f"{d.render('{mn:duration}')} AS duration, "
        "c.timestamp AS transcript_timestamp "
        f"FROM {d.callbacks()}, {messages} "
        f"WHERE {is_object} AND c.id IN ({picked})"
    )


_REJECTED = (
    "CREATE VIEW rejected_view AS SELECT id, received_at, status, reason, content_type, "
    "size, truncated, remote_addr, user_agent FROM rejected"
)

#: Every view, in the order they are created.
VIEWS = (
    "events_view",
    "turns_view",
    "conversations_view",
    "perception_view",
    "recordings_view",
    "post_call_actions_view",
    "videos_view",
    "replica_trainings_view",
    "rejected_view",
)


def statements(d: Dialect) -> list[str]:
    """``CREATE VIEW`` for every view of :data:`VIEWS`, in order, in this dialect."""
    simple = {v.name: v.sql(d) for v in _SIMPLE}
    made = {
        "turns_view": _turns(d),
        "conversations_view": _conversations(d),
        "rejected_view": _REJECTED,
    }
    return [simple.get(name) or made[name] for name in VIEWS]


def fingerprint(d: Dialect) -> str:
    """A digest of every view's SQL: when it changes, the views are made again."""
    return hashlib.sha256("\n".join(statements(d)).encode()).hexdigest()
