"""Where the tests' alerts and digests go: a local HTTP server and a local SMTP server, both on
127.0.0.1, both recording what they receive.

:class:`Receiver` stands for a Slack-compatible incoming webhook or a generic webhook: it
answers every POST with ``status`` (200 unless a test changes it) and keeps the path, the
headers and the JSON body. :class:`Smtp` is a small SMTP server (``socketserver``, no TLS, no
authentication: enough for ``smtplib``'s plain path) that keeps each message as an
:class:`email.message.EmailMessage`.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A webhook receiver on a free 127.0.0.1 port: ``url`` to post to, ``received`` to read."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size)
                owner.received.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "raw": raw.decode("utf-8", "replace"),
                        "json": json.loads(raw) if raw else None,
                    }
                )
                self.send_response(owner.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    @property
    def texts(self) -> list[str]:
        return [r["raw"] for r in self.received]


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self.reply("220 fake-smtp ready")
        sender, recipients = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 fake-smtp")
            elif verb == "MAIL":
                sender, recipients = command[10:].strip("<> "), []
                self.reply("250 ok")
            elif verb == "RCPT":
                recipients.append(command[8:].strip("<> "))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                self.server.owner.messages.append(
                    {"from": sender, "to": recipients, "message": message}
                )
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class Smtp:
    """An SMTP server on a free 127.0.0.1 port: ``port``, and ``messages`` it received."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.daemon_threads = True
        self.server.owner = self
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Smtp:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def bodies(self) -> list[str]:
        """Every part of every message as text (plain and HTML)."""
        texts = []
        for m in self.messages:
            for part in m["message"].walk():
                if part.get_content_maintype() == "text":
                    texts.append(part.get_content())
        return texts


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@contextlib.contextmanager
def loopback_only():
    """Refuse every name lookup and connection that does not stay on this machine: the tests'
    network. (A lookup of another name never leaves the process: it fails here, first.)"""
    import socket

    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in _LOOPBACK and "/" not in host:
            raise OSError(f"network blocked in tests: {host}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (*_LOOPBACK, None):
            raise socket.gaierror(socket.EAI_NONAME, f"network blocked in tests: {name}")
        return real_lookup(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = real_connect
        socket.getaddrinfo = real_lookup
