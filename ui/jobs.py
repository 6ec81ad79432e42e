"""``supportloop`` commands started from the console, in child processes: training rounds
(``supportloop train round``, followed live) and short commands run to their end (``run``: the
canary page's promotion, the same code path as the terminal's).

The child writes its output to ``<home>/runs/ui-round-<timestamp>.log``; the page tails that file,
so a round keeps running (and stays visible to every admin) when the page reruns, the admin
navigates away or another admin opens the page. One round at a time per data home.
No Streamlit here: the page owns the rendering.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

_PROGRESS = re.compile(r"(\d+)\s*/\s*(\d+)")
_REPORT = re.compile(r"(\S*round-[^\s/]+/report\.md)")


def round_available() -> bool:
    """Whether this install ships ``supportloop train round`` (``training/round.py``)."""
    try:
        return importlib.util.find_spec("training.round") is not None
    except (ImportError, ValueError):
        return False


def command(extra: str = "") -> list[str]:
    return [sys.executable, "-m", "agent.cli", "train", "round", *shlex.split(extra)]


def run(args: list[str], home: Path, timeout_s: float = 1800) -> tuple[int, str]:
    """``supportloop ARGS`` in a child process on ``home``, to its end: (exit code, output)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SUPPORTLOOP_HOME": str(home)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "agent.cli", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return 124, f"supportloop {' '.join(args)} ran past {timeout_s:g} s and was stopped"
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass
class RoundJob:
    """One ``train round`` child process and its log file."""

    home: Path
    argv: list[str]
    log_path: Path
    started: float = field(default_factory=time.time)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, home: Path, extra: str = "", env: dict[str, str] | None = None) -> RoundJob:
        runs = home / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        log_path = runs / f"ui-round-{datetime.now():%Y%m%d-%H%M%S}.log"
        job = cls(home=home, argv=command(extra), log_path=log_path)
        child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "SUPPORTLOOP_HOME": str(home)}
        with log_path.open("wb") as log:
            job.process = subprocess.Popen(
                job.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env
            )
        return job

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.running and self.process is not None:
            self.process.terminate()

    def lines(self) -> list[str]:
        """The output so far; carriage-return progress bars count as separate lines."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line.rstrip() for line in re.split(r"[\r\n]+", text) if line.strip()]

    def progress(self) -> float | None:
        """The latest "n/m" seen in the output, as a fraction."""
        for line in reversed(self.lines()):
            match = _PROGRESS.search(line)
            if match and int(match.group(2)) > 0:
                return min(1.0, int(match.group(1)) / int(match.group(2)))
        return None

    def report(self) -> Path | None:
        """The round's report.md: the one its output names, else the newest written since it began."""
        for line in reversed(self.lines()):
            match = _REPORT.search(line)
            if match and Path(match.group(1)).is_file():
                return Path(match.group(1))
        fresh = [p for p in reports(self.home) if p.stat().st_mtime >= self.started - 1]
        return fresh[0] if fresh else None


def reports(home: Path) -> list[Path]:
    """Every ``<home>/runs/round-*/report.md``, newest first."""
    found = (home / "runs").glob("round-*/report.md")
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


class Jobs:
    """The process-wide registry: the latest round per data home."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, RoundJob] = {}

    def latest(self, home: Path) -> RoundJob | None:
        with self._lock:
            return self._jobs.get(str(home))

    def start(self, home: Path, extra: str = "") -> RoundJob:
        with self._lock:
            current = self._jobs.get(str(home))
            if current is not None and current.running:
                raise RuntimeError("a training round is already running")
            job = RoundJob.start(home, extra)
            self._jobs[str(home)] = job
            return job
