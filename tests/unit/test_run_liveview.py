"""`newsflow run`'s live view: run totals across restarts, one line per change off a terminal,
the terminal table, and a real supervised child that dies and is restarted."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streams.commands import liveview
from streams.commands.run import Child, Pipeline
from streams.settings import Settings

ENRICHED = ("newsflow_articles_total", (("outcome", "enriched"), ("stage", "enrich")))
LAG = ("newsflow_consumer_lag", (("partition", "0"), ("stage", "enrich")))


def _snap(**changes: object) -> liveview.Snapshot:
    base: dict[str, object] = {
        "elapsed_s": 75.0,
        "polls": 12.0,
        "done": {"connector": 1234.0, "extract": 1200.0, "enrich": 1100.0, "index": 1000.0},
        "rates": {"connector": 5.0, "extract": 4.5, "enrich": 4.0, "index": None},
        "lag": {"extract": 34, "enrich": 100, "index": None},
        "dead_letters": {"PoisonArticle": 2.0, "ValueError": 1.0},
        "feeds": {"failing": 1, "ok": 5},
        "processes": {"connector": (True, 0), "enrich": (False, 2)},
        "events": ("12:00:01 enrich: exited (code 1)",),
    }
    base.update(changes)
    return liveview.Snapshot(**base)  # type: ignore[arg-type]


# --- run totals ------------------------------------------------------------------------------


def test_totals_survive_a_restart_the_supervisor_reports() -> None:
    totals = liveview.RunTotals()
    totals.update("enrich", {ENRICHED: 10.0, LAG: 40.0})
    totals.bank("enrich")  # the supervisor restarts it
    totals.update("enrich", {ENRICHED: 3.0, LAG: 0.0})
    assert totals.merged()[ENRICHED] == 13.0
    assert LAG not in totals.merged()  # a gauge is not a total


def test_totals_survive_a_restart_seen_only_as_a_counter_going_down() -> None:
    totals = liveview.RunTotals()
    totals.update("enrich", {ENRICHED: 10.0})
    totals.update("enrich", {})  # down for a moment: not answering is not zero
    assert totals.merged()[ENRICHED] == 10.0
    totals.update("enrich", {ENRICHED: 2.0})
    totals.update("enrich", {ENRICHED: 5.0})
    assert totals.merged()[ENRICHED] == 15.0


def test_totals_add_up_children() -> None:
    totals = liveview.RunTotals()
    totals.update("enrich", {ENRICHED: 10.0})
    totals.update("enrich-2", {ENRICHED: 4.0})
    snap = liveview.snapshot(totals.merged(), elapsed_s=1, rates={}, lag={}, feeds={}, processes={})
    assert snap.done["enrich"] == 14.0


def test_rates_use_a_sliding_window() -> None:
    rates = liveview.Rates(window_s=10)
    assert rates.add(0.0, {"enrich": 0.0}) == {"enrich": None}
    assert rates.add(2.0, {"enrich": 10.0}) == {"enrich": 5.0}
    for t in range(4, 30, 2):
        out = rates.add(float(t), {"enrich": 10.0})
    assert out == {"enrich": 0.0}  # nothing for longer than the window: rate 0, not 5


# --- output ----------------------------------------------------------------------------------


def test_off_a_terminal_one_line_per_change_and_each_event_once() -> None:
    out = io.StringIO()
    with liveview.Printer(out, tty=False) as printer:
        first = _snap()
        printer.show(first)
        # the clock and the rates move, nothing else: no new line
        printer.show(_snap(elapsed_s=77.0, rates={"enrich": 3.0}))
        printer.show(_snap(elapsed_s=79.0))
        printer.show(_snap(lag={"extract": 0, "enrich": 0, "index": 0}))
        printer.show(_snap(lag={"extract": 0, "enrich": 0, "index": 0}))
    lines = out.getvalue().splitlines()
    assert lines[0] == "12:00:01 enrich: exited (code 1)"
    assert len(lines) == 3, lines
    assert "lag extract 34 enrich 100 index ?" in lines[1]
    assert "lag extract 0 enrich 0 index 0" in lines[2]  # the current lag, not the last seen
    assert "produced 1,234" in lines[1] and "dead letters 3" in lines[1]
    assert "feeds failing 1 ok 5" in lines[1] and "down enrich" in lines[1]


def test_terminal_table_shows_stages_totals_rates_lag_dead_letters_feeds_errors() -> None:
    from rich.console import Console

    out = io.StringIO()
    hostile = "feed x: \x1b[2J\x1b]0;pwned\x07 500 Internal\u202eerror"
    Console(file=out, width=120, color_system=None).print(
        liveview.render_table(_snap(events=(hostile,)))
    )
    text = out.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    for expected in (
        "0:01:15",
        "enrich (enriched)",
        "1,100",
        "4.0",
        "100",
        "dead letters 3",
        "PoisonArticle 2",
        "feeds  failing 1  ok 5",
        "enrich DOWN (restarts 2)",
        "recent errors",
        "500 Internal",
    ):
        assert expected in text, (expected, text)


def test_on_a_terminal_the_view_is_redrawn_in_place() -> None:
    out = io.StringIO()
    with liveview.Printer(out, tty=True) as printer:
        for n in range(5):
            printer.show(_snap(polls=float(n)))
    text = out.getvalue()
    assert "\x1b[1A" in text and "\x1b[2K" in text  # cursor up, erase line: redrawn in place
    assert text.count("newsflow run") >= 5 and "polls 4" in text


def test_printable_removes_terminal_controls() -> None:
    assert liveview.printable("a\x1b[31mb\x9bc\nd\u2028e") == "a?[31mb?c d?e"
    assert liveview.printable("x" * 300, 10) == "x" * 9 + "…"


def test_log_errors_reports_only_new_error_lines(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("[ERROR] old\n")
    errors = liveview.LogErrors()
    assert errors.new(str(log)) == []  # what was there before the run started is not news
    with open(log, "a") as fh:
        fh.write("[INFO] fine\n[ERROR] broken pipe\nTraceback (most recent call last):\n[ERR")
    assert errors.new(str(log)) == ["[ERROR] broken pipe", "Traceback (most recent call last):"]
    with open(log, "a") as fh:
        fh.write("OR] finished later\n")
    assert errors.new(str(log)) == ["[ERROR] finished later"]


# --- a real supervised child that dies and comes back ----------------------------------------

SERVER = """
import http.server, sys, threading, time
port, value, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
body = (
    "# TYPE newsflow_articles counter\\n"
    f'newsflow_articles_total{{stage="enrich",outcome="enriched"}} {value}\\n'
).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
time.sleep(seconds)
print("[ERROR] worker lost its way", flush=True)
sys.exit(1)
"""


@dataclass
class FakeWorker(Child):
    """Serves a counter on its metrics port, then dies: each life counts from 0 again."""

    lives: list[tuple[int, float]] = field(default_factory=list)

    def start(self) -> None:
        value, seconds = self.lives[min(self.restarts, len(self.lives) - 1)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(self.metrics_port), str(value), str(seconds)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def test_supervised_restart_keeps_run_totals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.stage_helpers import free_port

    monkeypatch.setenv("NEWSFLOW_TOPICS__NAMESPACE", f"test.liveview{os.getpid()}.")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__STATE_PATH", str(tmp_path / "state.sqlite"))
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - id: one\n    url: https://example.org/feed.xml\n")
    pipe = Pipeline(Settings(), feeds, tmp_path, lambda _m: None)
    worker = FakeWorker(
        "enrich", [], {}, tmp_path / "enrich.log", free_port(), lives=[(7, 5.0), (3, 60)]
    )
    pipe.children = {"enrich": worker}
    worker.start()
    out = io.StringIO()
    deadline = time.monotonic() + 30

    def stop() -> bool:
        return time.monotonic() > deadline or "enriched 10" in out.getvalue()

    try:
        pipe.supervise(stop, interval_s=0.3, out=out, tty=False)
    finally:
        if worker.proc is not None:
            worker.proc.kill()
            worker.proc.wait()
    lines = out.getvalue().splitlines()
    assert any("enriched 7" in line for line in lines), lines
    assert "enriched 10" in lines[-1], lines  # 7 from the first life + 3 from the second
    assert not any("enriched 3 " in line for line in lines), lines  # never back to the new life's
    assert worker.restarts == 1
    assert any("exited (code 1); restart #1" in line for line in lines), lines
    assert any("[ERROR] worker lost its way" in line for line in lines), lines
    views = [line for line in lines if line.startswith("polls ")]
    assert all(a != b for a, b in itertools.pairwise(views)), views  # no repeats
    assert "feeds pending 1" in views[-1]


# --- where the view and `newsflow status` connect --------------------------------------------


def test_reach_maps_wildcards_to_loopback_and_keeps_addresses() -> None:
    from streams.commands.run import reach

    assert reach("0.0.0.0") == reach("::") == reach("[::]") == "127.0.0.1"
    assert reach("127.0.0.2") == "127.0.0.2"
    assert reach("::1") == "[::1]"


def test_scrape_follows_the_configured_bind_address() -> None:
    """A worker bound to one address (NEWSFLOW_FAUST__WEB_HOST) is scraped there."""
    import http.server
    import threading

    from streams.commands.run import scrape

    body = b'# TYPE newsflow_articles counter\nnewsflow_articles_total{stage="enrich"} 4\n'

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert scrape(port, "127.0.0.2") == {
            ("newsflow_articles_total", (("stage", "enrich"),)): 4.0
        }
        assert scrape(port) == {}  # nothing listens on 127.0.0.1
    finally:
        server.shutdown()
        server.server_close()


def test_status_screen_strips_terminal_controls_from_feed_and_process_text() -> None:
    from streams.commands import status

    screen = status.render(
        {
            "processes": [
                {
                    "process": "connector",
                    "port": 9465,
                    "up": True,
                    "health": {"ready": False, "problems": {"kafka": "\x1b]0;pwned\x07down"}},
                }
            ],
            "kafka": {"error": "\x1b[2Jgone"},
            "elasticsearch": {"reachable": False, "alias": "a", "error": "\x1b[31mred"},
            "feeds": [
                {
                    "id": "bad\x1b[1A",
                    "health": "failing",
                    "last_new_item_age_s": None,
                    "last_error": "HTTP 500 \x1b[2J\x9b31m\u202eInternal",
                }
            ],
        }
    )
    text = "\n".join(screen)
    assert not any(c in text for c in ("\x1b", "\x07", "\x9b", "\u202e")), text
    assert "HTTP 500" in text and "Internal" in text
