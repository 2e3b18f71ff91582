"""Raw callbacks to pandas tables: :func:`load` and :class:`Dataset`.

Everything here is derived from the raw ``callbacks`` rows at load time and nothing is written
back: a SQLite database is opened read-only (a ``file:...?mode=ro`` URI), a PostgreSQL one in
read-only sessions, so analysis never writes to it or blocks the collector. A :class:`Dataset`
is a snapshot: it reads only the rows that existed when it was made (``id <= max(id)`` at load
time; on PostgreSQL once the inserts then in flight have ended, see ``_PgReader._pin``), so its
tables agree with each other even while callbacks keep arriving.

Tables are built lazily, once, on first access (``functools.cached_property``), from the facts
of each callback kept by earlier loads (:mod:`tavus_analytics.cache`: a callback never changes,
so what is derived from it is read once) and those of the callbacks that arrived since. Each
reads only what it needs: ``ds.conversations`` works from the indexed columns, a narrow SQL
extraction for the shutdown reason (``json_extract`` on SQLite, ``#>>`` on PostgreSQL's
``body_json``), and one streaming pass over the transcription bodies (parsed with orjson, words
counted in bulk with numpy; a server-side cursor on PostgreSQL); it never builds ``ds.turns``.
The two databases are read through two readers with one interface (``_Reader``,
``_PgReader``): the table builders are the same code, only the SQL text differs, and the tables
are the same, row order included.

What cannot be interpreted (a body the database's JSON functions refuse, ``properties`` that is
not an object, a transcript that is not a list, a message that is not an object, a timestamp
that is not a time, a second transcript for the same call, ...) is left out of the derived table
and listed in ``ds.problems``; a load never fails because of one row.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import cache as derived
from . import events as ev
from . import metrics
from . import tables as tb
from .config import find_database
from .frames import frame
from .redact import redact_frame
from .store import open_reader, open_store
from .store import queries as q

__all__ = ["Dataset", "load"]


# -- the public API ------------------------------------------------------------------------------
def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class Dataset:
    """The tables of one database of Tavus callbacks, built lazily and kept once built.

    Make one with :func:`load`. Tables are attributes (``ds.conversations``, ``ds.turns``, ...);
    each is computed on first access only, so using ``ds.conversations`` alone never pays for
    ``ds.turns``. Metrics are methods that delegate to :mod:`tavus_analytics.metrics`.
    :meth:`filter` restricts every table and metric to a time range and to replica ids.

    Parameters
    ----------
    path : str or Path
        The SQLite database written by the collector, or the URL of its PostgreSQL database
        (``postgresql://user:password@host:port/database``).
    since, until, replicas, labels : optional
        Filters, as :meth:`filter` takes them (keyword only: a misspelled one is a
        ``TypeError``).
    cache : bool, str or Path, default True
        Keep what is derived from each callback for the next load, and use what earlier loads
        kept (see :mod:`tavus_analytics.cache`); ``False`` reads every callback and keeps
        nothing; a folder keeps the cache there.

    Attributes
    ----------
    path : Path or str
        The SQLite file (a Path), or the PostgreSQL URL (a str, password included: show
        :attr:`name` instead).
    name : str
        The database as it may be shown: the file, or the URL with its password masked.
    cache : TableCache or None
        Where what is derived is kept (``cache.path``, ``cache.size()``), None with
        ``cache=False``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        since: Any = None,
        until: Any = None,
        replicas: Iterable[str] | str | None = None,
        labels: Iterable[str] | str | None = None,
        cache: bool | str | Path = True,
        _root: Dataset | None = None,
    ) -> None:
        unfiltered = since is None and until is None and replicas is None and labels is None
        if _root is None and not unfiltered:
            _root = Dataset(path, cache=cache)  # a filtered dataset is a view on the whole one
        self._root = _root
        self._reader = open_reader(path) if _root is None else _root._reader
        if _root is not None:
            self.cache: derived.TableCache | None = _root.cache
        elif cache is False:
            self.cache = None
        else:
            folder = None if cache is True else cache
            self.cache = derived.TableCache(self._reader, folder)
        self.path: Path | str = self._reader.location
        self.name = self._reader.name
        self._problem_rows: dict[str, list[tuple]] = {}
        self._since: pd.Timestamp | None = _utc(since)
        self._until: pd.Timestamp | None = _utc(until)
        self._replica_ids: frozenset[str] | None = (
            None
            if replicas is None
            else frozenset([replicas] if isinstance(replicas, str) else replicas)
        )
        # Each set: the conversation has at least one of these labels; all sets must hold.
        self._labels: tuple[frozenset[str], ...] = () if labels is None else (_label_set(labels),)

    @property
    def filters(self) -> dict[str, Any]:
        """The filters applied: ``since``, ``until`` (UTC timestamps), ``replicas`` (ids) and
        ``labels`` (``None``, or one set of labels per label filter: a conversation has one of
        each set)."""
        return {
            "since": self._since,
            "until": self._until,
            "replicas": self._replica_ids,
            "labels": self._labels or None,
        }

    # -- filters ------------------------------------------------------------------------------
    @property
    def filtered(self) -> bool:
        """Whether this dataset is restricted by :meth:`filter`."""
        return self._root is not None

    def filter(
        self,
        *,
        since: Any = None,
        until: Any = None,
        replicas: Iterable[str] | str | None = None,
        labels: Iterable[str] | str | None = None,
    ) -> Dataset:
        """The same data restricted to a time range, to some replicas, to labeled conversations.

        Conversations are kept when their ``joined_at`` (or ``first_seen`` when no join arrived)
        is within ``[since, until)``, their ``replica_id`` is one of ``replicas`` and they have
        one of ``labels`` (:attr:`annotations`); turns, perception, recordings, post-call
        actions and their events follow their conversation. Replica training callbacks are
        placed by ``received_at``, videos by ``created_at`` (they are not conversations: a label
        filter leaves them). Filters combine with the filters already applied:
        ``filter(labels="refund").filter(labels="escalated")`` keeps calls that have both.

        Parameters
        ----------
        since, until : str, datetime or pandas.Timestamp, optional
            Bounds (``since`` inclusive, ``until`` exclusive); a time without a zone is UTC.
        replicas : str or iterable of str, optional
            Replica ids to keep.
        labels : str or iterable of str, optional
            Keep conversations with at least one of these review labels.
        """
        root = self._root or self
        new_since, new_until = _utc(since), _utc(until)
        if self._since is not None and (new_since is None or self._since > new_since):
            new_since = self._since
        if self._until is not None and (new_until is None or self._until < new_until):
            new_until = self._until
        reps = None
        if replicas is not None:
            reps = frozenset([replicas] if isinstance(replicas, str) else replicas)
        if self._replica_ids is not None:
            reps = self._replica_ids if reps is None else self._replica_ids & reps
        narrowed = Dataset(root.path, _root=root, since=new_since, until=new_until, replicas=reps)
        narrowed._labels = self._labels + (() if labels is None else (_label_set(labels),))
        return narrowed

    def _build(self, builder: str) -> dict[str, pd.DataFrame]:
        """The tables of one builder (:data:`tavus_analytics.tables.BUILDERS`), their problems
        kept for :attr:`problems`."""
        tables, self._problem_rows[builder] = derived.build(builder, self._reader, self.cache)
        return tables

    def _time_mask(self, times: pd.Series) -> np.ndarray:
        mask = np.ones(len(times), dtype=bool)
        if self._since is not None:
            mask &= (times >= self._since).to_numpy(dtype=bool)
        if self._until is not None:
            mask &= (times < self._until).to_numpy(dtype=bool)
        return mask

    def _replica_mask(self, replicas: pd.Series) -> np.ndarray:
        if self._replica_ids is None:
            return np.ones(len(replicas), dtype=bool)
        return replicas.isin(self._replica_ids).to_numpy(dtype=bool)

    def _label_mask(self, conversations: pd.Series) -> np.ndarray:
        mask = np.ones(len(conversations), dtype=bool)
        if self._labels:
            notes = (self._root or self).annotations
            for wanted in self._labels:
                labeled = notes.loc[notes["label"].isin(wanted).to_numpy(dtype=bool)]
                mask &= conversations.isin(labeled["conversation_id"]).to_numpy(dtype=bool)
        return mask

    def _by_conversation(self, table: pd.DataFrame) -> pd.DataFrame:
        keep = table["conversation_id"].isin(self.conversations["conversation_id"])
        return table[keep.to_numpy(dtype=bool)].reset_index(drop=True)

    def _root_table(self, name: str) -> pd.DataFrame:
        return getattr(self._root, name)

    # -- tables -------------------------------------------------------------------------------
    @functools.cached_property
    def events(self) -> pd.DataFrame:
        """One row per stored callback, in arrival order: the indexed columns, nothing parsed.

        Returns
        -------
        pandas.DataFrame
            id : int64, the row id in ``callbacks``.
            received_at : datetime64[ns, UTC], arrival time (the collector's clock).
            kind : str, ``conversation``, ``video``, ``replica_training`` or ``unknown``.
            event_type, message_type : str, as sent (NA for flat bodies).
            conversation_id, replica_id, video_id, status : str, as sent.
            timestamp : datetime64[ns, UTC], the sender's timestamp (NaT when absent or not a
            time).
        """
        if not self.filtered:
            return self._build("events")["events"]
        e = self._root_table("events")
        conv = e["kind"] == ev.KIND_CONVERSATION
        keep_conv = conv & e["conversation_id"].isin(self.conversations["conversation_id"])
        when = e["timestamp"].fillna(e["received_at"])
        other = ~conv & self._time_mask(when) & self._replica_mask(e["replica_id"])
        if self._labels:  # objectives, guardrails, canvas: those of the labeled calls
            other &= e["conversation_id"].isin(self.conversations["conversation_id"])
        return e[(keep_conv | other).to_numpy(dtype=bool)].reset_index(drop=True)

    @functools.cached_property
    def conversations(self) -> pd.DataFrame:
        """One row per conversation_id seen in conversation callbacks.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            replica_id : str, from the join (else any callback of the call).
            joined_at : datetime64[ns, UTC], the earliest ``system.replica_joined`` or
            ``system.pal_joined`` (Tavus sends both for one join); NaT when none arrived.
            shutdown_at : datetime64[ns, UTC], the earliest ``system.shutdown``.
            duration_s : float64, seconds, ``shutdown_at - joined_at`` (NaN if either is missing).
            shutdown_reason : str, as sent.
            shutdown_category : category of ``events.SHUTDOWN_CATEGORIES`` (NA: no shutdown or no
            readable reason).
            outcome : category ``completed``, ``no_show``, ``failed``, ``unknown`` (NA: no
            shutdown yet).
            shutdown_error_step : Int64, the N of ``internal error occurred at step N``.
            status : category ``complete`` (join and shutdown), ``in_progress`` (join, no
            shutdown yet), ``incomplete`` (no join).
            has_transcript, has_recording, has_perception : boolean, whether a readable
            transcript, a recording, a perception analysis arrived.
            user_turns, assistant_turns : Int64, messages of each role (NA: no transcript).
            user_words, assistant_words : Int64, words of each role (``len(text.split())``
            summed; NA: no transcript).
            system_prompt : str, the first system message (NA when none).
            recording_s3_key : str, the ``s3_key`` of the latest recording.
            first_seen, last_seen : datetime64[ns, UTC], first and last arrival of a callback
            of the call (the collector's clock).
            answer_delay_median_s, answer_delay_p90_s : float64, seconds, the median and 90th
            percentile of the answer delays of the call's timed turns (see ``turns``); NaN for
            a transcript without timing.
            user_talk_s, assistant_talk_s : float64, seconds, the summed ``duration`` of each
            side's timed turns (NaN without timing).
            longest_pause_s : float64, seconds, the longest silence between two timed turns (0
            when none left silence; NaN without timing).
            overlaps : Int64, turns that started before the other side's turn had ended
            (interruptions; NA without timing).
            objectives_completed : Int64, objective completion callbacks received for the call
            (a completion the collector missed is not counted, and cannot be fetched later).
            guardrail_triggers : Int64, guardrail triggers received (every delivery counts).
        """
        if not self.filtered:
            return self._build("conversations")["conversations"]
        c = self._root_table("conversations")
        when = c["joined_at"].fillna(c["first_seen"])
        keep = self._time_mask(when) & self._replica_mask(c["replica_id"])
        keep &= self._label_mask(c["conversation_id"])
        return c[keep].reset_index(drop=True)

    @functools.cached_property
    def turns(self) -> pd.DataFrame:
        """One row per transcript message (the transcript that counts for each call).

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            turn : int64, 0-based position in the transcript.
            role : str, ``system``, ``user``, ``assistant`` or ``tool`` (as sent).
            content : str, the message text (NA when null or not text).
            words : int64, ``len(content.split())`` (0 for no content).
            chars : int64, characters of content.
            timestamp : datetime64[ns, UTC], per-message time of newer payloads (ISO or Unix).
            seconds_from_start, duration : float64, seconds, where sent.
            inference_id, tool_call_id : str, where sent.
            tool_calls : str, the assistant's tool calls as JSON text, where sent.
            end_s : float64, seconds from the start, ``seconds_from_start + duration``.
            answer_delay_s : float64, seconds, for an assistant turn that follows a user turn:
            its start minus the end of that user turn, both timed (the time the caller waited;
            negative when the replica began before the caller had finished).
            overlap : boolean, whether the turn began before the other side's previous turn
            ended (NA where the turn or the one before is not timed).
        """
        if not self.filtered:
            return self._build("turns")["turns"]
        return self._by_conversation(self._root_table("turns"))

    def _cached_table(self, name: str, reader=None) -> pd.DataFrame:
        if not self.filtered:
            if name in tb.BUILDERS:
                return self._build(name)[name]
            frame, self._problem_rows[name] = reader(self._reader)
            return frame
        return self._by_conversation(self._root_table(name))

    @functools.cached_property
    def perception(self) -> pd.DataFrame:
        """One row per perception callback: analyses and ``perception_unavailable`` notices.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            available : boolean, True for an analysis, False for ``perception_unavailable``.
            reason : str, why perception was unavailable (e.g. ``no_vision_history``).
            analysis : str, the Markdown as sent.
            words : Int64, words of the analysis.
            appearance, behavior, emotions, screen_activity : str, the text under the standard
            bold headers (**User Appearance**, **User Behavior & Actions**, ...).
            sections : object, ``{header: text}`` of every section, custom queries included.
        """
        return self._cached_table("perception")

    @functools.cached_property
    def recordings(self) -> pd.DataFrame:
        """One row per ``application.recording_ready``, in either payload shape.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            bucket_name, s3_key : str, older payloads.
            duration : float64, seconds, older payloads.
            storage_provider, storage_uri : str, newer payloads.
            uri : str, ``storage_uri``, else ``s3://bucket_name/s3_key``.
        """
        return self._cached_table("recordings")

    @functools.cached_property
    def post_call_actions(self) -> pd.DataFrame:
        """One row per ``application.post_call_action_executed``.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            tool_id, tool_name, status : str.
            request : object, the request as sent.
            request_body : object, the request's body, parsed when it was sent as a JSON string.
            response : object, as sent.
        """
        return self._cached_table("post_call_actions")

    @functools.cached_property
    def recording_failures(self) -> pd.DataFrame:
        """One row per ``application.recording_copy_failed``: Tavus could not copy a recording
        into the customer's bucket (it stays with the video provider for about 30 days).

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            recording_id, s3_key : str, the recording and the key it was meant to have.
            duration : float64, seconds.
            storage_provider : str, ``s3``, ``gcs`` or ``azure_blob``.
            error_code, error_message : str, e.g. ``DESTINATION_AUTH_FAILED``.
        """
        return self._cached_table("recording_failures")

    def _objective_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if "_objectives_built" not in self.__dict__:
            tables = self._build("objectives")
            self.__dict__["_objectives_built"] = (tables["objectives"], tables["objective_outputs"])
        return self.__dict__["_objectives_built"]

    @functools.cached_property
    def objectives(self) -> pd.DataFrame:
        """One row per objective completion received (Tavus's evaluator decided an objective of
        the conversation was met). Completions are sent once, to the objective's own
        ``callback_url``, and cannot be fetched later: what a stopped collector missed is gone.

        Returns
        -------
        pandas.DataFrame
            conversation_id, objective_name : str.
            completed_at : datetime64[ns, UTC], the arrival (no timestamp is sent).
            shape : str, ``flat`` (as documented) or ``nested`` (``event_type``
            ``conversation.objective.completed``, the objective in ``properties``).
            variables : Int64, output variables sent.
            found : Int64, of which extracted (not ``"NOTFOUND"``, not null).
            output_variables : object, as sent.
            callback_id : int64, the ``callbacks`` row.
        """
        if not self.filtered:
            return self._objective_tables()[0]
        return self._by_conversation(self._root_table("objectives"))

    @functools.cached_property
    def objective_outputs(self) -> pd.DataFrame:
        """One row per output variable of each objective completion.

        Returns
        -------
        pandas.DataFrame
            conversation_id, objective_name : str.
            completed_at : datetime64[ns, UTC], the completion's arrival.
            variable : str, the variable's name.
            value : str, its value as text (a list or an object as JSON text); NA when the
            evaluator sent ``"NOTFOUND"`` or null: missing, never a value.
            value_type : str, ``string``, ``number``, ``boolean``, ``list``, ``object``,
            ``notfound`` or ``null``.
            found : boolean, whether a value was extracted.
            raw : object, the value as sent.
        """
        if not self.filtered:
            return self._objective_tables()[1]
        return self._by_conversation(self._root_table("objective_outputs"))

    @functools.cached_property
    def guardrail_triggers(self) -> pd.DataFrame:
        """One row per guardrail trigger: every delivery of a guardrail callback (a guardrail
        sends the same body each time it is triggered). Triggers are sent once, to the
        guardrail's own ``callback_url``, and cannot be fetched later.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            guardrail : str, the guardrail's name.
            guardrail_uuid : str (a uuid may change when a legacy set is edited: use the name).
            triggered_at : datetime64[ns, UTC], the delivery's arrival (no timestamp is sent).
            delivery : int64, 1 for the first delivery of this body, 2 for the second, ...
            event_type : str, NA for the documented shape; set for a forwarded in-call message.
            reason : str, only in forwarded in-call messages.
            callback_id : int64, the ``callbacks`` row.
        """
        return self._cached_table("guardrail_triggers")

    @functools.cached_property
    def canvas_interactions(self) -> pd.DataFrame:
        """One row per interaction with an on-screen canvas card (``canvas.interaction``).

        Returns
        -------
        pandas.DataFrame
            conversation_id : str.
            timestamp : datetime64[ns, UTC].
            interaction_id, tool_call_id : str.
            component : str, e.g. ``canvas.question``, ``canvas.calendar``.
            component_version : str.
            type : str, ``submit``, ``skip``, ``dismiss``, ``clear``, ``error`` or ``heartbeat``.
            skipped : boolean, ``value.skipped`` where sent.
            selected_option_ids : object, ``value.selected_option_ids`` where sent.
            value : object, as sent.
            client : str, ``metadata.client``.
            created_at : datetime64[ns, UTC] (sent without a zone: UTC).
        """
        return self._cached_table("canvas_interactions")

    @functools.cached_property
    def other_events(self) -> pd.DataFrame:
        """Conversation callbacks of every other event type (new, unknown, memory, ...).

        Returns
        -------
        pandas.DataFrame
            conversation_id, event_type : str.
            timestamp : datetime64[ns, UTC].
            properties : object, as sent.
        """
        return self._cached_table("other_events")

    @functools.cached_property
    def replicas(self) -> pd.DataFrame:
        """One row per replica training callback.

        Returns
        -------
        pandas.DataFrame
            replica_id, status : str.
            received_at : datetime64[ns, UTC].
            error_message : str, for ``status == "error"``.
        """
        if not self.filtered:
            return self._build("replicas")["replicas"]
        r = self._root_table("replicas")
        keep = self._time_mask(r["received_at"]) & self._replica_mask(r["replica_id"])
        return r[keep].reset_index(drop=True)

    @functools.cached_property
    def videos(self) -> pd.DataFrame:
        """One row per video: the state of its latest callback.

        Returns
        -------
        pandas.DataFrame
            video_id, replica_id, video_name, status, status_details : str.
            created_at, updated_at : datetime64[ns, UTC] (sent without a zone: UTC).
            generation_s : float64, seconds, ``updated_at - created_at``.
            generation_progress : str, e.g. ``"100/100"``.
            script, download_url, hosted_url, stream_url : str.
            error_details : str, JSON text when not text.
            callbacks : int64, callbacks received for the video.
        """
        if not self.filtered:
            return self._build("videos")["videos"]
        v = self._root_table("videos")
        keep = self._time_mask(v["created_at"]) & self._replica_mask(v["replica_id"])
        return v[keep].reset_index(drop=True)

    @functools.cached_property
    def problems(self) -> pd.DataFrame:
        """What could not be interpreted, and why (for the whole database, whatever the filter).

        Builds every table except ``events`` and ``turns`` (whose problems are the ones
        ``conversations`` reports).

        Returns
        -------
        pandas.DataFrame
            callback_id : Int64, the row in ``callbacks`` (NA for a problem of a whole call).
            conversation_id, event_type : str.
            table : str, the table the row was left out of (or annotated in).
            problem : str, what was wrong and what was done.
        """
        root = self._root or self
        for name in (
            "conversations",
            "perception",
            "recordings",
            "post_call_actions",
            "recording_failures",
            "objectives",
            "guardrail_triggers",
            "canvas_interactions",
            "other_events",
            "replicas",
            "videos",
        ):
            getattr(root, name)
        rows = [r for name in root._problem_rows for r in root._problem_rows[name]]
        if not rows:
            return frame(tb.TABLES["problems"])
        schema = tb.TABLES["problems"]
        return frame(schema, dict(zip(schema, map(list, zip(*rows, strict=True)), strict=True)))

    # -- full-text search (see tavus_analytics.store.search) ---------------------------------
    def search(
        self,
        query: str,
        *,
        role: str | None = None,
        conversation: str | None = None,
        limit: int | None = 20,
        fts: bool = False,
        redact: bool = False,
    ) -> pd.DataFrame:
        """Transcript messages that contain ``query``, best match first.

        The words are matched in this order, ignoring case, accents and English word endings
        (``fts=True`` takes the engine's query syntax instead: FTS5's on SQLite, ``to_tsquery``'s
        on PostgreSQL). Searching first brings the database's full-text index up to date, so it
        needs write access to the database. On a filtered dataset, only its conversations are
        searched. With ``redact``, personal data in ``snippet`` and ``content`` is replaced by
        placeholders. See :func:`tavus_analytics.store.search.search`.

        Returns
        -------
        pandas.DataFrame
            conversation_id : str. turn : int64, the message's index in the transcript.
            role : str. snippet : str, the words around the match, marked ``[...]``.
            content : str, the whole message. callback_id : int64. score : float64, lower is
            better (bm25 on SQLite, minus ``ts_rank`` on PostgreSQL).

        Raises
        ------
        InvalidQuery
            When ``query`` is empty, or (with ``fts=True``) not valid in the engine's syntax.
        """
        from .store.search import search

        options = {"role": role, "conversation": conversation, "fts": fts, "redact": redact}
        if not self.filtered:
            return search(self.path, query, limit=limit, **options)
        found = search(self.path, query, limit=None, **options)
        found = found[found["conversation_id"].isin(self.conversations["conversation_id"])]
        return (found if limit is None else found.head(limit)).reset_index(drop=True)

    # -- metrics (see tavus_analytics.metrics) --------------------------------------------------
    def shutdown_breakdown(self, by: str = "reason", split: str | None = None) -> pd.DataFrame:
        """Count and share of each shutdown reason or category; see
        :func:`tavus_analytics.metrics.shutdown_breakdown`."""
        return metrics.shutdown_breakdown(self.conversations, by=by, split=split)

    def durations(
        self,
        by: str | None = None,
        *,
        max_call_duration: float = metrics.DEFAULT_MAX_CALL_DURATION_S,
    ) -> pd.DataFrame:
        """Call duration statistics in seconds; see :func:`tavus_analytics.metrics.durations`."""
        return metrics.durations(self.conversations, by=by, max_call_duration=max_call_duration)

    def turn_stats(self, by: str | None = None) -> pd.DataFrame:
        """Turns and words per conversation and per turn, by role; see
        :func:`tavus_analytics.metrics.turn_stats`."""
        return metrics.turn_stats(self.conversations, by=by)

    def talk_ratio(self) -> pd.DataFrame:
        """The user's share of the words of each call; see
        :func:`tavus_analytics.metrics.talk_ratio`."""
        return metrics.talk_ratio(self.conversations)

    def volume(self, freq: str = "D", by_replica: bool = False) -> pd.DataFrame:
        """Conversations per day or week with completion and error rates; see
        :func:`tavus_analytics.metrics.volume`."""
        return metrics.volume(self.conversations, freq=freq, by_replica=by_replica)

    def funnel(self) -> pd.DataFrame:
        """Joined, shutdown, transcript, recording, perception: counts and shares; see
        :func:`tavus_analytics.metrics.funnel`."""
        return metrics.funnel(self.conversations)

    def perception_summary(self, by: str | None = None) -> pd.DataFrame:
        """Perception coverage and analysis length; see
        :func:`tavus_analytics.metrics.perception_summary`."""
        return metrics.perception_summary(self.conversations, self.perception, by=by)

    def perception_terms(
        self, n: int = 1, top: int = 20, by: str | None = None, section: str | None = None
    ) -> pd.DataFrame:
        """The most frequent meaningful terms or phrases of the analyses; see
        :func:`tavus_analytics.metrics.perception_terms`."""
        return metrics.perception_terms(
            self.perception, self.conversations, n=n, top=top, by=by, section=section
        )

    def analyses(self, section: str | None = None) -> pd.DataFrame:
        """The perception analyses of this (filtered) set, to read; see
        :func:`tavus_analytics.metrics.analyses`."""
        return metrics.analyses(self.conversations, self.perception, section=section)

    def perception_coverage(self, freq: str = "D") -> pd.DataFrame:
        """Perception coverage per day or week; see
        :func:`tavus_analytics.metrics.perception_coverage`."""
        return metrics.perception_coverage(self.conversations, self.perception, freq=freq)

    def replica_training(self, by: str = "status") -> pd.DataFrame:
        """Replica training callbacks by status (or errors by message); see
        :func:`tavus_analytics.metrics.replica_training`."""
        return metrics.replica_training(self.replicas, by=by)

    def objective_completion(self, by: str | None = None) -> pd.DataFrame:
        """How often calls reach each objective; see
        :func:`tavus_analytics.metrics.objective_completion`."""
        return metrics.objective_completion(self.conversations, self.objectives, by=by)

    def output_fill(self) -> pd.DataFrame:
        """How often each output variable was extracted; see
        :func:`tavus_analytics.metrics.output_fill`."""
        return metrics.output_fill(self.objective_outputs)

    def output_values(self, variable: str | None = None, top: int = 10) -> pd.DataFrame:
        """The values extracted for each variable; see
        :func:`tavus_analytics.metrics.output_values`."""
        return metrics.output_values(self.objective_outputs, variable=variable, top=top)

    def guardrail_summary(self, by: str | None = None) -> pd.DataFrame:
        """Guardrail triggers per 100 calls and share of calls with any; see
        :func:`tavus_analytics.metrics.guardrail_summary`."""
        return metrics.guardrail_summary(self.conversations, self.guardrail_triggers, by=by)

    def answer_delays(self, by: str | None = None) -> pd.DataFrame:
        """The answer delay callers felt; see :func:`tavus_analytics.metrics.answer_delays`."""
        return metrics.answer_delays(self.turns, self.conversations, by=by)

    def canvas_outcomes(self) -> pd.DataFrame:
        """Submit, skip and dismiss rates per canvas component; see
        :func:`tavus_analytics.metrics.canvas_outcomes`."""
        return metrics.canvas_outcomes(self.canvas_interactions)

    def recording_failure_codes(self) -> pd.DataFrame:
        """Recording copy failures by error code; see
        :func:`tavus_analytics.metrics.recording_failures`."""
        return metrics.recording_failures(self.recording_failures)

    def video_generation(self) -> pd.DataFrame:
        """Videos by status and generation times; see
        :func:`tavus_analytics.metrics.video_generation`."""
        return metrics.video_generation(self.videos)

    # -- what callers say (see tavus_analytics.content; needs the nlp extra) -------------------
    def _transcript_sources(self) -> list[tuple]:
        """(callback id, conversation id, sha256) of every transcript callback of the snapshot:
        what content analysis read, for its cache key."""
        return self._reader.query(
            q.TRANSCRIPT_SOURCES,
            (ev.TRANSCRIPTION_READY, ev.KIND_CONVERSATION, self._reader.max_id),
        )

    @functools.cached_property
    def _content(self):
        from .content import ContentAnalysis

        return ContentAnalysis(self, sources=self._transcript_sources)

    def languages(self) -> pd.DataFrame:
        """The language of each call, from what the user said; see
        :func:`tavus_analytics.content.languages`."""
        return self._content.languages()

    def language_breakdown(self) -> pd.DataFrame:
        """Calls per language; see :func:`tavus_analytics.content.language_breakdown`."""
        from .content import language_breakdown

        return language_breakdown(self._content.languages())

    def sentiment(self, level: str = "call") -> pd.DataFrame:
        """How each call felt (``level="call"``: the user's mean, minimum, drift and a label) or
        each turn's score (``"turn"``); see :func:`tavus_analytics.content.call_sentiment` and
        :func:`tavus_analytics.content.turn_sentiment`."""
        return self._content.sentiment(level)

    def sentiment_rates(self, by: str = "week") -> pd.DataFrame:
        """Negative, neutral and positive calls per week, day or replica; see
        :func:`tavus_analytics.content.sentiment_rates`."""
        from .content import sentiment_rates

        return sentiment_rates(self._content.sentiment("call"), self.conversations, by=by)

    def topics(self, k: int = 8, **options: Any):
        """Topics across calls: top terms, share of calls, dominant topic per call, shares per
        week and per replica; see :func:`tavus_analytics.content.topics`."""
        return self._content.topics(k, **options)

    def questions(self, **options: Any):
        """The users' questions grouped by similarity, with counts, an example and the trend;
        see :func:`tavus_analytics.content.questions`."""
        return self._content.questions(**options)

    def keywords(self, conversation: str | None = None, *, top: int = 5) -> pd.DataFrame:
        """The keywords of one call (or of every call: about 3 ms each); see
        :func:`tavus_analytics.content.keywords`."""
        return self._content.keywords(conversation, top=top)

    # -- display ------------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        if self.filtered or "conversations" in self.__dict__:
            return {"conversations": len(self.conversations)}
        rows = self._reader.query(q.COUNTS, (ev.KIND_CONVERSATION, self._reader.max_id))
        return {"callbacks": rows[0][0], "conversations": rows[0][1]}

    def _summary(self) -> list[tuple[str, str]]:
        lines = [("database", self.name)]
        for name, value in self._counts().items():
            lines.append((name, f"{value:,}"))
        if self.filtered:
            lines.append(("since", str(self._since) if self._since is not None else "-"))
            lines.append(("until", str(self._until) if self._until is not None else "-"))
            ids = self._replica_ids
            reps = ", ".join(sorted(ids)) if ids is not None else "all"
            lines.append(("replicas", reps))
            if self._labels:
                lines.append(("labels", " and ".join(" or ".join(sorted(s)) for s in self._labels)))
        built = [n for n in tb.TABLES if n in self.__dict__ and n != "conversations"]
        for name in built:
            lines.append((name, f"{len(self.__dict__[name]):,} rows"))
        return lines

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self._summary())
        return f"<Dataset {body}>"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary()
        )
        return f"<table><caption>tavus-analytics Dataset</caption>{rows}</table>"

    # -- one call's page, success criteria (see tavus_analytics.conversation, .evaluate) -------
    def conversation(
        self,
        conversation_id: str,
        *,
        labels: pd.DataFrame | None = None,
        redact: Any = None,
    ):
        """One call on one page: its facts, its timeline, and its rows of every table.

        The result displays in a notebook as a readable page (``_repr_html_``) and as text with
        ``print``; its tables are attributes (``page.turns``, ``page.objectives``, ...) and
        ``page.timeline`` lists what happened in order. The first call loads the dataset's
        tables (kept for the next ones). See :class:`tavus_analytics.conversation.Conversation`.

        Parameters
        ----------
        conversation_id : str
        labels : DataFrame, optional
            Review labels (a table with a ``conversation_id`` column) to show on the page.
        redact : callable, optional
            ``str -> str``, applied to every free text from a callback before it is shown.

        Raises
        ------
        ConversationNotFound
            When no callback of this dataset names ``conversation_id`` (the message names it,
            and says when the call is only outside the dataset's filter).

        Examples
        --------
        >>> page = ds.conversation("c0123456789ab")  # doctest: +SKIP
        >>> page.timeline[["kind", "offset_s", "text"]]  # doctest: +SKIP
        """
        from .conversation import Conversation
        from .errors import ConversationNotFound

        if labels is None:  # the call's review labels and notes, where the database has them
            labels = self.annotations
        try:
            return Conversation.from_dataset(self, conversation_id, labels=labels, redact=redact)
        except ConversationNotFound:
            cid = str(conversation_id)
            if self.filtered and (self._root.conversations["conversation_id"] == cid).any():
                raise ConversationNotFound(
                    f"conversation {cid!r} is in {self.name} but outside this selection "
                    "(since, until, replicas): widen it",
                    cid,
                ) from None
            raise

    def evaluate(self, criteria: Any) -> pd.DataFrame:
        """Judge every call of this dataset by success criteria: success, failure or unknown.

        ``criteria`` is a dict, the path of a TOML file, or parsed
        :class:`~tavus_analytics.evaluate.Criteria`; only the tables its rules need are loaded.
        Returns one row per call with its ``result``, the ``rule`` that decided and a
        ``score``; see :func:`tavus_analytics.evaluate.evaluate` for the rules and every column.

        Raises
        ------
        InvalidCriteria
            When the criteria cannot be read (the message names the line and the rule).
        """
        from . import evaluate as evaluation

        crit = evaluation.parse(criteria)
        tables = {name: getattr(self, name) for name in crit.tables if name != "conversations"}
        return evaluation.evaluate(crit, self.conversations, **tables)

    def success_rate(self, criteria: Any, by: str | None = None) -> pd.DataFrame:
        """The share of decided calls that met the criteria, overall or per ``"replica"`` or
        ``"week"``; see :func:`tavus_analytics.evaluate.success_rate`."""
        from . import evaluate as evaluation

        return evaluation.success_rate(self.evaluate(criteria), by=by)

    def calls_to_look_at(self, n: int = 5, criteria: Any = None) -> pd.DataFrame:
        """The calls worth reading, at most ``n`` per reason (failed, shortest, a guardrail
        triggered, missed objectives, slowest answers, and the criteria's failures when
        ``criteria`` are given); see :func:`tavus_analytics.metrics.calls_to_look_at`. Read one
        with ``ds.conversation(conversation_id)``."""
        evaluation = None if criteria is None else self.evaluate(criteria)
        return metrics.calls_to_look_at(
            self.conversations, self.objectives, evaluation=evaluation, n=n
        )

    # -- redaction (see tavus_analytics.redact) -------------------------------------------------
    def redacted(self) -> Dataset:
        """The same data with personal data replaced by placeholders, for what leaves your hands.

        Every table of the returned dataset (and every metric, chart and search made from it)
        has e-mail addresses, phone numbers, card numbers, IP addresses and URLs with
        credentials in its text replaced by ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IP]`` and
        ``[URL_WITH_CREDENTIALS]`` (:func:`tavus_analytics.redact.redact_frame`; identifiers
        such as ``conversation_id`` are kept). Its :meth:`filter` stays redacted. The database
        is not changed.

        Examples
        --------
        >>> ds.redacted().turns  # doctest: +SKIP
        >>> ta.charts.replica_training(ds.redacted())  # doctest: +SKIP
        """
        return _Redacted(self)

    # -- review labels and notes ---------------------------------------------------------------
    @functools.cached_property
    def annotations(self) -> pd.DataFrame:
        """The review labels and notes people gave conversations, oldest first (removed ones
        left out). Written by :meth:`annotate` or ``tavus-analytics annotate``, kept apart from
        the callbacks. Not part of the snapshot: read when first used, and again after
        :meth:`annotate` or :meth:`remove_annotation` on this dataset.

        Returns
        -------
        pandas.DataFrame
            annotation_id : int64, what :meth:`remove_annotation` takes.
            conversation_id : str.
            label : str, a short tag such as ``escalated`` (NA for a note alone).
            note : str, free text (NA for a label alone).
            author : str, who wrote it (the operating system's user unless named).
            created_at : datetime64[ns, UTC], when.
        """
        if not self.filtered:
            return tb.read_annotations(self._reader)
        return self._by_conversation(self._root_table("annotations"))

    def conversations_with_labels(self) -> pd.DataFrame:
        """:attr:`conversations` with each call's review labels beside it.

        ``conversations`` itself keeps its columns (they are the documented contract of exports
        and of ``conversations_view``, and labels change while a dataset is a snapshot); this
        joins :attr:`annotations` on request. To filter by label, ``ds.filter(labels=[...])``.

        Returns
        -------
        pandas.DataFrame
            The columns of ``conversations``, then:

            - ``labels`` : object, the call's distinct labels, sorted (an empty list when none;
              ``.explode("labels")`` gives one row per label).
            - ``notes`` : int64, how many notes it has.
            - ``annotated_at`` : datetime64[ns, UTC], its latest annotation (NaT when none).
        """
        out = self.conversations.copy()
        notes = self.annotations
        labels: dict[str, set[str]] = {}
        for cid, label in zip(notes["conversation_id"], notes["label"], strict=True):
            if isinstance(label, str):
                labels.setdefault(cid, set()).add(label)
        ids = out["conversation_id"]
        out["labels"] = pd.Series([sorted(labels.get(c, ())) for c in ids], dtype=object)
        counts = notes["note"].notna().groupby(notes["conversation_id"]).sum()
        out["notes"] = counts.reindex(ids).fillna(0).to_numpy(dtype="int64")
        latest = notes.groupby("conversation_id")["created_at"].max()
        out["annotated_at"] = latest.reindex(ids).to_numpy(dtype="datetime64[ns]")
        out["annotated_at"] = out["annotated_at"].dt.tz_localize("UTC")
        return out

    def annotate(
        self,
        conversation_id: str,
        *,
        label: str | None = None,
        note: str | None = None,
        author: str | None = None,
    ) -> int:
        """Give a conversation a review label, a note or both; return the annotation's id.

        The label or note goes into the database's ``annotations`` table, with ``author``
        (default: the operating system's user) and the time; the callbacks are not touched.
        The dataset itself is read-only: this writes through the store (:func:`open_store`,
        migrating an older database first), so it needs write access.

        Parameters
        ----------
        conversation_id : str
            A conversation the database holds callbacks of.
        label : str, optional
            A short tag (at most 64 characters; white space collapsed), e.g. ``escalated``.
        note : str, optional
            Free text (at most 10,000 characters).
        author : str, optional
            Who annotates; default ``getpass.getuser()``.

        Raises
        ------
        InvalidAnnotation
            Neither label nor note, one too long, or no callback of ``conversation_id``.

        Examples
        --------
        >>> ds.annotate("c123456", label="escalated", note="asked twice for a manager")
        ... # doctest: +SKIP
        """
        store = open_store(self.path, must_exist=True)
        try:
            new = store.annotate(conversation_id, label=label, note=note, author=author)
        finally:
            store.close()
        self._forget_annotations()
        return new

    def remove_annotation(self, annotation_id: int, *, author: str | None = None) -> bool:
        """Remove an annotation (its ``annotation_id``): it leaves :attr:`annotations`, and the
        database keeps it marked with who removed it and when. False when it already was
        removed; :class:`~tavus_analytics.errors.InvalidAnnotation` when there is no such id."""
        store = open_store(self.path, must_exist=True)
        try:
            removed = store.remove_annotation(annotation_id, author=author)
        finally:
            store.close()
        self._forget_annotations()
        return removed

    def _forget_annotations(self) -> None:
        """Read annotations again on next use (this dataset, its whole and its source)."""
        for ds in (self, self._root, getattr(self, "_source", None)):
            if ds is not None:
                ds.__dict__.pop("annotations", None)


class _Redacted(Dataset):
    """A dataset whose tables are those of another one, redacted (:meth:`Dataset.redacted`)."""

    def __init__(self, source: Dataset) -> None:
        self._source = source
        for name in _STATE:
            setattr(self, name, getattr(source, name))

    def filter(self, **filters: Any) -> Dataset:
        return _Redacted(self._source.filter(**filters))

    def redacted(self) -> Dataset:
        return self

    def search(self, query: str, **options: Any) -> pd.DataFrame:
        return self._source.search(query, **{**options, "redact": True})

    def _summary(self) -> list[tuple[str, str]]:
        return [*super()._summary(), ("redacted", "personal data shown as placeholders")]


#: What a dataset is besides its cached tables: what a redacted copy shares with its source.
_STATE = (
    "_root",
    "_reader",
    "path",
    "name",
    "_problem_rows",
    "_since",
    "_until",
    "_replica_ids",
    "_labels",
    "cache",
)


def _label_set(labels: Iterable[str] | str) -> frozenset[str]:
    """Labels as a filter takes them, white space collapsed as :meth:`Dataset.annotate` stores
    them."""
    return frozenset(" ".join(s.split()) for s in ([labels] if isinstance(labels, str) else labels))


def _redacted_table(name: str) -> functools.cached_property:
    def table(self: _Redacted) -> pd.DataFrame:
        return redact_frame(getattr(self._source, name))

    table.__doc__ = getattr(Dataset, name).__doc__
    prop = functools.cached_property(table)
    prop.__set_name__(_Redacted, name)
    return prop


for _name in tb.TABLES:
    setattr(_Redacted, _name, _redacted_table(_name))


def load(
    db: str | Path | None = None,
    *,
    since: Any = None,
    until: Any = None,
    replicas: Iterable[str] | str | None = None,
    labels: Iterable[str] | str | None = None,
    cache: bool | str | Path = True,
) -> Dataset:
    """Open a database of Tavus callbacks for analysis (read-only; tables load lazily).

    Parameters
    ----------
    db : str or Path, optional
        The SQLite file, or a PostgreSQL URL (``postgresql://user:password@host:port/db``);
        default ``TAVUS_ANALYTICS_DB`` when set, else ``data/tavus.db`` in the current folder or
        its parent (a notebook run from ``notebooks/`` finds the project's database; see
        :func:`tavus_analytics.config.find_database`). On PostgreSQL the same tables
        come back, the JSON extraction done by the server (on the ``body_json`` column) and the
        bodies streamed through a server-side cursor.
    since, until : str, datetime or pandas.Timestamp, optional
        Keep conversations joined (or first seen) in ``[since, until)``; see
        :meth:`Dataset.filter`.
    replicas : str or iterable of str, optional
        Keep only these replica ids.
    labels : str or iterable of str, optional
        Keep only conversations with one of these review labels (:attr:`Dataset.annotations`).
    cache : bool, str or Path, default True
        Read what earlier loads derived from each callback, and keep what this one derives
        (``DB.cache/`` beside the file when its folder can be written, else
        ``TAVUS_ANALYTICS_CACHE_DIR`` or the user's cache folder; see
        :mod:`tavus_analytics.cache`). A table is the same either way; ``False`` reads every
        callback and keeps nothing; a folder keeps the cache there.

    Returns
    -------
    Dataset

    Raises
    ------
    DatabaseNotFound
        When ``db`` does not exist (the message says how to make one).
    TavusAnalyticsError
        When ``db`` is not a tavus-analytics database, or its PostgreSQL server cannot be
        reached (one line naming the URL, its password masked).

    Examples
    --------
    >>> import tavus_analytics as ta
    >>> ds = ta.load("data/tavus.db")  # doctest: +SKIP
    >>> ds = ta.load("postgresql://analyst:secret@db.internal:5432/tavus")  # doctest: +SKIP
    >>> ds.conversations.groupby("shutdown_category", observed=False).size()  # doctest: +SKIP
    """
    return Dataset(
        find_database() if db is None else db,
        since=since,
        until=until,
        replicas=replicas,
        labels=labels,
        cache=cache,
    )
