"""Running the collector: the secret, the start-up banner and the production WSGI servers.

The default server is granian, a Rust HTTP server: its HTTP layer runs outside the GIL, so the
one core of Python goes to the app (benchmarks/README.md has the figures against waitress and
Tavus's sample server). One worker process of ``--threads`` blocking threads (``--workers N``
for more) under a supervisor that is plain Python: the banner, the tunnel and the alert checks
live there, and the worker ends with it, even after a SIGKILL of the supervisor. The banner is
printed once the worker answers on the port, so a callback sent as soon as it shows is
answered.

What a sender sees differently with granian (``stress/hostile.py`` checks both):

* A request whose sender half-closes the connection (``shutdown(SHUT_WR)`` once the request is
  sent) gets no answer: granian's HTTP layer (hyper, without half-close support, and granian
  has no setting for it) drops the connection when it reads the end of the stream. The request
  may have been processed: the callback is then stored, and its retry is answered ``200`` with
  ``"duplicate": true``; or not, and the retry stores it. Either way it is stored once, and a
  ``200`` still means it is on disk. HTTP client libraries (requests, curl) keep their side
  open while they wait for the answer.
* A chunked body cut short (the connection ends before its last chunk, or a chunk size is
  broken) reaches the app as what arrived: refused with ``400``, unless what arrived is a JSON
  object on its own (the rest was white space or trailing bytes), which is then stored as it
  arrived. waitress never passes such a body on. A Content-Length body cut short is refused by
  either.

``--server waitress`` is pure Python, one process with a pool of threads, on every platform.
The collector uses it where granian cannot run: granian is a dependency only where it
publishes wheels (Linux on x86-64, ARM64, ARMv7 and i686; macOS; Windows on x86-64), and
elsewhere the default server falls back to waitress, saying so in one line. ``--server
gunicorn`` (Linux and macOS) runs several processes; it forks them from its master, so it has
no tunnel and no alert checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import sys
import threading
import time

from .config import Settings
from .errors import TavusAnalyticsError
from .extras import require
from .store import display_url, needs_shared_secret, open_store

log = logging.getLogger("tavus_analytics.collector")

#: The WSGI servers the collector runs on; the first is the default.
SERVERS = ("granian", "waitress", "gunicorn")


def _store(settings: Settings):
    """The store the collector writes to: SQLite or PostgreSQL, from ``settings.db``."""
    return open_store(
        settings.db, busy_timeout_ms=settings.busy_timeout_ms, pool_size=settings.threads
    )


def resolve_secret(settings: Settings) -> tuple[Settings, str]:
    """Settings with a secret, and where it came from (``given``, ``file``, ``generated`` or
    ``none``).

    With no secret given and authentication on, the secret kept in ``DB.secret`` is reused, or a
    new one is generated and written there, readable by the owner only.
    """
    if settings.no_auth:
        return settings, "none"
    if settings.secret:
        return settings, "given"
    if needs_shared_secret(settings.db):
        raise TavusAnalyticsError(
            "with a PostgreSQL database, give the secret explicitly: --secret or "
            "TAVUS_WEBHOOK_SECRET (every collector behind one callback URL needs the same one), "
            "or --no-auth"
        )
    path = settings.secret_path
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return dataclasses.replace(settings, secret=existing), "file"
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return resolve_secret(settings)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return dataclasses.replace(settings, secret=token), "generated"


def banner(
    settings: Settings, source: str, port: int | None = None, public_url: str | None = None
) -> str:
    """What the collector prints on start: where it listens, the callback URL, and either the
    tunnel's public URL with a ready ``curl`` (``public_url``, from ``--tunnel``) or the ngrok
    command to expose it."""
    port = port or settings.port
    base = f"http://{settings.host}:{port}"
    token = "" if settings.no_auth else f"?token={settings.secret}"
    lines = [
        f"tavus-analytics collector listening on {base}",
        f"  database:      {display_url(settings.db)}",
    ]
    if settings.no_auth:
        lines += [
            "",
            "  WARNING: token checking is OFF (--no-auth). Anyone who can reach this collector",
            "  can write callbacks into your database. Use it only on a trusted network.",
            "",
            f"  callback URL:  {base}/webhook",
        ]
    else:
        where = {
            "given": "from --secret / TAVUS_WEBHOOK_SECRET",
            "file": f"kept in {settings.secret_path}",
            "generated": f"generated and kept in {settings.secret_path}",
        }[source]
        lines += [
            f"  secret:        {where}",
            f"  callback URL:  {base}/webhook{token}",
        ]
    if public_url:
        from .tunnel import conversation_curl

        callback_url = f"{public_url}/webhook{token}"
        lines += [
            "",
            f"Public URL (ngrok, closed when the collector stops):  {public_url}",
            f"  callback URL:  {callback_url}",
            f"  dashboard:     {public_url}/dashboard{token}",
            "",
            "Create a conversation that reports here (fill in the replica and persona):",
            "  " + conversation_curl(callback_url).replace("\n", "\n  "),
        ]
    else:
        lines += [
            "",
            f"To receive callbacks from Tavus, expose it with:  ngrok http {port}",
            "then set callback_url to  https://<your-ngrok-domain>/webhook" + token,
            "(or start it with --tunnel: a public URL from inside the collector)",
        ]
    lines.append(f"Dashboard: {base}/dashboard{token}")
    lines.append(f"Status page: {base}/   Health: {base}/healthz")
    return "\n".join(lines)


def make_server(settings: Settings, *, port: int | None = None):
    """A waitress server for ``settings`` (not yet running); ``port=0`` picks a free port.

    ``server.store`` is the :class:`~tavus_analytics.store.Store` it writes to: close it after
    ``server.close()``.
    """
    from waitress.server import create_server

    from .app import create_app

    store = _store(settings)
    store.ping()  # fail now, in one line saying why, if the database cannot be used
    store.migrate()
    app = create_app(settings, store=store)
    port = settings.port if port is None else port
    try:
        _check_free(settings.host, port)
    except TavusAnalyticsError:
        store.close()
        raise
    server = create_server(
        app,
        host=settings.host,
        port=port,
        threads=settings.threads,
        # waitress buffers a whole body (to a temporary file past 512 KiB) before the app sees
        # it, token or not, and refuses past its own limit with no evidence kept. Twice ours:
        # over-limit bodies up to that size reach the app and are kept in `rejected`, and a
        # sender without the token cannot make it buffer more.
        max_request_body_size=2 * settings.max_body,
        ident="tavus-analytics",
        clear_untrusted_proxy_headers=True,
    )
    server.store = store  # closed by whoever closes the server
    return server


def _check_free(host: str, port: int) -> None:
    """Say now, in one line, if ``host:port`` cannot be listened on (the servers would print a
    traceback, and waitress leak its half-made server)."""
    if port == 0:
        return
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise TavusAnalyticsError(
            f"cannot listen on {host}:{port}: {e.strerror or e} (is another collector running "
            "there? stop it or choose another --port)"
        ) from None


def start_in_thread(settings: Settings, *, port: int = 0):
    """Run a collector for ``settings`` in a daemon thread; return ``(server, base_url)``.

    For tests and embedding: ``port=0`` picks a free port. Stop it with :func:`stop`.
    """
    import threading

    server = make_server(settings, port=port)
    thread = threading.Thread(target=server.run, name="tavus-collector", daemon=True)
    thread.start()
    server.thread = thread
    return server, f"http://{settings.host}:{server.effective_port}"


def stop(server, timeout: float = 10) -> None:
    """Stop a server started by :func:`start_in_thread`, cleanly, from another thread.

    The sockets are closed by the server's own loop (closing them from outside races with its
    ``select``); the loop then ends, the worker threads finish and the store is closed.
    """
    channels = server.map if hasattr(server, "map") else server._map

    def close_all():
        for channel in list(channels.values()):
            channel.close()

    # OSError: the loop was already awake (a worker had just pulled the trigger for a
    # response), ran close_all as soon as it was queued and closed the trigger before this write.
    with contextlib.suppress(OSError):
        server.trigger.pull_trigger(close_all)
    server.thread.join(timeout)
    server.task_dispatcher.shutdown(timeout=timeout)
    server.store.close()


def serve(settings: Settings, *, out=None, fallback: bool = False) -> None:
    """Resolve the secret, print the banner and serve until interrupted (Ctrl-C or SIGTERM).

    With ``settings.tunnel`` a public URL is opened once the port answers and closed on the
    way out; with ``settings.alerts`` the rules are read before anything starts (an error in
    the file stops the start, in one line) and checked in a thread every
    ``settings.alerts_every`` seconds (with granian, in its supervisor process).

    ``fallback``: the server is the default rather than chosen (no ``--server``, no
    ``TAVUS_ANALYTICS_SERVER``), so where granian cannot run, waitress serves instead, and one
    line says so. A server that was chosen and cannot run is an error.
    """
    out = out or sys.stdout
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # waitress warns on every request that waits for a free thread: noise under load, and a
    # cost on the hot path. Queueing shows in the latency; real problems still log as errors.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if settings.server not in SERVERS:
        raise TavusAnalyticsError(
            f"unknown server {settings.server!r}: choose one of {', '.join(SERVERS)}"
        )
    if fallback and settings.server == "granian" and (why := granian_unavailable()):
        log.warning("%s: serving with waitress, the pure-Python server", why)
        settings = dataclasses.replace(settings, server="waitress")
    settings, source = resolve_secret(settings)
    if settings.tunnel_domain and not settings.tunnel:
        settings = dataclasses.replace(settings, tunnel=True)
    if settings.tail:  # the tail says it all, one line per request: no second line per callback
        log.setLevel(logging.WARNING)
    if settings.tunnel:
        from .tunnel import check

        check(settings.server)  # before the port is taken: the extra, the authtoken
    watcher = _alert_watcher(settings)
    if settings.server == "gunicorn":
        _serve_gunicorn(settings, source, out)
        return
    if settings.server == "granian":
        _serve_granian(settings, source, out, watcher)
        return
    if settings.workers != 1:
        raise TavusAnalyticsError(
            "waitress runs one process: for --workers above 1 use --server granian or "
            "--server gunicorn"
        )
    server = make_server(settings)
    tunnel = None
    try:
        if settings.tunnel:
            from .tunnel import open_tunnel

            tunnel = open_tunnel(
                server.effective_port, host=settings.host, domain=settings.tunnel_domain
            )
        public_url = tunnel.url if tunnel else None
        print(banner(settings, source, server.effective_port, public_url), file=out, flush=True)
        if watcher is not None:
            watcher.start()
        with _sigterm_interrupts():
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if watcher is not None:
            watcher.stop()
        if tunnel is not None:
            tunnel.close()
        server.close()
        server.store.close()


def granian_unavailable() -> str | None:
    """Why granian cannot run here (one line), or None when it can."""
    import platform

    try:
        import granian  # noqa: F401
    except ImportError:
        where = f"{platform.system()} on {platform.machine() or 'this machine'}"
        return f"granian is not installed ({where}: it has no wheel for every platform)"
    return None


def _alert_watcher(settings: Settings):
    """The thread that checks ``settings.alerts`` (not started), or None; the rules file is
    read now, so that a mistake in it stops the start with one line naming the line."""
    if not settings.alerts:
        return None
    if settings.server == "gunicorn":
        raise TavusAnalyticsError(
            "--alerts runs inside the collector (granian or waitress), not --server gunicorn, "
            "whose master forks its workers: run tavus-analytics alerts check --rules "
            f"{settings.alerts} from cron or a systemd timer instead (docs/deployment.md)"
        )
    from .alerts import Watcher, read_rules

    rules = read_rules(settings.alerts)
    return Watcher(rules, settings.db, every=settings.alerts_every, secret=settings.secret)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (systemd, docker stop, kill) ends the server as Ctrl-C does, so that the tunnel
    and the alert thread are closed on the way out. Only the main thread can set a handler."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_gunicorn(settings: Settings, source: str, out) -> None:
    """Serve with gunicorn: ``settings.workers`` processes of ``settings.threads`` threads.

    Each worker builds its own app and store after the fork (SQLite connections must not cross
    a fork); within a worker, callbacks are group-committed; between workers, SQLite's lock and
    busy timeout take turns.
    """
    if sys.platform == "win32":
        raise TavusAnalyticsError(
            "gunicorn does not run on Windows: use --server granian or --server waitress"
        )
    BaseApplication = require("gunicorn.app.base", "gunicorn", "--server gunicorn").BaseApplication
    if settings.port == 0:
        raise TavusAnalyticsError("--server gunicorn needs a fixed --port")
    from .app import create_app

    with _store(settings) as store:
        store.ping()  # fail now, in one line saying why, if the database cannot be used
        store.migrate()  # once, before the fork
    _check_free(settings.host, settings.port)

    class _Collector(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", [f"{settings.host}:{settings.port}"])
            self.cfg.set("workers", settings.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.threads)
            self.cfg.set("proc_name", "tavus-analytics")

        def load(self):
            return create_app(settings)

    print(banner(settings, source), file=out, flush=True)
    _Collector().run()


def _serve_granian(settings: Settings, source: str, out, watcher=None) -> None:
    """Serve with granian: ``settings.workers`` processes of ``settings.threads`` threads.

    granian runs the app in worker processes that import :func:`granian_app`, which rebuilds
    the settings from the environment: the resolved settings are passed there. This process,
    granian's supervisor, waits in a thread until the port answers (:func:`_wait_answering`),
    then opens the tunnel, prints the banner and starts the alert checks: all of it after the
    workers are forked, and only once a callback sent now is answered.
    """
    Granian = require("granian", "granian", "--server granian").Granian
    with _store(settings) as store:
        store.ping()  # fail now, in one line saying why, if the database cannot be used
        store.migrate()  # once, before the workers start
    if settings.port == 0:  # each worker binds the port itself: choose one here
        settings = dataclasses.replace(settings, port=_free_port(settings.host))
    _check_free(settings.host, settings.port)
    for f in dataclasses.fields(settings):
        env, value = f.metadata.get("env"), getattr(settings, f.name)
        if env and value is not None:
            os.environ[env] = str(int(value) if isinstance(value, bool) else value)
    server = Granian(
        target="tavus_analytics.server:granian_app",
        factory=True,
        interface="wsgi",
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        blocking_threads=settings.threads,
        **GRANIAN_OPTIONS,
    )
    # granian warns when there are more threads than twice the cores: the collector's threads
    # wait on the disk's fsync, not on the CPU (more of them, more callbacks per commit).
    logging.getLogger("_granian").addFilter(
        lambda record: "Python threads" not in record.getMessage()
    )
    ready = _Announcer(settings, source, out, watcher, server)
    ready.start()
    try:
        server.serve()
    finally:
        ready.close()
    if ready.error is not None:
        raise ready.error


#: How granian runs the collector (the options tried and measured: benchmarks/README.md).
GRANIAN_OPTIONS = {
    # HTTP/1.1 only, as waitress and gunicorn: no detection of HTTP/2 per connection (6 to 7%)
    "http": "1",
    "websockets": False,
    # granian's own lines go where the collector's log goes, standard error, in its format:
    # standard output is the banner's, and the tail's with --tail.
    "log_dictconfig": {
        "formatters": {
            "generic": {"format": "%(asctime)s %(levelname)s %(message)s"},
            "access": {"format": "%(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "generic",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stderr",
            },
        },
    },
}


class _Announcer:
    """In granian's supervisor: once the port answers, open the tunnel, print the banner and
    start the alert checks; on the way out, stop them. A failure (the tunnel refused, a worker
    that never answers) stops granian and is raised by :func:`_serve_granian`."""

    def __init__(self, settings: Settings, source: str, out, watcher, server) -> None:
        self.settings, self.source, self.out = settings, source, out
        self.watcher, self.server = watcher, server
        self.tunnel = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tavus-announce", daemon=True)
        self._started_watcher = False

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        settings = self.settings
        try:
            if not _wait_answering(settings.host, settings.port, self._stop):
                if self._stop.is_set():
                    return
                raise TavusAnalyticsError(
                    f"granian's worker did not answer on {settings.host}:{settings.port} "
                    f"within {ANSWER_TIMEOUT:g} s: see the lines above"
                )
            if settings.tunnel:
                from .tunnel import open_tunnel

                self.tunnel = open_tunnel(
                    settings.port, host=settings.host, domain=settings.tunnel_domain
                )
            if self._stop.is_set():
                return
            public_url = self.tunnel.url if self.tunnel else None
            text = banner(settings, self.source, settings.port, public_url)
            print(text, file=self.out, flush=True)
            if self.watcher is not None:
                self.watcher.start()
                self._started_watcher = True
        except Exception as e:  # raised by _serve_granian once granian has stopped
            self.error = e
            _interrupt(self.server)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self._started_watcher:
            self.watcher.stop()
        if self.tunnel is not None:
            self.tunnel.close()


#: Seconds granian's worker has to answer on its port after the start.
ANSWER_TIMEOUT = 60.0


def _wait_answering(host: str, port: int, stop: threading.Event) -> bool:
    """Whether ``host:port`` answers an HTTP request within :data:`ANSWER_TIMEOUT` (False if
    ``stop`` is set first).

    The probe is a request line the HTTP layer refuses itself (``400``): it proves the worker
    is serving (granian loads the app before it accepts) without reaching the app, so no log
    line, no tail line and no database work.
    """
    import socket

    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(5)
                probe.connect((target, port))
                probe.sendall(b"\x00\r\n\r\n")
                if probe.recv(16).startswith(b"HTTP/"):
                    return True
        except OSError:
            pass
        stop.wait(0.02)
    return False


def _interrupt(server) -> None:
    """Stop granian's supervisor as its SIGINT handler does (it then stops its workers)."""
    handler = getattr(server, "signal_handler_interrupt", None)
    if handler is not None:
        handler()
    else:  # pragma: no cover - granian without the method: the signal itself
        import signal

        os.kill(os.getpid(), signal.SIGINT)


def _free_port(host: str) -> int:
    """A port free on ``host`` now (the OS's choice)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def granian_app():
    """The collector app in a granian worker, from the settings in the environment.

    The worker also follows its parent: if the granian process that started it dies (even by
    SIGKILL), the worker ends too instead of serving on as an orphan holding the port (on Linux
    at once, by ``PR_SET_PDEATHSIG``; elsewhere within 0.2 s). Every callback it acknowledged is
    already committed.
    """
    from .app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    if settings.tail:  # as in serve(): the tail line is the only line per callback
        log.setLevel(logging.WARNING)
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="tavus-parent-watch", daemon=True).start()
    return _CloseWhenBodyUnread(create_app(settings))


class _CloseWhenBodyUnread:
    """WSGI middleware for granian: a response given before the request's body was read to its
    end (a ``401``, a ``413``, a page asked for with a body) says ``Connection: close``.

    granian's HTTP layer ends such a connection after the response, but without saying so when
    the rest of the body had not arrived yet: a client that sends its next request on it gets
    no answer. Reading the rest instead would hold a thread for as long as a slow sender takes;
    waitress reads every body before the app runs, so it needs neither.
    """

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        body = _CountedInput(environ)
        environ["wsgi.input"] = body

        def start(status, headers, exc_info=None):
            if not body.read_to_end():
                headers = [*headers, ("Connection", "close")]
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class _CountedInput:
    """``wsgi.input`` that knows whether the body was read to its end: ``Content-Length``
    bytes, or, for a chunked body, until a read returned nothing."""

    def __init__(self, environ) -> None:
        self.stream = environ["wsgi.input"]
        try:
            self.left = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            self.left = None
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        self.ended = self.left <= 0 if self.left is not None else not chunked

    def _saw(self, data: bytes, size) -> bytes:
        if self.left is not None:
            self.left -= len(data)
        if (not data and size != 0) or (self.left is not None and self.left <= 0):
            self.ended = True
        return data

    def read(self, size=None):
        return self._saw(self.stream.read() if size is None else self.stream.read(size), size)

    def readline(self, size=None):
        line = self.stream.readline() if size is None else self.stream.readline(size)
        return self._saw(line, size)

    def readlines(self, hint=None):
        self.ended = True
        return self.stream.readlines()

    def __iter__(self):
        while line := self.readline():
            yield line

    def read_to_end(self) -> bool:
        return self.ended


def _die_with_parent() -> None:
    """On Linux, have the kernel SIGKILL this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
