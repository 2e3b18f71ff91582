"""The ``tavus-analytics`` command line: a thin shell over the library.

Every command calls functions of the package; errors a user can fix are shown as one line
(``Error: ...``) with exit code 1 and no traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import click

from .config import Settings
from .errors import TavusAnalyticsError
from .export import TABLE_NAMES
from .store import display_url, existing, open_store


class _Group(click.Group):
    """The command group: every error a user meets is one line on stderr, never a traceback.

    Library errors exit 1 with their message; usage errors (a malformed option value, a
    missing argument) exit 2 with click's message and where to find help, on one line.
    Anything unexpected is one line too, asking for a report; ``TAVUS_ANALYTICS_DEBUG=1``
    shows the traceback.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TavusAnalyticsError as e:
            raise click.ClickException(str(e)) from None

    def main(self, args=None, prog_name=None, **extra):
        _quiet_libraries()
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "tavus-analytics"
            click.echo(f"Error: {e.format_message()} (see '{where} --help')", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except OSError as e:
            if os.environ.get("TAVUS_ANALYTICS_DEBUG"):
                raise
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            click.echo(f"Error: {e.strerror or e}{where}", err=True)
            sys.exit(1)
        except Exception as e:
            if os.environ.get("TAVUS_ANALYTICS_DEBUG"):
                raise
            line = str(e).strip().splitlines()[0] if str(e).strip() else ""
            click.echo(
                f"Error: unexpected {type(e).__name__}: {line} (run again with "
                "TAVUS_ANALYTICS_DEBUG=1 for the details, and please report it)",
                err=True,
            )
            sys.exit(1)


def _quiet_libraries() -> None:
    """A command says what went wrong itself: the connection pool's own retry warnings would
    only repeat it, several lines each."""
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)


def _user_errors(f):
    """Turn library errors into one-line CLI errors, for commands run on their own."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except TavusAnalyticsError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def _settings(**overrides) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


def _open_store(db: str | None, *, must_exist: bool = True):
    """The store on ``--db`` (or the configured default): SQLite or PostgreSQL. A missing file
    is an error for commands that only read."""
    settings = _settings(db=db)
    store = open_store(settings.db, busy_timeout_ms=settings.busy_timeout_ms, must_exist=must_exist)
    if not must_exist:  # a command that writes: say now what stands in the way, in one line
        try:
            store.ping()
        except BaseException:
            store.close()
            raise
    return store


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file or postgresql:// URL [env TAVUS_ANALYTICS_DB; default data/tavus.db].",
)


@click.group(cls=_Group)
@click.version_option(package_name="tavus-analytics")
def cli():
    """Collect Tavus callbacks into SQLite and analyse them.

    Example:

        tavus-analytics demo && tavus-analytics serve
    """


@cli.command()
@db_option
@click.option(
    "--host",
    default=None,
    help="Interface to listen on [env TAVUS_ANALYTICS_HOST; default 127.0.0.1].",
)
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port to listen on [env TAVUS_ANALYTICS_PORT; default 5000].",
)
@click.option(
    "--secret",
    default=None,
    help="Token senders must present [env "
    "TAVUS_WEBHOOK_SECRET; default: generated once and kept in DB.secret].",
)
@click.option(
    "--no-auth",
    is_flag=True,
    default=None,
    help="Accept callbacks without a token (anyone who reaches the collector can write).",
)
@click.option(
    "--max-body",
    type=int,
    default=None,
    help="Largest accepted body in bytes [env TAVUS_ANALYTICS_MAX_BODY; default 16 MiB].",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Worker threads [env TAVUS_ANALYTICS_THREADS; default 8].",
)
@click.option(
    "--server",
    type=click.Choice(["waitress", "granian", "gunicorn"]),
    default=None,
    help="WSGI server [env TAVUS_ANALYTICS_SERVER; default waitress]: waitress (one process, "
    "any platform), granian (fastest measured, any platform) or gunicorn (Linux, macOS).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Server processes [env TAVUS_ANALYTICS_WORKERS; default 1], granian or gunicorn only.",
)
@_user_errors
def serve(db, host, port, secret, no_auth, max_body, threads, server, workers):
    """Run the webhook collector with a production WSGI server (waitress).

    Prints the callback URL to paste into Tavus and the ngrok command to expose it.

    Example:

        tavus-analytics serve --db data/tavus.db --port 5000
    """
    from .server import serve as run

    settings = _settings(
        db=db,
        host=host,
        port=port,
        secret=secret,
        no_auth=no_auth,
        max_body=max_body,
        threads=threads,
        server=server,
        workers=workers,
    )
    run(settings)


@cli.command()
@db_option
@click.option(
    "--conversations",
    "-n",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="How many synthetic conversations to make.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Random seed: the same seed gives the same callbacks.",
)
@click.option(
    "--post",
    "post_url",
    default=None,
    metavar="URL",
    help="Send the callbacks to a "
    "running collector (e.g. http://127.0.0.1:5000/webhook?token=...) instead of "
    "writing the database.",
)
@_user_errors
def demo(db, conversations, seed, post_url):
    """Make realistic synthetic Tavus callbacks, seeded and reproducible.

    They go straight into the database (default), or through a running collector with --post.

    Example:

        tavus-analytics demo --conversations 500 --db data/tavus.db
    """
    from . import demo as demo_mod

    if post_url:
        result = demo_mod.post(post_url, conversations=conversations, seed=seed, progress=True)
        click.echo(
            f"posted {result['sent']} callbacks to {post_url}: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(result["answers"].items()))
        )
        if result.get("failed"):
            sys.exit(1)
        return
    settings = _settings(db=db)
    _open_store(settings.db, must_exist=False).close()  # what stands in the way, before the bar
    result = demo_mod.write(settings.db, conversations=conversations, seed=seed, progress=True)
    click.echo(
        f"{display_url(settings.db)}: {result.stored} callbacks stored, "
        f"{result.duplicate} duplicates skipped, "
        f"{result.rejected} rejected ({conversations} demo conversations, seed {seed})"
    )


@cli.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="DB",
    help="The database to copy from: a SQLite file or a postgresql:// URL.",
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="DB",
    help="The database to copy into (created if needed): a SQLite file or a postgresql:// URL.",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Rows per transaction.",
)
@_user_errors
def migrate(source, target, chunk):
    """Copy the stored history from one database into another.

    Every callback and rejected body is copied with all its columns, in transactions of
    --chunk rows that also record how far the copy got: run it again after an interruption and
    it resumes; run it after it finished and it copies nothing. Callbacks the target already
    holds (same body) are skipped as duplicates. The source is only read. Passwords in URLs are
    never printed.

    Example:

    \b
        tavus-analytics migrate --from data/tavus.db \\
            --to postgresql://tavus@db.internal:5432/tavus
    """
    from tqdm import tqdm

    from .store.copy import copy_history

    bar = tqdm(desc="migrate", unit=" rows", unit_scale=True, mininterval=0.5, delay=0.5)
    try:
        result = copy_history(
            source,
            target,
            chunk=chunk,
            on_progress=bar.update,
            on_total=lambda n: setattr(bar, "total", n),
        )
    finally:
        bar.close()
    since = ""
    if any(result.resumed_from):
        since = (
            f" (resumed after callback {result.resumed_from[0]}, rejected {result.resumed_from[1]})"
        )
    click.echo(
        f"{display_url(source)} -> {display_url(target)}: "
        f"{_plural(result.callbacks, 'callback')} read, {result.stored} stored, "
        f"{_plural(result.duplicate, 'duplicate')} already there, "
        f"{result.rejected} rejected bodies copied in {result.seconds:.1f} s{since}"
    )


@cli.command("import")
@db_option
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@_user_errors
def import_(db, files):
    """Store callbacks from files, through the collector's storage path.

    Each FILE holds one JSON object, a JSON array, JSON Lines, or a saved Tavus API answer
    (GET /v2/conversations/{id}?verbose=true, whose events are the callbacks); - reads standard
    input. Every file is read before anything is written, and all records are stored in one
    transaction: nothing is half-imported. Records already stored are skipped as duplicates;
    records that are not JSON objects go to the rejected table. The database is created if
    needed.

    Example:

        tavus-analytics import saved/*.json callbacks.jsonl --db data/tavus.db
    """
    from .importer import import_files

    store = _open_store(db, must_exist=False)
    try:
        result = import_files(store, files, progress=True)
    finally:
        store.close()
    line = (
        f"{store.name}: {_plural(result.records, 'record')} from {_plural(len(files), 'file')}: "
        f"{result.stored} stored, {_plural(result.duplicate, 'duplicate')}, "
        f"{result.rejected} rejected"
    )
    if result.same_event:
        line += (
            f" ({result.same_event} API events matched a stored callback with the same "
            "conversation, event type and timestamp)"
        )
    click.echo(line)
    if result.rejected:
        click.echo("Rejected records are kept with the reason in the rejected table.")


def _when(ctx, param, value):
    """A --since/--until value as a UTC datetime (a click callback)."""
    from .importer import parse_time

    try:
        return parse_time(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


since_option = click.option(
    "--since",
    metavar="DATE",
    callback=_when,
    help="From this date or time, inclusive (YYYY-MM-DD or ISO 8601; UTC unless a zone is given).",
)
until_option = click.option(
    "--until",
    metavar="DATE",
    callback=_when,
    help="Before this date or time, exclusive (--until 2025-07-12 includes all of July 11).",
)


@cli.command()
@db_option
@click.option(
    "--to", "url", required=True, metavar="URL", help="Where to POST, e.g. a staging collector."
)
@since_option
@until_option
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    metavar="TYPE",
    help="Only this event type (repeat for several), e.g. system.shutdown.",
)
@click.option(
    "--conversation",
    "conversations",
    multiple=True,
    metavar="ID",
    help="Only this conversation (repeat for several).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Requests per second at most (0: no limit).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@_user_errors
def replay(db, url, since, until, event_types, conversations, rate, timeout):
    """POST stored callbacks again, byte for byte, to another endpoint.

    Callbacks are sent in arrival order; --since and --until select by arrival time
    (received_at, UTC). Prints how many answers of each HTTP status came back and exits 1 when
    some were not 2xx or the target cannot be reached.

    Example:

    \b
        tavus-analytics replay --to "http://127.0.0.1:5001/webhook?token=$TOKEN" \\
            --since 2025-07-01 --event-type application.transcription_ready --rate 5
    """
    from .replay import display_url as target_url
    from .replay import replay as run

    store = _open_store(db)
    try:
        result = run(
            store,
            url,
            since=since,
            until=until,
            event_types=event_types,
            conversations=conversations,
            rate=rate,
            timeout=timeout,
            progress=True,
        )
    finally:
        store.close()
    if not result.selected:
        click.echo("No stored callback matches: nothing sent.")
        return
    answers = ", ".join(f"{status}: {n}" for status, n in sorted(result.answers.items()))
    click.echo(f"Sent {_plural(result.sent, 'callback')} to {target_url(url)}; answers: {answers}")
    if result.refused:
        raise click.ClickException(
            f"{result.refused} of {result.sent} callbacks got an answer other than 2xx"
        )


@cli.command()
@db_option
@click.option(
    "--api-key",
    envvar="TAVUS_API_KEY",
    show_envvar=True,
    default=None,
    metavar="KEY",
    help="Tavus API key (prefer the environment variable: a flag shows in shell history). "
    "Sent only in the x-api-key header; never printed, logged or stored.",
)
@since_option
@click.option(
    "--base-url",
    envvar="TAVUS_API_BASE_URL",
    show_envvar=True,
    default="https://tavusapi.com",
    show_default=True,
    help="Root of the Tavus API.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Requests per second at most (0: no limit).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Tries again this many times on 429, 5xx or no answer.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="First wait before trying again, in seconds, doubled each time (Retry-After wins).",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Conversations asked for per page of the listing.",
)
@_user_errors
def backfill(db, api_key, since, base_url, rate, max_retries, backoff, page_size):
    """Recover callbacks the collector missed, from Tavus's API.

    Lists the account's conversations (page by page), keeps those created at or after --since,
    fetches each one's verbose detail (GET /v2/conversations/{id}?verbose=true) and stores its
    events as callbacks, then its canvas interactions (GET
    /v2/conversations/{id}/canvas/interactions; a 404 there means no canvas history and is
    counted). Events and interactions already stored, by the collector or by an earlier
    backfill, are skipped as duplicates, so it is safe to run again. Waits and tries again on
    429 and 5xx answers. Objective completions and guardrail triggers cannot be recovered: Tavus
    keeps no history of them.

    Example:

    \b
        TAVUS_API_KEY=... tavus-analytics backfill --since 2025-07-01 --db data/tavus.db
    """
    from .importer import TavusClient
    from .importer import backfill as run

    store = _open_store(db, must_exist=False)
    try:
        with TavusClient(
            api_key or "",
            base_url=base_url,
            rate=rate,
            max_retries=max_retries,
            backoff=backoff,
            page_size=page_size,
        ) as client:
            result = run(store, client, since=since, progress=True)
    finally:
        store.close()
    from .importer import LOST_IF_MISSED

    when = f" created since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
    canvas = result.canvas
    no_canvas = (
        f" ({_plural(result.no_canvas, 'conversation')} without canvas history)"
        if result.no_canvas
        else ""
    )
    click.echo(
        f"{store.name}: {_plural(result.listed, 'conversation')} listed, {result.selected}"
        f"{when}, {result.fetched} fetched: {_plural(result.records, 'event')}, "
        f"{result.stored} stored, {_plural(result.duplicate, 'duplicate')}, "
        f"{result.rejected} rejected; {_plural(canvas.records, 'canvas interaction')}, "
        f"{canvas.stored} stored, {canvas.duplicate} already stored"
        + (f", {canvas.rejected} rejected" if canvas.rejected else "")
        + no_canvas
    )
    click.echo(f"Not recoverable by backfill: {LOST_IF_MISSED}.")
    if result.failed:
        shown = "; ".join(f"{cid}: {reason}" for cid, reason in result.failed[:3])
        more = f" (and {len(result.failed) - 3} more)" if len(result.failed) > 3 else ""
        raise click.ClickException(
            f"{_plural(len(result.failed), 'conversation')} could not be fetched: {shown}{more}"
        )


@cli.command()
@db_option
@click.argument("phrase")
@click.option(
    "--role", type=click.Choice(["user", "assistant"]), default=None, help="Only this side."
)
@click.option("--conversation", metavar="ID", default=None, help="Only this conversation.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show at most this many messages.",
)
@click.option(
    "--fts",
    is_flag=True,
    help="PHRASE is a query in the database's own syntax instead of words to find side by side: "
    "SQLite FTS5 (refund AND late, cancel*, NEAR(a b, 5)) or PostgreSQL to_tsquery "
    "(refund & !cancel, cancel:*).",
)
@_user_errors
def search(db, phrase, role, conversation, limit, fts):
    """Find transcript messages that contain PHRASE (full-text search, SQLite or PostgreSQL).

    Matches the words in this order, ignoring case, accents and English word endings
    (refund finds "Refunds"); prints the conversation, the turn (the message's index in the
    transcript, 0 being the system prompt), the role and the words around the match, best
    match first.

    Example:

        tavus-analytics search "cancel my subscription" --role user --limit 10
    """
    from .store.search import search as find

    store = _open_store(db)
    try:
        found = find(
            store,
            phrase,
            role=role,
            conversation=conversation,
            limit=limit,
            fts=fts,
            before="\x1b[1m",
            after="\x1b[22m",
        )
    finally:
        store.close()
    if found.empty:
        click.echo(f"No transcript message matches {phrase!r}.")
        return
    width = max(len("conversation"), *(len(c) for c in found["conversation_id"]))
    click.echo(f"{'conversation':<{width}}  turn  {'role':<9}  text")
    for row in found.itertuples(index=False):
        snippet = " ".join(row.snippet.split())
        click.echo(f"{row.conversation_id:<{width}}  {row.turn:>4}  {row.role:<9}  {snippet}")
    more = " (--limit reached)" if len(found) == limit else ""
    click.echo(f"{_plural(len(found), 'message')}{more}")


replica_option = click.option(
    "--replica",
    "replicas",
    multiple=True,
    metavar="ID",
    help="Only conversations of this replica (repeat for several).",
)
load_since_option = click.option(
    "--since",
    metavar="DATE",
    callback=_when,
    help="Conversations that started (joined) at or after this date (ISO 8601, UTC unless a "
    "zone is given).",
)
load_until_option = click.option(
    "--until",
    metavar="DATE",
    callback=_when,
    help="Conversations that started before this date (exclusive).",
)


def _existing_db(db: str | None) -> str | Path:
    """The database to read: a PostgreSQL URL, or a SQLite file that must exist."""
    return existing(_settings(db=db).db)


@cli.command()
@db_option
@click.option(
    "--table",
    required=True,
    metavar="NAME",
    help=", ".join(TABLE_NAMES[:-1]) + f" or {TABLE_NAMES[-1]}.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "jsonl"]),
    required=True,
    help="csv, parquet (for DuckDB, Spark, pandas) or jsonl (JSON Lines).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=False),
    help="The file to write (replaced if it exists).",
)
@load_since_option
@load_until_option
@replica_option
@_user_errors
def export(db, table, fmt, out, since, until, replicas):
    """Write a derived table to a file, for other tools.

    The tables are the analytics tables of tavus_analytics.load (one row per conversation, per
    transcript message, per callback, ...), with the same columns and filters. Times are
    ISO 8601 UTC; in CSV and Parquet, nested values are JSON text. The file is written whole
    or not at all.

    Example:

        tavus-analytics export --table conversations --format parquet --out conversations.parquet
    """
    from .export import export as run

    path = _existing_db(db)
    rows = run(path, table, fmt, out, since=since, until=until, replicas=replicas)
    click.echo(f"Wrote {_plural(rows, 'row')} of {table} to {out}")


@cli.command()
@db_option
@load_since_option
@load_until_option
@replica_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON, for machines.")
@_user_errors
def stats(db, since, until, replicas, as_json):
    """Summarise the stored conversations in the terminal.

    Conversations (ended, in progress), completion rate (completed over ended calls), median and
    90th percentile duration (join to shutdown), the top shutdown reasons, transcript turns,
    perception coverage and the last callback received.

    Example:

        tavus-analytics stats --since 2025-07-01 --db data/tavus.db
    """
    import json

    from .dataset import load
    from .stats import render, summary

    path = _existing_db(db)
    ds = load(path, since=since, until=until, replicas=list(replicas) or None)
    figures = summary(ds)
    if as_json:
        filters = {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "replicas": list(replicas) or None,
        }
        click.echo(
            json.dumps({"database": display_url(path), "filters": filters, **figures}, indent=2)
        )
        return
    scope = []
    if since:
        scope.append(f"since {since:%Y-%m-%d %H:%M} UTC")
    if until:
        scope.append(f"until {until:%Y-%m-%d %H:%M} UTC")
    if replicas:
        scope.append("replica " + ", ".join(replicas))
    title = display_url(path) + (f" ({'; '.join(scope)})" if scope else "")
    click.echo(render(figures, title=title))


@cli.command()
@db_option
@click.option(
    "--clear", is_flag=True, help="Remove it (the next load makes it again, more slowly)."
)
@_user_errors
def cache(db, clear):
    """Show where the cache of what loading derives from a database is kept, and its size.

    Loading keeps what it derives from each callback (counts, parsed times, transcript rows), so
    that the next load reads only the callbacks that arrived since: beside a SQLite file, in
    DB.cache, else in TAVUS_ANALYTICS_CACHE_DIR or the user's cache folder. The tables are the
    same with or without it; removing it is always safe.

    Example:

        tavus-analytics cache --clear --db data/tavus.db
    """
    from .cache import cache_of

    kept = cache_of(_existing_db(db))
    if clear:
        freed = kept.clear()
        click.echo(f"Removed the cache of {kept.reader.name} ({freed / 2**20:,.1f} MiB)")
        return
    size = kept.size()
    if not size:
        click.echo(f"{kept.root}: no cache yet (the next load makes it)")
        return
    click.echo(f"{kept.root}: {size / 2**20:,.1f} MiB")


@cli.command()
@db_option
@load_since_option
@load_until_option
@replica_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write (replaced if it exists).",
)
@_user_errors
def report(db, since, until, replicas, out):
    """Write a shareable report: one self-contained HTML file with every chart.

    Key figures in a table at the top, the period and the database it came from, the time it
    was made, then every chart (embedded as PNG). The file needs no server and no network: open
    it in any browser or send it as it is.

    Example:

        tavus-analytics report --since 2025-07-01 --db data/tavus.db --out report.html
    """
    from .report import write

    path = _existing_db(db)
    written = write(path, out, since=since, until=until, replicas=replicas, progress=True)
    click.echo(f"Wrote {written}")


@cli.command("charts")
@db_option
@load_since_option
@load_until_option
@replica_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="The folder to write the PNG files into (made if needed; files are replaced).",
)
@_user_errors
def charts_(db, since, until, replicas, out):
    """Write every chart as a PNG file, one per chart (volume.png, durations.png, ...).

    The same charts as the report and as tavus_analytics.charts in a notebook.

    Example:

        tavus-analytics charts --since 2025-07-01 --db data/tavus.db --out charts/
    """
    from .report import write_charts

    path = _existing_db(db)
    written = write_charts(path, out, since=since, until=until, replicas=replicas, progress=True)
    click.echo(f"Wrote {_plural(len(written), 'chart')} to {out}")


@cli.command()
@click.option(
    "--api-key",
    envvar="TAVUS_API_KEY",
    show_envvar=True,
    default=None,
    metavar="KEY",
    help="Tavus API key (prefer the environment variable: a flag shows in shell history). "
    "Sent only in the x-api-key header; never printed, logged or stored.",
)
@click.option(
    "--callback-url",
    default=None,
    metavar="URL",
    help="The collector's public callback URL with its token, as tavus-analytics serve prints "
    "it (https://<your-ngrok-domain>/webhook?token=...). Without it, only lists.",
)
@click.option(
    "--apply",
    is_flag=True,
    help="Change the callback_url of those that do not point at the collector (default: a dry "
    "run, which changes nothing).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON, for machines.")
@click.option(
    "--base-url",
    envvar="TAVUS_API_BASE_URL",
    show_envvar=True,
    default="https://tavusapi.com",
    show_default=True,
    help="Root of the Tavus API.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Requests per second at most (0: no limit).",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Tries again this many times on 429, 5xx or no answer.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="First wait before trying again, in seconds, doubled each time (Retry-After wins).",
)
@_user_errors
def setup(api_key, callback_url, apply, as_json, base_url, rate, max_retries, backoff):
    """Point the account's objectives and guardrails at the collector.

    Lists every objective and guardrail with its callback_url (tokens shown as ***) and says
    which already point at the collector's URL (--callback-url). A dry run by default: it
    prints what it would change and changes nothing. With --apply it patches the callback_url
    of the others, prints each change (old -> new), then lists them again to confirm. Objective
    completions and guardrail triggers go to these URLs, not to the conversation's; Tavus sends
    them once and keeps no history, so a stopped collector loses them for good.

    Example:

    \b
        TAVUS_API_KEY=... tavus-analytics setup \\
            --callback-url "https://example.ngrok.app/webhook?token=$TOKEN"
    """
    import json

    from . import callback_urls as cu
    from .importer import TavusApiError, TavusClient

    if apply and not callback_url:
        raise click.UsageError(
            "--apply needs --callback-url URL: the collector's public callback URL with its "
            "token, as tavus-analytics serve prints it"
        )
    with TavusClient(
        api_key or "",
        base_url=base_url,
        rate=rate,
        max_retries=max_retries,
        backoff=backoff,
        user_agent="tavus-analytics setup",
    ) as client:
        try:
            plan = cu.plan(client, callback_url)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="'--callback-url'") from None
        stopped = None
        if apply:
            try:
                cu.apply(client, plan)
            except TavusApiError as e:  # what was changed before is shown, then the error
                stopped = e
    problems = plan.outcomes(cu.FAILED) + plan.outcomes(cu.UNCONFIRMED)
    if as_json:
        click.echo(json.dumps({**cu.as_dict(plan), "stopped": stopped and str(stopped)}, indent=2))
    else:
        _print_setup(plan, cu, stopped)
    if stopped:
        raise click.ClickException(str(stopped))
    if problems:
        shown = "; ".join(
            f"{e.resource.kind} {e.resource.name or e.resource.id}: {e.error}" for e in problems[:3]
        )
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise click.ClickException(
            f"{_plural(len(problems), 'callback_url')} not changed: {shown}{more}"
        )


def _print_setup(plan, cu, stopped=None) -> None:
    """The text output of ``setup``: one line per resource, a summary, the warnings."""
    target = cu.shown(plan.callback_url)
    click.echo(
        f"Tavus account: {_plural(plan.count(cu.OBJECTIVE), 'objective')}, "
        f"{_plural(plan.count(cu.GUARDRAIL), 'guardrail')}"
        + (f"; collector: {target}" if target else "")
    )
    rows = []
    for e in plan.entries:
        r = e.resource
        current = cu.shown(r.callback_url) or "no callback_url"
        if e.state is None:
            status = current
        elif not e.to_change:
            status = "points at the collector"
        else:
            note = " (another token)" if e.state == cu.OTHER_TOKEN else ""
            label = {
                cu.WOULD_CHANGE: "would change",
                cu.CHANGED: "changed",
                cu.FAILED: "not changed",
                cu.UNCONFIRMED: "unconfirmed",
            }[e.outcome]
            status = f"{label}: {current} -> {target}{note}"
            if e.error:
                status += f" ({e.error})"
        rows.append((r.kind, r.name or "-", r.id, status))
    if rows:
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
            click.echo("  " + "  ".join([*cells, row[3]]))
    if plan.skipped:
        click.echo(f"{_plural(plan.skipped, 'item')} without an id in Tavus's answer left out")
    total = len(plan.entries)
    if plan.callback_url is None:
        click.echo(
            "Listed only: pass --callback-url URL (the collector's, with its token) to see which "
            "point at the collector."
        )
    elif not plan.to_change:
        click.echo(f"All {total} point at the collector: nothing to change.")
    elif stopped:
        click.echo(
            f"Stopped after changing {len(plan.outcomes(cu.CHANGED))} of {total} (not confirmed): "
            "run it again to finish."
        )
    elif not plan.applied:
        click.echo(
            f"Dry run: {len(plan.to_change)} of {total} would change; nothing was sent to Tavus. "
            "Run again with --apply to change them."
        )
    else:
        changed = len(plan.outcomes(cu.CHANGED))
        missed = len(plan.to_change) - changed
        click.echo(
            f"Changed {changed} of {total}, confirmed by listing them again"
            + (f"; {missed} not changed." if missed else ".")
        )
    for warning in plan.warnings:
        click.echo(f"Warning: {warning}.")
    click.echo(f"Warning: {cu.LOST_IF_MISSED}.")


if __name__ == "__main__":
    cli()
