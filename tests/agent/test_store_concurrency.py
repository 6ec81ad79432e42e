"""LogStore under concurrent writers (threads, processes) and under SIGKILL mid-write."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import NoReturn

import pytest

from agent.store import LogStore

REPO = Path(__file__).resolve().parents[2]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore(store_url) as opened:
        yield opened


def seqs(store: LogStore, conversation_id: str) -> list[int]:
    [row] = store.export(conversation_ids=[conversation_id])
    return [turn["seq"] for turn in row["turns"]]


def test_threads_sharing_one_store_lose_nothing(store: LogStore) -> None:
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            store.ensure_conversation("shared")  # racing get-or-create: one row, no error
            own = store.create_conversation(f"own-{n}")
            for i in range(per_thread):
                store.add_turn("shared", "customer", f"thread {n} message {i}")
                if i % 5 == 0:
                    store.add_turn(own.id, "agent", f"own {n} {i}")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert errors == []

    shared = store.turns("shared")
    assert len(shared) == threads * per_thread
    assert seqs(store, "shared") == list(range(1, threads * per_thread + 1))  # unique and gapless
    for n in range(threads):  # each thread's messages in the order it wrote them
        mine = [t.text for t in shared if t.text.startswith(f"thread {n} ")]
        assert mine == [f"thread {n} message {i}" for i in range(per_thread)]
        assert seqs(store, f"own-{n}") == [1, 2, 3, 4, 5]
    assert store.counts()["conversations"] == threads + 1
    assert store.list_conversations(limit=100)[0].turn_count in (5, threads * per_thread)


WRITER = r"""
import sys
from agent.store import LogStore

url, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with LogStore(url) as store:
    store.ensure_conversation("shared")
    own = store.create_conversation("own-" + tag)
    for i in range(count):
        store.add_turn("shared", "customer", f"{tag} message {i}")
        store.add_turn(own.id, "agent", f"{tag} reply {i}")
print("done", flush=True)
"""


def test_processes_writing_one_new_database_lose_nothing(store_url: str) -> None:
    # The database is new: the children also race to create and migrate it.
    processes, count = 3, 20
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, f"p{n}", str(count)],
            env=CHILD_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0 and out.strip() == "done", err
    with LogStore(store_url) as store:
        shared = store.turns("shared")
        assert len(shared) == processes * count
        assert seqs(store, "shared") == list(range(1, processes * count + 1))
        for n in range(processes):
            assert [t.text for t in shared if t.text.startswith(f"p{n} ")] == [
                f"p{n} message {i}" for i in range(count)
            ]
            assert seqs(store, f"own-p{n}") == list(range(1, count + 1))


# The agent runtime logs the customer's message, then streams a reply and logs it at the end. The
# child does the store's half of that in a loop: commit a customer turn, report its id, then write
# a large agent turn and its feedback, where the parent's SIGKILL usually lands. The child is
# forked, not exec'd: a crash is the same to SQLite either way, and 20 rounds then take seconds
# instead of 20 interpreter start-ups.
def crash_child(url: str, tag: str, report: int) -> NoReturn:
    try:
        store = LogStore(url)
        store.ensure_conversation("crash")
        n = 0
        while True:
            n += 1
            turn = store.add_turn("crash", "customer", f"{tag} question {n} " + "words " * (n * 37 % 500))
            os.write(report, f"{turn.id}\n".encode())  # only after add_turn returned: committed
            reply = store.add_turn("crash", "agent", "streamed answer " * 8000, model_version="crash")
            store.add_feedback(reply.id or "", thumbs=1)
    finally:
        os._exit(1)  # never back into pytest's code in the forked copy


def test_sigkill_mid_write_loses_no_committed_turn_and_corrupts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    url = f"sqlite:///{path}"
    rng = random.Random(20250301)
    committed: list[str] = []
    for round_ in range(20):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            crash_child(url, f"r{round_}", write_end)
        os.close(write_end)
        with os.fdopen(read_end, "r") as reports:
            reported = [reports.readline().strip() for _ in range(rng.randint(1, 4))]
            assert all(reported), "the child died before it was killed"
            # Mostly inside the agent turn's write, which follows at once and takes ~10 ms here
            # (sometimes inside the feedback or the next customer turn).
            time.sleep(rng.uniform(0, 0.012))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            reported += [line.strip() for line in reports.read().splitlines() if line.strip()]
        committed += reported
        check_database(path, committed)

    with LogStore(url) as store:  # the store itself still opens and works
        assert {t.id for t in store.turns("crash")} >= set(committed)
        assert len(store.search("question")) > 0


def check_database(path: Path, committed: list[str]) -> None:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        db.execute("INSERT INTO turns_fts (turns_fts) VALUES ('integrity-check')")  # raises if corrupt
        stored = {row[0] for row in db.execute("SELECT id FROM turns WHERE role = 'customer'")}
        missing = [turn_id for turn_id in committed if turn_id not in stored]
        assert missing == [], f"{len(missing)} committed customer turns lost"
        seq = [
            row[0] for row in db.execute("SELECT seq FROM turns WHERE conversation_id = 'crash' ORDER BY seq")
        ]
        assert seq == list(range(1, len(seq) + 1))
        assert db.execute("SELECT turn_count FROM conversations WHERE id = 'crash'").fetchone() == (len(seq),)
        lengths = {row[0] for row in db.execute("SELECT length(text) FROM turns WHERE role = 'agent'")}
        assert lengths <= {len("streamed answer " * 8000)}  # no torn rows
