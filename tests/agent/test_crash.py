"""SIGKILL in the middle of a streamed reply, 20 times: no committed customer message is lost
and the database stays intact. The child is a real Agent streaming from a slow generator."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from agent.store import LogStore

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from agent.config import load_config
from agent.generator import ScriptedGenerator
from agent.runtime import Agent
from agent.store import LogStore
from tests.agent.fakes import KeywordKnowledge

config = load_config()
config.escalation.min_relevance = 0.0
generator = ScriptedGenerator(default="Replace the HEPA filter every six months, " * 20)
generator.delay_s = 0.002
agent = Agent(generator, KeywordKnowledge({"filters": "Replace the HEPA filter every six months."}),
              LogStore(sys.argv[1]), config)
round_ = sys.argv[2]
for i in range(1000):
    text = f"How often do I replace the HEPA filter? {round_}-{i}"
    for n, item in enumerate(agent.stream(f"conv-{round_}", text)):
        if n == 0:  # the first delta: the customer's message was committed before generation
            print(text, flush=True)
"""


def test_sigkill_mid_stream_twenty_times(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SUPPORTLOOP_HOME": str(tmp_path)}
    rng = random.Random(7)
    committed: list[str] = []
    for round_ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(round_)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert child.stdout is not None
        reported = [child.stdout.readline().strip() for _ in range(rng.randint(1, 3))]
        assert all(reported), "the child died before it was killed"
        time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside a streamed reply
        child.send_signal(signal.SIGKILL)
        child.wait()
        reported += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
        committed += reported
    with closing(sqlite3.connect(tmp_path / "crash.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in db.execute("SELECT text FROM turns WHERE role = 'customer'")}
    assert [text for text in committed if text not in stored] == []
    with LogStore(url) as store:  # still opens, migrates nothing, serves reads
        assert store.counts()["conversations"] == 20
