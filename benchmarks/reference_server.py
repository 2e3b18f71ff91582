"""The baseline: what Tavus's documented webhook sample does, as a server.

Tavus's "Webhooks and Callbacks" guide has a small Flask server: parse the JSON body, keep each
``application.transcription_ready`` transcript in a dict in memory, answer 200, run with
``app.run()`` (Flask's built-in development server, threaded by default). Nothing is persisted:
a restart loses everything. This file does the same, plus ``GET /healthz`` so that the benchmark
knows when it is up, and a lifetime after which it stops by itself.

    python benchmarks/reference_server.py --port 5001 [--lifetime 600]
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from flask import Flask, jsonify, request


def create_app() -> Flask:
    """The sample's app: transcripts kept in a dict keyed by conversation id."""
    app = Flask(__name__)
    transcripts: dict[str, list] = {}

    @app.route("/webhook", methods=["POST"])
    def webhook():
        data = request.json
        if data.get("event_type") == "application.transcription_ready":
            transcripts[data["conversation_id"]] = data["properties"]["transcript"]
        return jsonify({"status": "success"}), 200

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok", "transcripts": len(transcripts)})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument(
        "--lifetime", type=float, default=600.0, help="Stop by itself after this many seconds."
    )
    args = parser.parse_args(argv)
    timer = threading.Timer(args.lifetime, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    # Flask's defaults, as in the sample: development server, threaded=True.
    create_app().run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
