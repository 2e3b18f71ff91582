"""Hostile input and access: fuzzing ``POST /webhook``, every route with and without the token,
and a measurement of the token check's timing.

The fuzzers use hypothesis strategies (:func:`bodies`, :func:`content_types`,
:func:`transfers`) and one checker per path: :func:`check_answer` for Flask's test client,
:func:`raw_exchange` + :func:`check_raw` for a real collector process over raw sockets (chunked,
truncated and malformed framing; what granian and waitress each answer). The same functions
serve the test suite (few examples) and ``stress/run.py fuzz`` (many).

``fuzz_app``, ``fuzz_server`` and ``access`` take ``db=``, a PostgreSQL URL of an empty database,
to run against PostgreSQL instead of a SQLite file in ``workdir``: the checks then read through
psycopg, and :func:`loads_cleanly` replaces SQLite's integrity and ``json_valid`` checks with
amcheck and ``jsonb``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import random
import socket
import sqlite3
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st

from .harness import (
    ROOT,
    Collector,
    is_url,
    make_body,
    new_secret,
    notebook_load,
    server_name,
    sha,
)

#: The body limit the fuzzers configure (small, so that over-limit bodies are cheap).
FUZZ_MAX_BODY = 256 * 1024
#: waitress itself refuses a request past twice the body limit (``make_server``), with a plain
#: ``413`` and nothing kept; it counts a chunked body's framing too.
WAITRESS_MAX_BODY = 2 * FUZZ_MAX_BODY

_BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]
_CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
    "garbage/\x7f;;;=",
]


# -- strategies ----------------------------------------------------------------------------------
def _dump(obj, ensure_ascii: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ensure_ascii).encode("utf-8")


def _insert(data: bytes, pos: int, what: bytes) -> bytes:
    pos = pos % (len(data) + 1)
    return data[:pos] + what + data[pos:]


def _nested(depth: int, shape: str) -> bytes:
    if shape == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if shape == "array":
        return b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    return b'{"a":' + b'[{"b":' * depth + b"null" + b"}]" * depth + b"}"


def bodies(max_body: int = FUZZ_MAX_BODY) -> st.SearchStrategy[bytes]:
    """Bodies a hostile or broken sender could POST: every family the issue lists."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
    )
    values = st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )
    objects = st.dictionaries(st.text(max_size=12), values, max_size=6)
    valid = st.builds(_dump, objects, st.booleans())
    tavus = st.builds(lambda n: make_body("fz", n), st.integers(0, 10**9))
    numbers = st.one_of(
        st.integers(1, 6000).map(lambda n: b"9" * n),
        st.integers(1, 6000).map(lambda n: b"-1" + b"0" * n + b".5e-3"),
        st.sampled_from(
            [
                b"1e999",
                b"-1e999",
                b"1e-999",
                b"1E+400",
                b"-0",
                b"0.0",
                b"123456789012345678901234567890",
                b"NaN",
                b"Infinity",
                b"-Infinity",
                b"01",
                b"1.",
                b".5",
                b"0x10",
                b"1e",
                b"+1",
            ]
        ),
    ).map(lambda lit: b'{"event_type": "x", "conversation_id": ' + lit + b', "n": ' + lit + b"}")
    deep = st.builds(_nested, st.integers(1, 3000), st.sampled_from(["object", "array", "mixed"]))
    huge = st.builds(
        lambda n, c: b'{"s": "' + c * n + b'"}',
        st.integers(0, max_body + 4096),
        st.sampled_from([b"x", b"\\u00e9", b"\xc3\xa9", b"\\\\"]),
    )
    bad_utf8 = st.builds(_insert, valid | tavus, st.integers(0, 10**6), st.sampled_from(_BAD_UTF8))
    nul = st.builds(
        _insert, valid | tavus, st.integers(0, 10**6), st.sampled_from([b"\x00", b"\x00" * 5])
    ) | st.builds(lambda s: _dump({"s": "\x00" + s}, True), st.text(max_size=10))
    escapes = st.sampled_from(
        [b"\\ud800", b"\\udfff", b"a\\ud83d", b"\\ude00b", b"\\ud83d\\ude00", b"\\\\ud800"]
    )
    surrogates = st.builds(
        lambda field, esc: b'{"' + field + b'": "' + esc + b'", "event_type": "x", "status": "ok"}',
        st.sampled_from([b"conversation_id", b"replica_id", b"video_id", b"timestamp", b"other"]),
        escapes,
    ) | st.builds(
        lambda where, esc, n: (
            b'{"conversation_id": "c%d", "event_type": "%s", "properties": %s}'
            % (n, where[0], where[1].replace(b"ESC", esc))
        ),
        st.sampled_from(
            [
                (b"system.shutdown", b'{"shutdown_reason": "ESC"}'),
                (
                    b"application.transcription_ready",
                    b'{"transcript": [{"role": "user", "content": "hi ESC"}]}',
                ),
                (b"application.perception_analysis", b'{"analysis": "**User** ESC"}'),
                (b"application.x", b'{"ESC": 1}'),
            ]
        ),
        escapes,
        st.integers(0, 10**6),
    )
    mutated = st.builds(
        lambda b, pos, byte: b[: pos % (len(b) + 1)] + bytes([byte]) + b[pos % (len(b) + 1) + 1 :],
        tavus,
        st.integers(0, 10**6),
        st.integers(0, 255),
    ) | st.builds(lambda b, cut: b[: cut % (len(b) + 1)], tavus, st.integers(0, 10**6))
    framing = st.sampled_from(
        [
            b"",
            b" ",
            b"\n",
            b"\xef\xbb\xbf{}",
            b"{}",
            b"[]",
            b'"x"',
            b"null",
            b"{} {}",
            b'{"a":1,"a":2}',
            b"{\n}\n",
            b'{"a":1}\x00',
            b"\t{}\r\n",
        ]
    )
    return st.one_of(
        st.binary(max_size=512),
        valid,
        tavus,
        numbers,
        deep,
        huge,
        bad_utf8,
        nul,
        surrogates,
        mutated,
        framing,
    )


def content_types() -> st.SearchStrategy[str | None]:
    return st.sampled_from(_CONTENT_TYPES)


def transfers() -> st.SearchStrategy[tuple[str, list[int]]]:
    """How a body travels over the wire, and where it is cut into chunks."""
    return st.tuples(
        st.sampled_from(
            [
                "content-length",
                "chunked",
                "truncated-content-length",
                "truncated-chunked",
                "bad-chunk-size",
                "content-length-too-large",
            ]
        ),
        st.lists(st.integers(1, 4096), min_size=1, max_size=8),
    )


# -- checks --------------------------------------------------------------------------------------
def connect(db: Path | str):
    """A connection for the checks: sqlite3 on a file, psycopg (autocommit) on a URL."""
    if is_url(db):
        import psycopg

        return psycopg.connect(db, autocommit=True)
    return sqlite3.connect(db)


def stored_body(conn, rowid: int) -> bytes | None:
    if isinstance(conn, sqlite3.Connection):
        sql = "SELECT CAST(body AS BLOB) FROM callbacks WHERE id = ?"
    else:
        sql = "SELECT convert_to(body, 'UTF8') FROM callbacks WHERE id = %s"
    row = conn.execute(sql, (rowid,)).fetchone()
    return bytes(row[0]) if row else None


def is_stored(conn, body: bytes) -> bool:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    return (
        conn.execute(f"SELECT 1 FROM callbacks WHERE sha256 = {mark}", (sha(body),)).fetchone()
        is not None
    )


def check_answer(status: int, answer: bytes, body: bytes, conn) -> None:
    """Assert what the collector may answer to ``body`` and what it may have stored."""
    assert status in (200, 400, 413), (status, answer[:300])
    assert b"Traceback" not in answer and b'File "' not in answer
    got = json.loads(answer)
    assert got["status"] in ("ok", status), got
    if status == 200:
        assert got["ok"] is True and isinstance(got["id"], int)
        assert stored_body(conn, got["id"]) == body, "stored row differs from what was sent"
    else:
        assert got["ok"] is False and isinstance(got["error"], str)
        assert not is_stored(conn, body), "a refused body was stored"


def loads_cleanly(db: Path) -> dict:
    """Every stored body parses with the collector's parser and with SQLite's ``json_valid``, the
    rows' SHA-256 match their bodies, ``integrity_check`` is ok, and the notebook load runs."""
    if is_url(db):
        return _loads_cleanly_pg(db)
    from tavus_analytics.events import parse_body

    conn = sqlite3.connect(db)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = bad_parse = bad_sha = 0
        for digest, body in conn.execute("SELECT sha256, CAST(body AS BLOB) FROM callbacks"):
            rows += 1
            bad_sha += sha(body) != digest
            try:
                parse_body(body)
            except Exception:
                bad_parse += 1
        json_invalid = conn.execute(
            "SELECT count(*) FROM callbacks WHERE NOT json_valid(body)"
        ).fetchone()[0]
    finally:
        conn.close()
    try:
        how, n = notebook_load(db)
        load_error = None
    except Exception as e:  # a database that cannot be loaded is the finding
        how, n, load_error = "failed", 0, f"{type(e).__name__}: {e}"[:300]
    return {
        "rows": rows,
        "integrity_check": integrity,
        "unparseable": bad_parse,
        "json_invalid": json_invalid,
        "sha256_mismatch": bad_sha,
        "notebook_load": how,
        "notebook_rows": n,
        "notebook_load_error": load_error,
        "ok": integrity == "ok"
        and not bad_parse
        and not json_invalid
        and not bad_sha
        and load_error is None,
    }


def _loads_cleanly_pg(url: str) -> dict:
    """:func:`loads_cleanly` on PostgreSQL: amcheck for the integrity check; a body whose
    ``jsonb`` copy is NULL must be one ``jsonb`` refuses (a ``\\u0000`` escape, a number past
    ``numeric``), not one it could have held."""
    import psycopg

    from tavus_analytics.events import parse_body

    from .pg import amcheck

    with psycopg.connect(url) as conn:
        got = conn.execute(
            "SELECT sha256, convert_to(body, 'UTF8'), body_json IS NULL FROM callbacks"
        ).fetchall()
        conn.commit()
        rows, bad_parse, bad_sha = len(got), 0, 0
        for digest, body, _ in got:
            bad_sha += sha(bytes(body)) != digest
            try:
                parse_body(bytes(body))
            except Exception:
                bad_parse += 1
        no_jsonb = [bytes(b) for _, b, null in got if null]
        readable = 0
        for body in no_jsonb:
            try:
                conn.execute("SELECT %s::jsonb", (body.decode(),))
                readable += 1
            except psycopg.Error:
                pass
            conn.rollback()
        integrity = amcheck(conn)
    try:
        how, n = notebook_load(url)
        load_error = None
    except Exception as e:  # a database that cannot be loaded is the finding
        how, n, load_error = "failed", 0, f"{type(e).__name__}: {e}"[:300]
    return {
        "rows": rows,
        "integrity_check": integrity,
        "unparseable": bad_parse,
        "jsonb_null": len(no_jsonb),
        "jsonb_null_but_jsonb_reads_it": readable,
        "sha256_mismatch": bad_sha,
        "notebook_load": how,
        "notebook_rows": n,
        "notebook_load_error": load_error,
        "ok": not integrity.startswith("failed")
        and not bad_parse
        and not readable
        and not bad_sha
        and load_error is None,
    }


# -- raw HTTP against the real server ------------------------------------------------------------
def raw_exchange(
    port: int,
    path: str,
    body: bytes,
    mode: str,
    cuts: list[int],
    content_type: str | None = "application/json",
    timeout: float = 10.0,
    half_close: bool = True,
) -> bytes:
    """Send ``body`` with the framing ``mode`` over a fresh connection; return all it answered.

    ``half_close``: the sender shuts its side down once it has sent (``shutdown(SHUT_WR)``), as
    a sender that gives up mid-body does; without it (only for the complete framings, which
    need no end of stream) the connection stays open until the server closes it."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if content_type is not None:
        head.append(f"Content-Type: {content_type}")
    pieces = _pieces(body, cuts)
    if mode == "content-length":
        payload = [f"Content-Length: {len(body)}"], pieces
    elif mode == "content-length-too-large":
        payload = [f"Content-Length: {len(body) + 10}"], pieces
    elif mode == "truncated-content-length":
        payload = [f"Content-Length: {len(body) + 1}"], pieces[:-1] or [body[: len(body) // 2]]
    else:
        chunks = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]
        if mode == "chunked":
            chunks.append(b"0\r\n\r\n")
        elif mode == "truncated-chunked":
            chunks = chunks[:-1] or [b"%x\r\n" % (len(body) + 5)]
        elif mode == "bad-chunk-size":
            chunks.insert(len(chunks) // 2, b"zz\r\nnope\r\n")
            chunks.append(b"0\r\n\r\n")
        payload = ["Transfer-Encoding: chunked"], chunks
    extra, parts = payload
    request_head = ("\r\n".join(head + extra) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request_head)
            for p in parts:
                s.sendall(p)
            if half_close:
                s.shutdown(socket.SHUT_WR)  # the sender stops here, complete or not
        except OSError:  # the server answered and closed before the sender was done
            pass
        answer = b""
        while True:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            answer += data
    return answer


def _pieces(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` cut at ``cuts`` (lengths), empty pieces left out: one write or chunk each."""
    pieces, pos = [], 0
    for c in cuts:
        pieces.append(body[pos : pos + c])
        pos += c
    pieces.append(body[pos:])
    return [p for p in pieces if p]


def arrived(body: bytes, mode: str, cuts: list[int]) -> bytes:
    """The body bytes a server reads from :func:`raw_exchange` before the framing ends or
    breaks: all of it for the complete framings, what was sent of it otherwise."""
    pieces = _pieces(body, cuts)
    if mode in ("content-length", "chunked", "content-length-too-large"):
        return body
    if mode == "truncated-content-length":
        return b"".join(pieces[:-1]) or body[: len(body) // 2]
    if mode == "truncated-chunked":
        return b"".join(pieces[:-1])
    if mode == "bad-chunk-size":
        return b"".join(pieces[: len(pieces) // 2])
    raise ValueError(f"unknown framing {mode!r}")


def _status(answer: bytes) -> tuple[int, bytes]:
    status = int(answer.split(b" ", 2)[1])
    assert status < 500, answer[:300]
    assert b"Traceback" not in answer and str(ROOT).encode() not in answer
    return status, answer.partition(b"\r\n\r\n")[2]


def check_raw(
    answer: bytes,
    body: bytes,
    mode: str,
    before: int,
    conn,
    *,
    server: str = "waitress",
    cuts: list[int] | None = None,
    resend=None,
    was_stored: bool = False,
) -> str:
    """Assert what the real server may do with a framed body; return the outcome's name.

    ``server``: the collector's ``--server``. granian differs from waitress in what a sender
    sees (:func:`_check_raw_granian`, which needs the ``cuts``, a ``resend`` that sends the
    body again on an ordinary connection, and whether the body was stored before it was sent).
    """
    if server == "granian":
        return _check_raw_granian(answer, body, mode, before, conn, cuts or [], resend, was_stored)
    count = conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
    if not answer:
        assert mode.startswith("truncated") or mode == "content-length-too-large", mode
        assert count == before, "an unanswered (truncated) request stored something"
        return "no answer"
    status = int(answer.split(b" ", 2)[1])
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert status != 500 and status < 500, answer[:300]
    assert b"Traceback" not in answer and str(ROOT).encode() not in answer
    if status == 413 and not payload.startswith(b"{"):  # waitress's own refusal
        assert len(body) + 1024 >= WAITRESS_MAX_BODY, (mode, len(body), answer[:300])
        assert count == before, "a body waitress refused was stored"
        return "413 (waitress)"
    if mode in ("chunked", "content-length"):
        check_answer(status, payload, body, conn)
        assert count == before + (status == 200 and not json.loads(payload)["duplicate"])
    else:
        assert status == 400, (mode, answer[:300])  # waitress refuses broken framing itself
        assert count == before, "a request with broken framing stored something"
    return str(status)


def _check_raw_granian(answer, body, mode, before, conn, cuts, resend, was_stored) -> str:
    """What granian may do with a framed body, and how it differs from waitress.

    * A complete request whose sender half-closes the connection gets no answer: granian's HTTP
      layer (hyper, without half-close support) drops the connection when it reads the end of
      the stream. The app may have run, and may still be running: the check is then that the
      sender's retry, on an ordinary connection, is answered as any request is, and the body
      stored once (``200`` with ``"duplicate": true`` when the unanswered request stored it).
    * A broken or cut body reaches the app, which answers (granian refuses no framing itself):
      a Content-Length tells it what is missing (``400``, or ``413`` past the limit). A chunked
      body that ends early looks complete to the app (granian reads a broken chunk or the end of
      the stream as the end of the body): it is refused unless what arrived is itself a JSON
      object, which is then stored as it arrived and answered ``200``. The check holds the
      stored bytes to exactly what arrived (:func:`arrived`).
    """

    def count() -> int:
        return conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]

    complete = mode in ("content-length", "chunked")
    if not answer and complete:
        assert count() in (before, before + 1)
        retry = resend()
        assert retry, "the retry, on an ordinary connection, got no answer"
        status, payload = _status(retry)
        check_answer(status, payload, body, conn)
        stored = status == 200 and not was_stored
        assert count() == before + stored, "the body is not stored exactly once"
        return f"no answer (half-closed), retry {status}"
    if not answer:  # not seen in practice: let a request the app may still run finish first
        _settle(count)
        assert count() == before, "an unanswered request with broken framing stored something"
        return "no answer"
    status, payload = _status(answer)
    assert payload.startswith(b"{"), (mode, answer[:300])  # the app's answer, never granian's
    received = body if complete else arrived(body, mode, cuts)
    if complete or status == 200:
        check_answer(status, payload, received, conn)
    else:  # what arrived may be a whole body stored before: the count says nothing was stored
        got = json.loads(payload)
        assert status in (400, 413) and got["ok"] is False and got["status"] == status, got
        assert isinstance(got["error"], str)
    stored = status == 200 and not json.loads(payload)["duplicate"]
    assert count() == before + stored, "a row was stored that the answer does not account for"
    if status == 200 and not complete:
        assert mode in ("truncated-chunked", "bad-chunk-size"), (mode, answer[:300])
        return "200 (what arrived)"
    return str(status)


def _settle(count, quiet: float = 0.2, limit: float = 3.0) -> None:
    """Wait until ``count()`` has not changed for ``quiet`` seconds (at most ``limit``)."""
    deadline = time.monotonic() + limit
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.02)
        now = count()
        if now != last:
            last, since = now, time.monotonic()


# -- access --------------------------------------------------------------------------------------
ROUTES = [
    ("GET", "/"),
    ("HEAD", "/"),
    ("POST", "/"),
    ("GET", "/healthz"),
    ("HEAD", "/healthz"),
    ("POST", "/healthz"),
    ("POST", "/webhook"),
    ("GET", "/webhook"),
    ("HEAD", "/webhook"),
    ("PUT", "/webhook"),
    ("PATCH", "/webhook"),
    ("DELETE", "/webhook"),
    ("OPTIONS", "/webhook"),
    ("POST", "/webhook/"),
    ("GET", "/callbacks"),
    ("GET", "/api/callbacks"),
    ("GET", "/static/app.py"),
    ("GET", "/..%2f..%2fetc%2fpasswd"),
    ("GET", "/%00"),
    ("GET", "/" + "a" * 3000),
]


def _auths(secret: str) -> dict[str, tuple[dict, dict]]:
    """(query, headers) per way of presenting a token; only ``query`` and ``header`` are right."""
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return {
        "none": ({}, {}),
        "empty": ({"token": ""}, {"X-Webhook-Token": ""}),
        "wrong": ({"token": "nope"}, {}),
        "all but the last character": ({"token": flipped}, {}),
        "prefix": ({}, {"X-Webhook-Token": secret[:-1]}),
        "secret plus one": ({"token": secret + "x"}, {}),
        "upper case": ({"token": secret.upper()}, {}),
        "wrong query, right header": ({"token": "nope"}, {"X-Webhook-Token": secret}),
        "bearer header": ({}, {"Authorization": f"Bearer {secret}"}),
        "query": ({"token": secret}, {}),
        "header": ({}, {"X-Webhook-Token": secret}),
    }


_RIGHT = ("query", "header")


def access(
    workdir: Path, *, db: str | None = None, server: str | None = None, log=lambda s: None
) -> dict:
    """Every route, with every way of presenting a token, on a working and on a locked database,
    through the real server. Checks: no write and no content without the token; no secret, path
    or traceback in any answer or header; the secret in no log record; never a 500.

    ``db``: a PostgreSQL URL instead of a SQLite file in ``workdir``; "locked" is then another
    session holding ``LOCK TABLE callbacks, rejected IN EXCLUSIVE MODE`` (writes wait, reads do
    not, as with a SQLite writer in WAL mode), and the URL, its password and the database's name
    count as leaks too.

    ``server``: None runs the app on waitress in this process, and checks every log record at
    DEBUG level; a name runs ``python collector.py --server NAME`` and checks every line the
    process writes (the app's log and the server's own), but the banner, whose callback URL
    carries the token for the operator to copy."""
    import requests

    from tavus_analytics import Settings
    from tavus_analytics.server import start_in_thread, stop

    workdir = Path(workdir)
    secret = new_secret()
    db = workdir / "access.db" if db is None else db
    marker = "TRANSCRIPT-" + new_secret()
    evidence = "REJECTED-" + new_secret()
    records: list[str] = []
    col = server_obj = None
    loggers, old_levels = [], []
    if server is None:
        settings = Settings(db=str(db), secret=secret, port=0, threads=2, busy_timeout_ms=50)
        server_obj, base = start_in_thread(settings)

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(self.format(record))

        handler = Keep()
        names = ("tavus_analytics", "waitress", "werkzeug", "psycopg")
        loggers = [logging.getLogger(n) for n in names]
        old_levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            lg.setLevel(logging.DEBUG)
    else:
        col = Collector(
            db,
            secret,
            workdir,
            name="access",
            server=server,
            extra_args=["--threads", "2", "--busy-timeout-ms", "50"],
        )
        col.start()
        base = col.url
    leaks = [secret, str(workdir), str(db), str(ROOT), "site-packages", "Traceback", 'File "']
    db_password = None
    if is_url(db):
        from urllib.parse import urlsplit

        parts = urlsplit(db)
        db_password = parts.password
        leaks += [p for p in (db_password, parts.path.strip("/")) if p]
    problems: list[str] = []
    statuses: Counter = Counter()
    n = 0
    # One connection for the counts on PostgreSQL (a new one per request would cost a login).
    counter = connect(db) if is_url(db) else None
    try:
        with requests.Session() as s:
            seed = {
                "conversation_id": "c-access",
                "event_type": "application.transcription_ready",
                "properties": {"transcript": [{"role": "user", "content": marker}]},
            }
            r = s.post(f"{base}/webhook", params={"token": secret}, json=seed, timeout=10)
            assert r.status_code == 200, r.text
            r = s.post(f"{base}/webhook", params={"token": secret}, data=evidence, timeout=10)
            assert r.status_code == 400, r.text
            for state in ("working", "locked"):
                with _locked(db) if state == "locked" else contextlib.nullcontext():
                    for method, path in ROUTES:
                        for name, (query, headers) in _auths(secret).items():
                            n += 1
                            body = json.dumps(
                                {"conversation_id": f"c{n}", "event_type": "x.y", "seq": n}
                            ).encode()
                            before = _counts(counter or db) if state == "working" else None
                            r = s.request(
                                method,
                                base + path,
                                params=query,
                                headers=headers,
                                data=body,
                                timeout=15,
                            )
                            statuses[r.status_code] += 1
                            where = f"{state} {method} {path[:40]} [{name}] -> {r.status_code}"
                            text = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
                            for leak in leaks + [marker, evidence]:
                                if leak in text:
                                    problems.append(f"{where}: answer shows {leak[:20]!r}")
                            if r.status_code >= 500 and r.status_code != 503:
                                problems.append(f"{where}: server error")
                            right = name in _RIGHT
                            writes = right and (method, path) == ("POST", "/webhook")
                            changed = before is not None and _counts(counter or db) != before
                            if changed and not writes:
                                problems.append(f"{where}: the database changed")
                            if (method, path) == ("POST", "/webhook"):
                                want = (200 if state == "working" else 503) if right else 401
                                if r.status_code != want:
                                    problems.append(f"{where}: expected {want}")
                            if path == "/" and method == "GET" and r.status_code == 200:
                                # WAL readers are not blocked by a writer (nor are they by
                                # an EXCLUSIVE lock on PostgreSQL): with the token the counts
                                # show even while the database is locked.
                                shows = "callback" in r.text and "stored" in r.text
                                if shows != right:
                                    problems.append(f"{where}: counts shown={shows}")
                log(f"{state}: {n} requests so far, {len(problems)} problems")
    finally:
        if counter is not None:
            counter.close()
        if col is not None:
            col.stop()
        else:
            stop(server_obj)
        for lg, level in zip(loggers, old_levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    if col is not None:
        records = _log_lines_but_the_banner(col)
        problems += col.problems()
    for rec in records:
        if secret in rec:
            problems.append(f"log record shows the secret: {rec[:100]}")
        if db_password and db_password in rec:
            problems.append(f"log record shows the database password: {rec[:60]}")
    return {
        "scenario": "access",
        "server": "waitress, in-process" if server is None else server_name(server),
        "routes": len(ROUTES),
        "token_variants": len(_auths(secret)),
        "requests": n,
        "answers": dict(sorted(statuses.items())),
        "log_records_checked": len(records),
        "problems": problems[:20],
        "ok": not problems,
    }


def _log_lines_but_the_banner(col: Collector) -> list[str]:
    """Every line a collector process wrote, but its banner (from "listening on" to the
    "Status page" line), which shows the callback URL with the token on purpose."""
    lines, in_banner = [], False
    for path in col.logs:
        for line in path.read_text(errors="replace").splitlines():
            if "collector listening on http" in line:
                in_banner = True
            if not in_banner:
                lines.append(line)
            if line.startswith("Status page"):
                in_banner = False
    return lines


@contextlib.contextmanager
def _locked(db: Path | str):
    """Another session holding the write lock for the block: ``BEGIN EXCLUSIVE`` on SQLite,
    ``LOCK TABLE ... IN EXCLUSIVE MODE`` on PostgreSQL."""
    if is_url(db):
        import psycopg

        with psycopg.connect(db) as conn:
            conn.execute("LOCK TABLE callbacks, rejected IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
        return
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _counts(db) -> tuple[int, int]:
    """Rows in ``callbacks`` and ``rejected``: of a database (a new connection) or through an
    open connection."""
    if not isinstance(db, Path | str):
        return (
            db.execute("SELECT count(*) FROM callbacks").fetchone()[0],
            db.execute("SELECT count(*) FROM rejected").fetchone()[0],
        )
    conn = connect(db)
    try:
        return (
            conn.execute("SELECT count(*) FROM callbacks").fetchone()[0],
            conn.execute("SELECT count(*) FROM rejected").fetchone()[0],
        )
    finally:
        conn.close()


# -- timing of the token check -------------------------------------------------------------------
def _mann_whitney_z(a: list[float], b: list[float]) -> float:
    """The normal approximation of the Mann-Whitney U statistic (ties get average ranks)."""
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r_a = sum(r for r, (_, g) in zip(ranks, pooled, strict=True) if g == 0)
    n1, n2 = len(a), len(b)
    u = r_a - n1 * (n1 + 1) / 2
    mean, sd = n1 * n2 / 2, (n1 * n2 * (n1 + n2 + 1) / 12) ** 0.5
    return (u - mean) / sd


def _token_classes(secret: str) -> dict[str, str]:
    def wrong_from(i: int) -> str:
        return secret[:i] + "".join("A" if c != "A" else "B" for c in secret[i:])

    return {
        "nothing right": wrong_from(0),
        "first half right": wrong_from(len(secret) // 2),
        "all but the last right": wrong_from(len(secret) - 1),
        "empty": "",
        "10x too long": secret * 10,
    }


def token_timing(workdir: Path, *, samples: int = 3000, seed: int = 0) -> dict:
    """Measure how long a wrong token takes to refuse, by how much of it is right.

    Two measurements, each interleaving the token classes in random order: (1) ``GET /`` through
    the app (Flask's test client, logging off), ``samples`` requests per class; (2) the check
    alone (the app's digest and ``hmac.compare_digest``), and, as a control that the method can
    see a leak, a plain ``==`` on 1 MB strings. Reported: medians and the Mann-Whitney z of
    "all but the last right" against "nothing right" (|z| < 3: no detectable difference).
    """
    from tavus_analytics import Settings, create_app
    from tavus_analytics.app import _digest

    rng = random.Random(seed)
    secret = new_secret()
    app = create_app(Settings(db=str(Path(workdir) / "timing.db"), secret=secret))
    client = app.test_client()
    logger = logging.getLogger("tavus_analytics")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    classes = _token_classes(secret)
    order = [name for name in classes for _ in range(samples)]
    rng.shuffle(order)
    http: dict[str, list[float]] = {name: [] for name in classes}
    try:
        for name in order[: len(classes) * 50]:  # warm-up
            client.get("/", query_string={"token": classes[name]})
        for name in order:
            t = time.perf_counter_ns()
            client.get("/", query_string={"token": classes[name]})
            http[name].append((time.perf_counter_ns() - t) / 1000)
    finally:
        logger.setLevel(old)

    # Where a string sits in memory changes how long reading it takes by a nanosecond or two.
    # With one string per class, that would be the same for every sample of the class, and at
    # thousands of samples the test sees it as a difference between classes (z = 10 in one run,
    # for 1.8 ns of 430). So each class's token is kept in many copies, made in turn, and each
    # sample takes one at random: where they sit is then noise, not a class's.
    copies: dict[str, list[str]] = {name: [] for name in classes}
    for _ in range(64):
        for name, token in classes.items():
            copies[name].append("".join(list(token)))  # a new string, wherever it lands
    want = _digest(secret)
    check: dict[str, list[float]] = {name: [] for name in classes}
    reps = 200
    for name in order:
        given = rng.choice(copies[name])
        t = time.perf_counter_ns()
        for _ in range(reps):
            hmac.compare_digest(_digest(given), want)
        check[name].append((time.perf_counter_ns() - t) / reps)

    big = "x" * 1_000_000
    leaky = {"nothing right": "y" + big[1:], "all but the last right": big[:-1] + "y"}
    control: dict[str, list[float]] = {k: [] for k in leaky}
    for name in [k for k in leaky for _ in range(300)]:
        t = time.perf_counter_ns()
        _ = leaky[name] == big
        control[name].append((time.perf_counter_ns() - t) / 1000)

    a, b = "nothing right", "all but the last right"
    return {
        "scenario": "token timing",
        "samples_per_class": samples,
        "http_median_us": {k: round(statistics.median(v), 1) for k, v in http.items()},
        "http_z_all_but_last_vs_nothing": round(_mann_whitney_z(http[b], http[a]), 2),
        "check_median_ns": {k: round(statistics.median(v), 1) for k, v in check.items()},
        "check_z_all_but_last_vs_nothing": round(_mann_whitney_z(check[b], check[a]), 2),
        "control_plain_eq_1MB_median_us": {
            k: round(statistics.median(v), 2) for k, v in control.items()
        },
        "control_z": round(_mann_whitney_z(control[b], control[a]), 2),
    }


@contextlib.contextmanager
def default_recursion_limit(limit: int = 1000):
    """Python's default recursion limit for the duration (hypothesis raises it while a test runs,
    and the collector's JSON fallback parser accepts deeper bodies under a higher limit)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# -- fuzz drivers --------------------------------------------------------------------------------
def fuzz_app(workdir: Path, *, examples: int = 2000, seed: int = 0, db: str | None = None) -> dict:
    """Fuzz ``POST /webhook`` through Flask's test client; then check the data loads cleanly.

    ``db``: a PostgreSQL URL of an empty database instead of a SQLite file in ``workdir``."""
    from hypothesis import HealthCheck, given, settings

    from tavus_analytics import Settings, Store, create_app, open_store

    if db is None:
        db = Path(workdir) / "fuzz-app.db"
        store = Store(db)
    else:
        store = open_store(db)
        store.migrate()
    app = create_app(Settings(db=str(db), secret="fuzz", max_body=FUZZ_MAX_BODY), store=store)
    client = app.test_client()
    conn = connect(db)
    outcomes: Counter = Counter()
    logging.getLogger("tavus_analytics").setLevel(logging.CRITICAL)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies(), content_type=content_types(), header=st.booleans())
    def one(body: bytes, content_type: str | None, header: bool) -> None:
        kwargs = (
            {"headers": {"X-Webhook-Token": "fuzz"}}
            if header
            else {"query_string": {"token": "fuzz"}}
        )
        with default_recursion_limit():
            r = client.post("/webhook", data=body, content_type=content_type, **kwargs)
        check_answer(r.status_code, r.get_data(), body, conn)
        outcomes[r.status_code] += 1

    t0 = time.monotonic()
    try:
        random.seed(seed)
        one()
    finally:
        logging.getLogger("tavus_analytics").setLevel(logging.NOTSET)
        conn.close()
        store.close()
    loaded = loads_cleanly(db)
    return {
        "scenario": "fuzz (Flask test client)",
        "examples": sum(outcomes.values()),
        "answers": dict(sorted(outcomes.items())),
        "load": loaded,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "ok": loaded["ok"],
    }


def fuzz_server(
    workdir: Path, *, examples: int = 300, db: str | None = None, server: str | None = None
) -> dict:
    """Fuzz a real collector process with framed, chunked, truncated and malformed bodies.

    ``db``: a PostgreSQL URL of an empty database instead of a SQLite file in ``workdir``;
    ``server``: the collector's ``--server`` (None: its default)."""
    import requests
    from hypothesis import HealthCheck, given, settings

    workdir = Path(workdir)
    db = workdir / "fuzz-server.db" if db is None else db
    col = Collector(
        db,
        "fuzz",
        workdir,
        name="fuzz",
        extra_args=["--max-body", str(FUZZ_MAX_BODY)],
        server=server,
    )
    name = server_name(server)
    col.start()
    conn = connect(db)
    outcomes: Counter = Counter()

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(body=bodies(), transfer=transfers(), content_type=content_types())
    def one(body: bytes, transfer: tuple[str, list[int]], content_type: str | None) -> None:
        mode, cuts = transfer
        if content_type is not None and not content_type.isprintable():
            content_type = "application/json"
        before = conn.execute("SELECT count(*) FROM callbacks").fetchone()[0]
        was_stored = is_stored(conn, body)  # hypothesis sends some bodies more than once
        path = "/webhook?token=fuzz"
        answer = raw_exchange(col.port, path, body, mode, cuts, content_type)

        def resend() -> bytes:
            return raw_exchange(col.port, path, body, mode, cuts, content_type, half_close=False)

        got = check_raw(
            answer,
            body,
            mode,
            before,
            conn,
            server=name,
            cuts=cuts,
            resend=resend,
            was_stored=was_stored,
        )
        outcomes[(mode, got)] += 1

    t0 = time.monotonic()
    try:
        one()
        health = requests.get(f"{col.url}/healthz", timeout=10).status_code
        alive = col.proc.poll() is None
    finally:
        conn.close()
        col.stop()
    loaded = loads_cleanly(db)
    problems = col.problems()
    if is_url(db):
        from .pg import log_leaks

        problems += log_leaks([col], db)
    return {
        "scenario": "fuzz (collector process, raw sockets)",
        "server": name,
        "examples": sum(outcomes.values()),
        "outcomes": {f"{m}: {o}": n for (m, o), n in sorted(outcomes.items())},
        "collector_alive_after": alive,
        "healthz_after": health,
        "collector_log_problems": problems[:5],
        "load": loaded,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "ok": loaded["ok"] and health == 200 and alive and not problems,
    }
