"""How long one call's page takes: ``ds.conversation(id)`` rendered as HTML and as text.

On a demo database of ``--conversations`` conversations (default 10,000, made once with
``tavus_analytics.demo.write(db, conversations=N, seed=0)`` and cached under
``benchmarks/out/``), in one process:

``tables``
    The first page loads every table a page shows (``ds.conversation`` on a fresh dataset):
    paid once per dataset, as in a notebook or a report.
``select``, the baseline
    What reading a call costs at the least with pandas: the call's rows of ``ds.turns``
    (``ds.turns[ds.turns.conversation_id == id]``), for each of the ``--pages`` calls.
``html``, ``text``
    ``ds.conversation(id)`` then ``_repr_html_()`` (what a notebook shows) or ``str()`` (what
    ``tavus-analytics show`` prints), for the same calls: every table of the call selected, the
    timeline ordered, everything escaped.

The calls are the ``--pages`` (default 100) longest transcripts, so the figures are the costly
end. The script prints a table with the times, the time per page and the ratio to the baseline;
it has no target and never fails on a time.

Example:

    .venv/bin/python benchmarks/bench_pages.py                       # 10,000 conversations
    .venv/bin/python benchmarks/bench_pages.py --conversations 1000 --pages 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def database(conversations: int) -> Path:
    """The cached demo database of ``conversations`` conversations: the load benchmark's."""
    sys.path.insert(0, str(HERE))
    from bench_load import database as cached

    return cached(conversations)


def measure(db: Path | str, pages: int) -> list[tuple[str, float, int]]:
    """(what, seconds, pages) of each measurement, on the database ``db``."""
    import tavus_analytics as ta

    ds = ta.load(db)
    conv = ds.conversations
    ids = list(
        conv.loc[conv["has_transcript"].fillna(False).to_numpy(dtype=bool)]
        .sort_values(["user_turns", "conversation_id"], ascending=[False, True], kind="stable")[
            "conversation_id"
        ]
        .head(pages)
    )
    if not ids:
        raise SystemExit(f"{db} has no transcript to show")
    start = time.perf_counter()
    ds.conversation(ids[0])
    rows = [("tables (first page, once per dataset)", time.perf_counter() - start, 1)]
    turns = ds.turns
    start = time.perf_counter()
    for cid in ids:
        turns[(turns["conversation_id"] == cid).to_numpy(dtype=bool)]
    rows.append(("select (the call's turns: baseline)", time.perf_counter() - start, len(ids)))
    start = time.perf_counter()
    size = sum(len(ds.conversation(cid)._repr_html_()) for cid in ids)
    seconds = time.perf_counter() - start
    rows.append((f"html ({size / len(ids) / 1024:.0f} KiB a page)", seconds, len(ids)))
    start = time.perf_counter()
    for cid in ids:
        str(ds.conversation(cid))
    rows.append(("text", time.perf_counter() - start, len(ids)))
    return rows


def render(rows: list[tuple[str, float, int]]) -> str:
    base = rows[1][1] / rows[1][2]
    lines = [f"{'':40} {'pages':>6} {'seconds':>9} {'ms a page':>10} {'x select':>9}"]
    for what, seconds, n in rows:
        per = seconds / n
        ratio = f"{per / base:.1f}x" if n > 1 and base > 0 else ""
        lines.append(f"{what:40} {n:>6} {seconds:>9.2f} {per * 1000:>10.1f} {ratio:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--db", default=None, help="Measure this database instead of a demo.")
    args = parser.parse_args(argv)
    db = args.db or database(args.conversations)
    print(f"{db}: {args.pages} pages of the longest transcripts")
    print(render(measure(db, args.pages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
