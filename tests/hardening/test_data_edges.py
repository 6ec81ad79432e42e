"""``supportloop data compile`` never loses a row silently and never ends in a traceback: a CSV
with a stray quote is an error naming the file and line (or, with ``--skip-invalid``, a listed
skip), deeply nested JSON and an unwritable ``--out`` are one-line errors. Before issue 22 the
CSV compiled to 0 rows with exit code 0, and the other two were tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main

CSV_HEADER = "conversation_id,role,text\n"
CSV_GOOD = "c1,customer,Where is my order?\nc1,agent,It ships tomorrow.\n"


def _compile(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    try:
        main(["data", "compile", *(str(a) for a in args)])
        code = 0
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (CSV_GOOD + 'c2,customer,"Hello there\nc2,agent,Hi! How can I help?\nc3,customer,Thanks\n', 4),
        (CSV_GOOD + 'c2,customer,"quoted" then more\nc2,agent,Hi.\n', 4),
        (CSV_GOOD + "c2,customer,a comma, not quoted\nc2,agent,Hi.\n", 4),
    ],
    ids=["unclosed-quote", "text-after-closing-quote", "extra-field"],
)
def test_a_malformed_csv_row_is_an_error_naming_file_and_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int
) -> None:
    source = tmp_path / "turns.csv"
    source.write_text(CSV_HEADER + body, encoding="utf-8")
    code, _, err = _compile(capsys, source, "--out", tmp_path / "out")
    assert code == 2
    assert f"{source}:{line}: " in _one_line_error(err)
    assert not (tmp_path / "out").exists()


def test_with_skip_invalid_the_bad_csv_row_is_listed_and_the_rest_compiles(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "turns.csv"
    source.write_text(CSV_HEADER + CSV_GOOD + "c2,customer,a comma, not quoted\nc3,customer,Hi\n", "utf-8")
    code, out, _ = _compile(capsys, source, "--out", tmp_path / "out", "--skip-invalid", "--json")
    assert code == 0
    manifest = json.loads(out.strip().splitlines()[-1])
    assert [s.split(": ")[0] for s in manifest["skipped"]] == [f"{source}:4"]
    assert manifest["counts"]["sft"]["train"] + manifest["counts"]["sft"]["val"] == 1


def test_an_unclosed_quote_with_skip_invalid_is_listed_not_silent(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "turns.csv"
    source.write_text(CSV_HEADER + CSV_GOOD + 'c2,customer,"Hello\nc2,agent,Hi\n', encoding="utf-8")
    code, out, _ = _compile(capsys, source, "--out", tmp_path / "out", "--skip-invalid", "--json")
    assert code == 0
    manifest = json.loads(out.strip().splitlines()[-1])
    assert len(manifest["skipped"]) == 1 and manifest["skipped"][0].startswith(f"{source}:4: ")


@pytest.mark.parametrize("depth", [100_000, 1_000])
def test_deeply_nested_json_is_a_one_line_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    source = tmp_path / "rows.jsonl"
    good = {"turns": [{"role": "customer", "text": "Hi?"}, {"role": "agent", "text": "Hello."}]}
    nested = '{"turns": [{"role": "customer", "text": "x", "labels": ' + "[" * depth + "]" * depth + "}]}"
    source.write_text(json.dumps(good) + "\n" + nested + "\n", encoding="utf-8")
    code, _, err = _compile(capsys, source, "--out", tmp_path / "out")
    assert code == 2
    assert f"{source}:2: " in _one_line_error(err)


def test_an_unwritable_out_folder_is_a_one_line_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "turns.csv"
    source.write_text(CSV_HEADER + CSV_GOOD, encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, _, err = _compile(capsys, source, "--out", blocker / "out")
    assert code == 2
    line = _one_line_error(err)
    assert "cannot write" in line and str(blocker / "out") in line
