"""A bounded HTTP/1.1 keep-alive load generator for the collector benchmarks.

Several processes, each running an asyncio event loop with raw ``asyncio.Protocol`` connections
(no HTTP library: one ``write`` per request, a minimal parser per response), keep a fixed number of
connections busy for a fixed time and then stop by themselves: after the deadline no new request
is sent, the requests in flight are answered (drained), and every connection is closed.

Bodies come from *templates*: a callback body split around one short field (the sender's
``timestamp``, a video's ``updated_at``, a replica id) whose last digits are replaced, request by
request, by a counter unique across processes. So every body sent is distinct (the collector
never sees a duplicate) while memory stays small whatever the run's length.

Run on its own, it measures its own ceiling against a trivial server (a few lines of asyncio
that answer every request at once)::

    python benchmarks/loadgen.py --seconds 5 --connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tavus_analytics.testing import free_port

#: Top-level fields whose value can be varied to make a body unique, in order of preference.
VARY_FIELDS = ("timestamp", "updated_at", "replica_id", "video_id", "conversation_id")
#: How many trailing characters of that value are replaced by the counter.
VARY_WIDTH = 6

_ACK_MARKERS = (b'"duplicate":false', b'"duplicate": false')
_DUP_MARKERS = (b'"duplicate":true', b'"duplicate": true')


@dataclass(frozen=True)
class Template:
    """A body as ``prefix + COUNTER + suffix``; the counter has :data:`VARY_WIDTH` digits."""

    prefix: bytes
    suffix: bytes
    label: str

    def render(self, n: int) -> bytes:
        return b"%s%06d%s" % (self.prefix, n % 1_000_000, self.suffix)


def make_templates(bodies) -> tuple[list[Template], int]:
    """Templates from raw callback bodies; returns them and how many bodies had to be skipped.

    A body is skipped when it is not a JSON object with one of :data:`VARY_FIELDS` as a string of
    at least :data:`VARY_WIDTH` characters, or when it makes the same template as another.
    """
    out, seen, skipped = [], set(), 0
    for body in bodies:
        try:
            obj = json.loads(body)
        except ValueError:
            skipped += 1
            continue
        tpl = _template(body, obj) if isinstance(obj, dict) else None
        if tpl is None or (tpl.prefix, tpl.suffix) in seen:
            skipped += 1
            continue
        seen.add((tpl.prefix, tpl.suffix))
        out.append(tpl)
    return out, skipped


def _template(body: bytes, obj: dict) -> Template | None:
    for key in VARY_FIELDS:
        value = obj.get(key)
        if not isinstance(value, str) or len(value) < VARY_WIDTH + 1:
            continue
        if json.dumps(value)[1:-1] != value:  # needs escaping: not worth the trouble
            continue
        pattern = rb'"%s"\s*:\s*"%s"' % (re.escape(key.encode()), re.escape(value.encode()))
        m = re.search(pattern, body)
        if m is None:
            continue
        end = m.end() - 1  # the closing quote
        # Keep a trailing "Z" of ISO timestamps: vary the digits before it.
        keep = 1 if value.endswith("Z") else 0
        cut = end - keep - VARY_WIDTH
        label = obj.get("event_type") or (
            "video" if "video_id" in obj else "replica" if "replica_id" in obj else "other"
        )
        return Template(body[:cut], body[end - keep :], str(label))
    return None


# -- the client ---------------------------------------------------------------------------------


@dataclass
class WorkerResult:
    """What one generator process saw. Latencies in seconds, of requests sent while measuring."""

    latencies: array = field(default_factory=lambda: array("d"))
    measured: int = 0
    sent: int = 0
    completed: int = 0
    acked: int = 0
    duplicates: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    reconnects: int = 0
    unanswered: int = 0
    bytes_sent: int = 0
    cpu_s: float = 0.0


class _Client(asyncio.Protocol):
    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sent_at = 0.0
        self.busy = False
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gen.fire(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while self.busy:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(buf[:head_end]).lower()
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            if m is None:
                self.gen.result.errors["response without content-length"] += 1
                self.transport.close()
                return
            total = head_end + 4 + int(m.group(1))
            if len(buf) < total:
                return
            status = int(head[9:12])
            body = bytes(buf[head_end + 4 : total])
            del buf[:total]
            self.busy = False
            self.close_after = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
            self.gen.done(self, status, body)

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.busy:
            self.busy = False
            self.gen.result.errors[type(exc).__name__ if exc else "closed by server"] += 1
        self.gen.lost(self)


class _Generator:
    def __init__(self, cfg: dict, templates: list[Template], index: int) -> None:
        self.cfg = cfg
        self.templates = templates
        self.index = index
        self.stride = cfg["processes"]
        self.result = WorkerResult()
        self.uses = [0] * len(templates)
        self.next_tpl = (index * 7919) % len(templates)
        host, port = cfg["host"], cfg["port"]
        self.head = (
            f"POST {cfg['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nUser-Agent: tavus-analytics-bench\r\n"
            "Content-Length: "
        ).encode()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.idle: asyncio.Event | None = None
        self.open = 0

    def body(self) -> bytes:
        i = self.next_tpl
        self.next_tpl = (i + 1) % len(self.templates)
        k = self.uses[i]
        self.uses[i] = k + 1
        return self.templates[i].render(k * self.stride + self.index)

    def fire(self, client: _Client) -> None:
        now = time.monotonic()
        if now >= self.t_stop or client.transport is None:
            if client.transport is not None:
                client.transport.close()
            return
        body = self.body()
        req = b"%s%d\r\n\r\n%s" % (self.head, len(body), body)
        client.busy = True
        client.sent_at = now
        self.result.sent += 1
        self.result.bytes_sent += len(req)
        client.transport.write(req)

    def done(self, client: _Client, status: int, body: bytes) -> None:
        now = time.monotonic()
        r = self.result
        r.completed += 1
        r.statuses[status] += 1
        if status == 200:
            if any(m in body for m in _DUP_MARKERS):
                r.duplicates += 1
            elif self.cfg["ack_any_200"] or any(m in body for m in _ACK_MARKERS):
                r.acked += 1
        if self.t_measure <= client.sent_at < self.t_stop:
            r.measured += 1
            r.latencies.append(now - client.sent_at)
        if client.close_after:
            client.transport.close()  # reconnects in lost()
        else:
            self.fire(client)

    def lost(self, client: _Client) -> None:
        if time.monotonic() < self.t_stop:
            self.result.reconnects += 1
            self.loop.create_task(self.connect())  # stays counted in self.open
            return
        self.open -= 1
        if self.open == 0:
            self.idle.set()

    async def connect(self) -> None:
        """Open one connection, retrying until the deadline.

        The caller has counted it in ``self.open`` already: the connection sends its first
        request from ``connection_made``, before ``create_connection`` returns, and the run must
        not be taken for drained while that request is in flight.
        """
        while True:
            try:
                await self.loop.create_connection(
                    lambda: _Client(self), self.cfg["host"], self.cfg["port"]
                )
                return  # connection_lost will call lost()
            except OSError as e:
                self.result.errors[f"connect: {type(e).__name__}"] += 1
                if time.monotonic() >= self.t_stop:
                    break
                await asyncio.sleep(0.05)
        self.open -= 1
        if self.open == 0:
            self.idle.set()

    async def run(self, n_conns: int) -> WorkerResult:
        self.loop = asyncio.get_running_loop()
        self.idle = asyncio.Event()
        start_at = self.cfg["start_at"]
        self.t_measure = start_at + self.cfg["warmup"]
        self.t_stop = self.t_measure + self.cfg["seconds"]
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        cpu0 = time.process_time()
        self.open = n_conns
        for _ in range(n_conns):
            self.loop.create_task(self.connect())
        await asyncio.sleep(max(0.0, self.t_stop - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), self.cfg["drain_timeout"])
        self.result.unanswered = self.result.sent - self.result.completed
        self.result.cpu_s = time.process_time() - cpu0
        return self.result


def _worker(cfg: dict, templates: list[Template], index: int, n_conns: int, conn) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = asyncio.run(_Generator(cfg, templates, index).run(n_conns))
        conn.send(result)
    except BaseException as e:  # report, never hang the parent
        conn.send(e)
    finally:
        conn.close()


@dataclass
class LoadResult:
    """The merged result of one bounded run."""

    seconds: float
    connections: int
    processes: int
    measured: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    sent: int
    completed: int
    acked: int
    duplicates: int
    statuses: dict
    errors: dict
    reconnects: int
    unanswered: int
    mb_sent: float
    generator_cpu_s: float

    def summary(self) -> str:
        return (
            f"{self.rps:8.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  "
            f"({self.measured} measured, {self.acked} acknowledged in all)"
        )


def run_load(
    host: str,
    port: int,
    path: str,
    templates: list[Template],
    *,
    seconds: float = 10.0,
    connections: int = 16,
    processes: int = 2,
    warmup: float = 1.0,
    drain_timeout: float = 30.0,
    ack_any_200: bool = False,
) -> LoadResult:
    """Keep ``connections`` connections busy for ``warmup + seconds`` and merge the results.

    Parameters
    ----------
    host, port, path : str, int, str
        Where to POST (``path`` includes any query string).
    templates : list of Template
        Bodies to send, cycled; each request's body is unique.
    seconds : float
        Length of the measured window; requests sent during ``warmup`` before it are answered
        and counted as acknowledged but not timed.
    connections : int
        Connections kept open, spread over ``processes`` generator processes.
    ack_any_200 : bool
        Count every 200 as acknowledged (servers that do not answer ``"duplicate": false``).
    """
    if not templates:
        raise ValueError("no templates to send")
    processes = max(1, min(processes, connections))
    cfg = {
        "host": host,
        "port": port,
        "path": path,
        "seconds": seconds,
        "warmup": warmup,
        "drain_timeout": drain_timeout,
        "processes": processes,
        "ack_any_200": ack_any_200,
        "start_at": time.monotonic() + 0.3 + 0.1 * processes,
    }
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    procs, pipes = [], []
    for i in range(processes):
        n = connections // processes + (1 if i < connections % processes else 0)
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_worker, args=(cfg, templates, i, n, child), daemon=True)
        p.start()
        child.close()
        procs.append(p)
        pipes.append(parent)
    results = []
    deadline = time.monotonic() + 5 + warmup + seconds + drain_timeout + 10
    for p, pipe in zip(procs, pipes, strict=True):
        if not pipe.poll(max(0.0, deadline - time.monotonic())):
            p.kill()
            raise RuntimeError("a load generator process did not report in time")
        got = pipe.recv()
        p.join(5)
        if isinstance(got, BaseException):
            raise RuntimeError(f"load generator process failed: {got!r}") from got
        results.append(got)
    return _merge(results, seconds, connections, processes)


def _merge(results: list[WorkerResult], seconds, connections, processes) -> LoadResult:
    lat = sorted(x for r in results for x in r.latencies)
    statuses, errors = Counter(), Counter()
    for r in results:
        statuses.update(r.statuses)
        errors.update(r.errors)

    def pct(q: float) -> float:
        if not lat:
            return float("nan")
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]

    measured = sum(r.measured for r in results)
    return LoadResult(
        seconds=seconds,
        connections=connections,
        processes=processes,
        measured=measured,
        rps=measured / seconds,
        p50_ms=1000 * statistics.median(lat) if lat else float("nan"),
        p99_ms=pct(0.99),
        max_ms=1000 * lat[-1] if lat else float("nan"),
        sent=sum(r.sent for r in results),
        completed=sum(r.completed for r in results),
        acked=sum(r.acked for r in results),
        duplicates=sum(r.duplicates for r in results),
        statuses=dict(statuses),
        errors=dict(errors),
        reconnects=sum(r.reconnects for r in results),
        unanswered=sum(r.unanswered for r in results),
        mb_sent=sum(r.bytes_sent for r in results) / 1e6,
        generator_cpu_s=sum(r.cpu_s for r in results),
    )


# -- a trivial server, to measure the generator's own ceiling ----------------------------------


class _TrivialServer(asyncio.Protocol):
    """Answers every POST at once with a fixed 200 (no parsing beyond Content-Length)."""

    ANSWER = b'{"ok": true, "status": "ok", "id": 0, "duplicate": false}'
    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(ANSWER), ANSWER)
    )

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", buf[:end])
            total = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < total:
                return
            first = bytes(buf[: buf.find(b"\r\n")])
            del buf[:total]
            if first.startswith(b"GET"):
                body = b'{"status": "ok", "callbacks": 0}'
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                self.transport.write(self.RESPONSE)


def serve_trivial(port: int, lifetime: float) -> None:
    """Serve :class:`_TrivialServer` on 127.0.0.1:port for at most ``lifetime`` seconds."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_TrivialServer, "127.0.0.1", port, backlog=1024)
        async with server:
            await asyncio.sleep(lifetime)

    asyncio.run(main())


def start_trivial_server(lifetime: float) -> tuple[subprocess.Popen, int]:
    """Start the trivial server in a subprocess on a free port; return it and the port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-trivial", str(port), str(lifetime)]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the trivial server did not start")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-trivial"]:
        serve_trivial(int(argv[1]), float(argv[2]))
        return
    parser = argparse.ArgumentParser(description="Measure the load generator's own ceiling.")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=0, help="0: try 1 and 2")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_collector import make_bodies

    templates, _ = make_templates(make_bodies(200, seed=0)[0])
    for procs in [args.processes] if args.processes else [1, 2]:
        server, port = start_trivial_server(args.seconds + 30)
        try:
            r = run_load(
                "127.0.0.1",
                port,
                "/webhook",
                templates,
                seconds=args.seconds,
                connections=args.connections,
                processes=procs,
            )
        finally:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(5)
        print(f"generator, {procs} process(es), trivial server: {r.summary()}")


if __name__ == "__main__":
    main()
