"""``/metrics`` with ``supportloop serve --workers 2`` (issue 21): scrapes answered by either worker
sum both workers' counters (``prometheus_client``'s multiprocess mode), so a counter never goes
backwards between scrapes and ends at the number of requests sent. Before, each worker reported
its own counters, and the total jumped between them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.deploy.test_ops import parse_exposition
from tests.postgres_fixture import free_port

SERIES = ("supportloop_http_requests_total", 'method="GET",path="/healthz",status="200"')


def _scrape(url: str) -> float:
    with httpx.Client(timeout=10) as http:  # a new connection: either worker may answer
        return parse_exposition(http.get(f"{url}/metrics").text).get(SERIES, 0.0)


def test_counters_never_go_backwards_across_two_workers(home: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SUPPORTLOOP_HOME": str(home),
        "SUPPORTLOOP_API__PRELOAD": "false",  # no model: only the ops routes are called
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),  # serve empties or creates it
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-c", "from agent.cli import main; main()", "serve", "--workers", "2"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (
                server.stderr and server.stderr.read()
            )
            time.sleep(0.2)
        sent = 1
        scrapes = []
        for _ in range(12):
            for _ in range(5):
                with httpx.Client(timeout=10) as http:
                    assert http.get(f"{url}/healthz").status_code == 200
                sent += 1
            scrapes.append(_scrape(url))
        files = {p.name.split("_")[-1] for p in (tmp_path / "prometheus").glob("counter_*.db")}
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(files) == 2, files  # both workers served and wrote their counters
    assert scrapes == sorted(scrapes), scrapes  # never backwards
    assert scrapes[-1] == sent  # every worker's requests, summed
