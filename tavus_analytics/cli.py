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
from .config import options as config_options
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


class _CannotStart(click.ClickException):
    """A one-line error for a command that cannot run as given (exit 2, as a usage error)."""

    exit_code = 2


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _setting_option(name: str, **overrides):
    """The click option of one setting, generated from its declaration in ``config.Settings``
    (flag, type, help, environment variable and default are declared there, once). The value
    is None unless given, so that ``Settings.from_env`` applies the environment and defaults."""
    opt = next(o for o in config_options() if o.name == name)
    kwargs: dict = {"default": None, "help": opt.help}
    if opt.kind == "bool":
        kwargs["is_flag"] = True
    elif opt.choices:
        kwargs["type"] = click.Choice(list(opt.choices))
    elif opt.kind == "int":
        kwargs["type"] = click.IntRange(min=opt.minimum) if opt.minimum is not None else int
    if name == "db":
        kwargs["type"] = click.Path(dir_okay=False)
    kwargs.update(overrides)
    return click.option(opt.flag, name, **kwargs)


def _settings_options(f):
    """Every setting as an option of ``serve``."""
    for opt in reversed(config_options()):
        f = _setting_option(opt.name)(f)
    return f


db_option = _setting_option("db")


redact_option = click.option(
    "--redact",
    is_flag=True,
    help="Show e-mail addresses, phone numbers, card numbers, IP addresses and URLs with "
    "credentials as [EMAIL], [PHONE], [CARD], [IP], [URL_WITH_CREDENTIALS] (the stored "
    "callbacks are not changed).",
)


@click.group(cls=_Group)
@click.version_option(package_name="tavus-analytics")
def cli():
    """Collect Tavus callbacks into SQLite and analyse them.

    Example:

        tavus-analytics demo && tavus-analytics serve
    """


@cli.command()
@_settings_options
@_user_errors
def serve(**given):
    """Run the webhook collector with a production WSGI server (granian by default).

    Prints the callback URL to paste into Tavus and the ngrok command to expose it; with
    --tunnel, opens a public URL itself and prints the callback URL and a ready curl. --tail
    prints a line per request. The dashboard is at /dashboard?token=... (figures and charts;
    what was said only with --dashboard-transcripts). --alerts FILE checks alert rules while
    it runs.

    Example:

        tavus-analytics serve --tunnel --tail --db data/tavus.db --port 5000
    """
    from .errors import MissingExtra, TunnelUnavailable
    from .server import serve as run

    settings = _settings(**given)
    # Not chosen (no --server, no TAVUS_ANALYTICS_SERVER): waitress where granian cannot run.
    chosen = given.get("server") is not None or bool(os.environ.get("TAVUS_ANALYTICS_SERVER"))
    try:
        run(settings, fallback=not chosen)
    except (MissingExtra, TunnelUnavailable) as e:
        # Nothing was served: the tunnel asked for cannot be opened (exit 2, as for a usage
        # error: the command as given cannot run).
        raise _CannotStart(str(e)) from None
    except TavusAnalyticsError as e:
        raise click.ClickException(str(e)) from None


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
    from .progress import progress
    from .store.copy import copy_history

    bar = progress("migrate", unit="rows", scale=True, delay=0.5)
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
        f"{result.rejected} rejected bodies copied, "
        f"{_plural(result.annotations, 'annotation')} in {result.seconds:.1f} s{since}"
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


#: The Tavus API key of the commands that call Tavus's API.
api_key_option = click.option(
    "--api-key",
    envvar="TAVUS_API_KEY",
    show_envvar=True,
    default=None,
    metavar="KEY",
    help="Tavus API key (prefer the environment variable: a flag shows in shell history). "
    "Sent only in the x-api-key header; never printed, logged or stored.",
)


def api_client_options(command):
    """``--base-url``, ``--rate``, ``--max-retries`` and ``--backoff``: how a command talks
    to Tavus's API."""
    options = (
        click.option(
            "--base-url",
            envvar="TAVUS_API_BASE_URL",
            show_envvar=True,
            default="https://tavusapi.com",
            show_default=True,
            help="Root of the Tavus API.",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0),
            default=5.0,
            show_default=True,
            help="Requests per second at most (0: no limit).",
        ),
        click.option(
            "--max-retries",
            type=click.IntRange(min=0),
            default=5,
            show_default=True,
            help="Tries again this many times on 429, 5xx or no answer.",
        ),
        click.option(
            "--backoff",
            type=click.FloatRange(min=0),
            default=1.0,
            show_default=True,
            help="First wait before trying again, in seconds, doubled each time (Retry-After "
            "wins).",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@db_option
@api_key_option
@since_option
@api_client_options
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
@redact_option
@_user_errors
def search(db, phrase, role, conversation, limit, fts, redact):
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
            redact=redact,
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
@redact_option
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="LABEL",
    help="Only conversations with this review label (repeat: any of them), and what belongs "
    "to them.",
)
@_user_errors
def export(db, table, fmt, out, since, until, replicas, redact, labels):
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
    rows = run(
        path,
        table,
        fmt,
        out,
        since=since,
        until=until,
        replicas=replicas,
        redact=redact,
        labels=labels,
    )
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
@click.option(
    "--look-at",
    "look_at",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="Calls to look at per reason (failed, shortest, guardrail, missed objectives, slowest "
    "answers, criteria failed), each with its page embedded; 0 leaves them out.",
)
@click.option(
    "--criteria",
    "criteria_file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Success criteria (TOML): chart their success rate and list the calls that fail them.",
)
@click.option(
    "--no-content",
    is_flag=True,
    help='Leave out the "What callers say" section (content analysis of the users\' words, '
    "which takes a few minutes for 100,000 calls the first time, then comes from its cache).",
)
@redact_option
@_user_errors
def report(db, since, until, replicas, out, look_at, criteria_file, no_content, redact):
    """Write a shareable report: one self-contained HTML file with every chart.

    Key figures in a table at the top, the period and the database it came from, the time it
    was made, then every chart (embedded as PNG), and the calls to look at: the failed, the
    shortest, those with a guardrail triggered, missed objectives or the slowest answers (and
    those that failed --criteria), each with its page folded in, and what callers say
    (sentiment, topics, questions) when the nlp extra is installed. The file needs no server
    and no network: open it in any browser or send it as it is.

    Example:

    \b
        tavus-analytics report --since 2025-07-01 --db data/tavus.db --out report.html \\
            --look-at 10 --criteria criteria.toml
    """
    from .report import write

    path = _existing_db(db)
    written = write(
        path,
        out,
        since=since,
        until=until,
        replicas=replicas,
        progress=True,
        look_at=look_at,
        criteria=criteria_file,
        content=not no_content,
        redact=redact,
    )
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
@click.option(
    "--no-content",
    is_flag=True,
    help="Leave out the charts of what callers say (sentiment, topics, questions).",
)
@redact_option
@_user_errors
def charts_(db, since, until, replicas, out, no_content, redact):
    """Write every chart as a PNG file, one per chart (volume.png, durations.png, ...).

    The same charts as the report and as tavus_analytics.charts in a notebook; the charts of
    what callers say when the nlp extra is installed and there are transcripts.

    Example:

        tavus-analytics charts --since 2025-07-01 --db data/tavus.db --out charts/
    """
    from .report import write_charts

    path = _existing_db(db)
    written = write_charts(
        path,
        out,
        since=since,
        until=until,
        replicas=replicas,
        progress=True,
        content=not no_content,
        redact=redact,
    )
    click.echo(f"Wrote {_plural(len(written), 'chart')} to {out}")


def _collector_secret(db: str | None) -> str | None:
    """The collector's token where this machine knows it (TAVUS_WEBHOOK_SECRET, or the file
    beside the database), so that it can be masked in what is sent; never generated here."""
    settings = _settings(db=db)
    if settings.secret:
        return settings.secret
    try:
        return settings.secret_path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


rules_option = click.option(
    "--rules",
    type=click.Path(dir_okay=False),
    envvar="TAVUS_ANALYTICS_ALERTS",
    show_envvar=True,
    required=True,
    metavar="FILE",
    help="The rules file (TOML): channels, [[rule]] tables, [digest].",
)


@cli.group()
def alerts():
    """Alert rules: check them once, see their states, test their channels.

    The rules and the channels they notify (a Slack-compatible webhook, a generic JSON webhook,
    e-mail) are in a TOML file described in docs/cli.md. Check them from cron or a systemd
    timer with alerts check, or let the collector check them with serve --alerts FILE.

    Example:

        tavus-analytics alerts check --rules alerts.toml --db data/tavus.db
    """


def _outcome_line(o, dry_run: bool) -> str:
    if o.changed:
        state = (
            f"would be {o.state} (is {o.previous})" if dry_run else f"{o.state} (was {o.previous})"
        )
    else:
        state = o.state
    told = ""
    if o.elsewhere:
        told = "; told by another checker"
    elif o.notified:
        told = "; told " + ", ".join(o.notified)
    if o.failures:
        told += "; not told " + ", ".join(o.failures)
    return f"{o.rule.name:<24} {state:<22} {o.reading.detail}{told}"


@alerts.command("check")
@db_option
@rules_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say what each rule finds and what would change; change no state and send nothing.",
)
@_user_errors
def alerts_check(db, rules, dry_run):
    """Check every alert rule once and notify each change of state.

    A rule is OK, FIRING or RESOLVED (kept in the database's alert_state table); a check that
    finds its condition met moves it to FIRING, one that finds it no longer met to RESOLVED,
    and each change is sent once to the rule's channels (a channel that failed is tried again
    at the next checks, for a day). Prints one line per rule: its state and what it found.
    Exits 1 when a channel could not be told. Messages carry figures only: never a transcript,
    never the collector's token.

    Example:

        tavus-analytics alerts check --rules alerts.toml --db data/tavus.db
    """
    from .alerts import check, failures, read_rules

    parsed = read_rules(rules)
    path = _existing_db(db)
    outcomes = check(parsed, path, secret=_collector_secret(db), dry_run=dry_run)
    for o in outcomes:
        click.echo(_outcome_line(o, dry_run))
    if not outcomes:
        click.echo(f"No rule in {rules}: nothing to check.")
    failed = failures(outcomes)
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise click.ClickException(failed[0] + more)


@alerts.command("status")
@db_option
@_user_errors
def alerts_status(db):
    """Show each alert rule's state as the last check left it.

    One line per rule: its state, since when, when it was last checked, what that check found
    and which channels were told of the last change. Reads the database only.

    Example:

        tavus-analytics alerts status --db data/tavus.db
    """
    from .alerts import states

    rows = states(_existing_db(db))
    if not rows:
        click.echo("No alert rule has been checked in this database yet.")
        return
    for r in rows:
        since = str(r["changed_at"])[:16].replace("T", " ")
        checked = str(r["checked_at"])[:16].replace("T", " ")
        told = f"; told {r['notified'].replace(',', ', ')}" if r["notified"] else ""
        click.echo(
            f"{r['rule']:<24} {r['state']:<9} since {since} UTC, checked {checked} UTC: "
            f"{r['detail'] or '-'}{told}"
        )


@alerts.command("test")
@rules_option
@click.option(
    "--channel",
    "names",
    multiple=True,
    metavar="NAME",
    help="Only this channel (repeat for several); default: every channel of the file.",
)
@_user_errors
def alerts_test(rules, names):
    """Send a test message to the channels of a rules file, to see that they work.

    Says for each channel whether it took the message. Exits 1 when one did not.

    Example:

        tavus-analytics alerts test --rules alerts.toml --channel ops
    """
    from .alerts import read_rules, test_message
    from .notify import deliver

    parsed = read_rules(rules)
    unknown = [n for n in names if n not in parsed.channels]
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]!r} is not a channel of {rules} ({', '.join(parsed.channels) or 'none'})",
            param_hint="'--channel'",
        )
    channels = parsed.channels_of(tuple(names) or None)
    if not channels:
        raise click.ClickException(f"{rules} declares no channel: add a [channels.NAME] table")
    sent = deliver(test_message(parsed), channels, _collector_secret(None))
    for ch in channels:
        result = "took the test message" if sent[ch.name] is None else "FAILED"
        click.echo(f"{ch.name:<16} {result}: {ch.describe()}")
    failed = [str(e) for e in sent.values() if e is not None]
    if failed:
        raise click.ClickException(
            failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
        )


@cli.command()
@db_option
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    default="week",
    show_default=True,
    help="The last complete day, week (Monday to Sunday) or month, in UTC.",
)
@click.option(
    "--at",
    metavar="DATE",
    callback=_when,
    help="Take the last complete period before this date instead of before now.",
)
@click.option(
    "--rate-per-minute",
    type=click.FloatRange(min=0),
    default=None,
    metavar="PRICE",
    help="Price of a call minute, for the estimated cost (default: [digest] rate_per_minute "
    "of --rules; none: no cost line).",
)
@replica_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "html"]),
    default="text",
    show_default=True,
    help="text (aligned columns), markdown (a table) or html (one self-contained page).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the digest to this file instead of the terminal (replaced if it exists).",
)
@click.option(
    "--send",
    is_flag=True,
    help="Send it to the channels of --rules ([digest] notify, default every channel), once per "
    "period and channel: a ledger in the database remembers what was sent.",
)
@click.option(
    "--rules",
    type=click.Path(dir_okay=False),
    envvar="TAVUS_ANALYTICS_ALERTS",
    show_envvar=True,
    default=None,
    metavar="FILE",
    help="The alert rules file whose channels --send uses (and its [digest] table).",
)
@_user_errors
def digest(db, period, at, rate_per_minute, replicas, fmt, out, send, rules):
    """A day, a week or a month of calls in a few figures, each against the period before.

    Calls, completion, no-show and failure rates, median duration, call minutes (join to
    shutdown), the estimated cost at --rate-per-minute, the top shutdown reasons, and where
    present objective completion and guardrail triggers per 100 calls. To the terminal, to a
    file (--out, as text, Markdown or HTML), or with --send to the alert channels: a scheduled
    run sends each period once (the ledger is in the database), so cron can run it daily.

    Example:

        tavus-analytics digest --period week --rate-per-minute 0.10 --format markdown
    """
    from . import digest as digests
    from .alerts import read_rules

    parsed = read_rules(rules) if rules else None
    if send and parsed is None:
        raise click.UsageError(
            "--send needs the channels of a rules file: --rules FILE or TAVUS_ANALYTICS_ALERTS"
        )
    if rate_per_minute is None and parsed is not None:
        rate_per_minute = parsed.digest.rate_per_minute
    path = _existing_db(db)
    made = digests.build(
        path, period, at=at, rate_per_minute=rate_per_minute, replicas=list(replicas) or None
    )
    if out:
        digests.write(made, out, fmt)
        click.echo(f"Wrote {made.title} to {out}")
    elif not send:
        click.echo(digests.render(made, fmt), nl=False)
    if not send:
        return
    store = _open_store(db)
    try:
        sent = digests.send(made, parsed, store, secret=_collector_secret(db))
    finally:
        store.close()
    if not sent:
        raise click.ClickException(f"{rules} declares no channel: add a [channels.NAME] table")
    click.echo(made.title)
    for name, what in sent.items():
        click.echo(f"  {name}: {what}")
    failed = [what for what in sent.values() if what != "sent" and not what.startswith("already")]
    if failed:
        raise click.ClickException(
            failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
        )


@cli.command()
@api_key_option
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
@api_client_options
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


class _NotFound(click.ClickException):
    """A user error that exits 2 (an id that does not exist, like a wrong option value)."""

    exit_code = 2


@cli.command()
@db_option
@click.argument("conversation_id", metavar="ID")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Write the page as one self-contained HTML file (replaced if it exists) instead of "
    "printing it.",
)
@click.option(
    "--width",
    type=click.IntRange(min=60),
    default=None,
    help="Columns of the text page [default: 100, or the terminal's width when narrower].",
)
@redact_option
@_user_errors
def show(db, conversation_id, html_out, width, redact):
    """Show one call: its facts and everything that happened, in order.

    A header (replica, join and end in UTC, duration, shutdown reason and outcome, turns and
    answer delays, what arrived), then the timeline: the turns with their time from the join and
    the answer delays, tool calls and results, knowledge-base retrievals, objective completions
    with their variables, guardrail triggers, the shutdown, the recording, the perception
    analysis by section, post-call actions, and the problems the loader found for this call.
    Text from callbacks is shown escaped. With --html, the same page as an HTML file that opens
    in any browser with no server and no network. An unknown ID exits with status 2.

    Example:

        tavus-analytics show c0123456789ab --db data/tavus.db --html call.html
    """
    import shutil

    from .conversation import write
    from .dataset import load
    from .errors import ConversationNotFound
    from .redact import redact_text

    path = _existing_db(db)
    try:
        if html_out:
            hide = redact_text if redact else None
            click.echo(f"Wrote {write(path, conversation_id, html_out, redact=hide)}")
            return
        page = load(path).conversation(conversation_id, redact=redact_text if redact else None)
    except ConversationNotFound as e:
        raise _NotFound(str(e)) from None
    if width is None:
        width = 100
        if sys.stdout.isatty():
            width = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))
    click.echo(page.to_text(width=width), nl=False)


@cli.command("evaluate")
@db_option
@click.option(
    "--criteria",
    "criteria_file",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="The success criteria, a TOML file of [[rule]] tables (see docs/analytics.md).",
)
@load_since_option
@load_until_option
@replica_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the figures and every call's result as JSON."
)
@_user_errors
def evaluate_(db, criteria_file, since, until, replicas, as_json):
    """Judge every call by success criteria: success, failure or unknown.

    Each rule of the TOML file (shutdown category or outcome, user turns, duration, objectives,
    output variables, phrases, guardrails, post-call actions) passes, fails, or is unknown when
    the data it needs is missing; unknown is never a failure. Prints how many calls met the
    criteria, the success rate of the decided calls per replica and per week, and which rules
    decided the failures. A criteria file that cannot be read is one line naming its line and
    rule.

    Example:

        tavus-analytics evaluate --criteria criteria.toml --since 2025-07-01 --db data/tavus.db
    """
    import json

    from . import evaluate as evaluation
    from .dataset import load

    criteria = evaluation.load_criteria(criteria_file)
    path = _existing_db(db)
    ds = load(path, since=since, until=until, replicas=list(replicas) or None)
    figures = evaluation.summary(ds.evaluate(criteria), criteria)
    if as_json:
        click.echo(json.dumps({"database": display_url(path), **figures}, indent=2))
        return
    figures.pop("results")
    click.echo(evaluation.render(figures, title=display_url(path)), nl=False)


@cli.command("content")
@db_option
@load_since_option
@load_until_option
@replica_option
@click.option(
    "--topics",
    "k",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Topics to find in the users' words.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Question groups to list.",
)
@click.option(
    "--conversation",
    metavar="ID",
    default=None,
    help="One call instead: its language, sentiment turn by turn, topic, keywords, questions.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON, for machines.")
@_user_errors
def content_(db, since, until, replicas, k, top, conversation, as_json):
    """What callers talk about and how they feel: languages, sentiment, topics, top questions.

    Analyses the users' words offline (the nlp extra: pip install 'tavus-analytics[nlp]'):
    the language of each call, VADER sentiment of the calls in English (negative rates per
    replica and per week), topics across calls, and the questions callers ask most, similar
    wordings grouped. Results are cached outside the database (TAVUS_ANALYTICS_CACHE_DIR), so a
    second run is quick.

    Example:

        tavus-analytics content --since 2025-07-01 --topics 6 --db data/tavus.db
    """
    import json

    from .content import call_summary, render, render_call, summary
    from .dataset import load

    path = _existing_db(db)
    ds = load(path, since=since, until=until, replicas=list(replicas) or None)
    if conversation is not None:
        figures = call_summary(ds, conversation, k=k)
        click.echo(json.dumps(figures, indent=2) if as_json else render_call(figures))
        return
    figures = summary(ds, k=k, top=top)
    if as_json:
        filters = {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "replicas": list(replicas) or None,
        }
        payload = {"database": display_url(path), "filters": filters, **figures}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    title = f"What callers say: {display_url(path)} ({figures['transcripts']:,} transcripts)"
    click.echo(render(figures, title=title))


@cli.command()
@db_option
@click.argument("conversation_id", metavar="CONVERSATION_ID")
@click.option("--label", default=None, help="A short tag, e.g. escalated (at most 64 characters).")
@click.option("--note", default=None, help="Free text: what a reviewer saw, what to do.")
@click.option(
    "--author",
    default=None,
    help="Who annotates [default: your user name on this machine].",
)
@_user_errors
def annotate(db, conversation_id, label, note, author):
    """Give a conversation a review label, a note or both.

    Labels and notes go into their own table (annotations), with who and when; the stored
    callbacks are never touched. Export filters by label (export --label), ds.annotations and
    ds.filter(labels=...) read them in Python, tavus-analytics labels lists them.

    Example:

        tavus-analytics annotate c123456 --label escalated --note "asked twice for a manager"
    """
    store = _open_store(db)
    try:
        new = store.annotate(conversation_id, label=label, note=note, author=author)
        rows = store.read_annotations(conversation_id=conversation_id.strip())
        row = next(r for r in rows if r[0] == new)
    finally:
        store.close()
    what = " and ".join(
        part for part in (f"label {row[2]!r}" if row[2] else "", "a note" if row[3] else "") if part
    )
    click.echo(f"{store.name}: annotation {new} on {conversation_id} by {row[4]}: {what}")


@cli.command()
@db_option
@click.argument("annotation_id", type=int, metavar="ANNOTATION_ID")
@click.option(
    "--author",
    default=None,
    help="Who removes it [default: your user name on this machine].",
)
@_user_errors
def unannotate(db, annotation_id, author):
    """Remove a review label or note (by its id, as tavus-analytics labels shows it).

    The annotation leaves labels, exports and filters; the database keeps it, marked with who
    removed it and when (labels --all shows it).

    Example:

        tavus-analytics unannotate 12
    """
    store = _open_store(db)
    try:
        removed = store.remove_annotation(annotation_id, author=author)
    finally:
        store.close()
    if removed:
        click.echo(f"{store.name}: annotation {annotation_id} removed")
    else:
        click.echo(f"{store.name}: annotation {annotation_id} was already removed")


@cli.command()
@db_option
@click.option("--conversation", metavar="ID", default=None, help="Only this conversation.")
@click.option("--label", default=None, help="Only this label.")
@click.option("--all", "everything", is_flag=True, help="Removed annotations too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for machines.")
@_user_errors
def labels(db, conversation, label, everything, as_json):
    """List the review labels and notes, oldest first.

    One line each: its id (what unannotate takes), the conversation, the label, who and when,
    and the note. --all adds the removed ones, with who removed them and when.

    Example:

        tavus-analytics labels --label escalated
    """
    import json

    from .store.base import ANNOTATION_COLUMNS

    names = ("annotation_id", *ANNOTATION_COLUMNS[1:])  # as in ds.annotations
    store = _open_store(db)
    try:
        rows = store.read_annotations(conversation_id=conversation, include_removed=everything)
    finally:
        store.close()
    rows = [r for r in rows if label is None or r[2] == " ".join(label.split())]
    if as_json:
        click.echo(json.dumps([dict(zip(names, r, strict=True)) for r in rows], indent=2))
        return
    if not rows:
        click.echo("No annotation.")
        return
    width = max(len("conversation"), *(len(r[1]) for r in rows))
    tag = max(len("label"), *(len(r[2] or "") for r in rows))
    click.echo(
        f"{'id':>4}  {'conversation':<{width}}  {'label':<{tag}}  {'by':<12}  {'at':<16}  note"
    )
    for r in rows:
        when = (r[5] or "")[:16].replace("T", " ")
        note = " ".join((r[3] or "").split())
        line = f"{r[0]:>4}  {r[1]:<{width}}  {r[2] or '':<{tag}}  {r[4]:<12}  {when:<16}  {note}"
        if r[6]:
            line = line.rstrip() + f" (removed {r[6][:16].replace('T', ' ')} by {r[7]})"
        click.echo(line.rstrip())
    click.echo(_plural(len(rows), "annotation"))


if __name__ == "__main__":
    cli()
