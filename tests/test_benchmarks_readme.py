"""``benchmarks/README.md`` cannot drift: one row per benchmark, and every figure in bold is
read again from the results file and JSON path its link names, and compared as rounded there."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_benchmarks import benchmark_names

BENCHMARKS = REPO / "benchmarks"
README = (BENCHMARKS / "README.md").read_text(encoding="utf-8")
# [**0.911**](results/retrieval_dstc11.json "results.ours.report.hit@5")
FIGURE = re.compile(r'\[\*\*(?P<shown>[^*]+)\*\*\]\((?P<file>results/[\w.-]+\.json) "(?P<path>[^"]+)"\)')
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def rows() -> dict[str, list[str]]:
    """The table's rows by benchmark name: question, baseline, command, results, headline."""
    found = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 6:
            found[cells[0].strip("`")] = cells[1:]
    return found


ROWS = rows()


def value_at(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def shown_as(value: Any, shown: str) -> bool:
    """Whether ``value`` rounds to ``shown`` (thousands commas, a sign and a unit like "x" aside)."""
    (number,) = NUMBER.findall(shown)
    number = number.replace(",", "").lstrip("+")
    decimals = len(number.partition(".")[2])
    return not isinstance(value, bool) and f"{float(value):.{decimals}f}" == number


def test_one_row_per_benchmark() -> None:
    assert sorted(ROWS) == benchmark_names()


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_command_runs_the_benchmark_with_options_it_has(name: str) -> None:
    command = ROWS[name][2].split("`")[1]
    assert command.startswith(f"python -m benchmarks.{name}")
    source = (BENCHMARKS / f"{name}.py").read_text(encoding="utf-8")
    for option in re.findall(r"(--[\w-]+)", command):
        assert f'"{option}"' in source, option


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_bold_figure_is_its_results_file_value(name: str) -> None:
    results, headline = ROWS[name][3], ROWS[name][4]
    figures = list(FIGURE.finditer(headline))
    assert len(figures) == headline.count("**") // 2, "a bold figure without a results link"
    for figure in figures:
        assert f"({figure['file']})" in results, f"{figure['file']} is not in the results column"
        data = json.loads((BENCHMARKS / figure["file"]).read_text(encoding="utf-8"))
        value = value_at(data, figure["path"])
        assert shown_as(value, figure["shown"]), f"{figure['path']} is {value}, shown as {figure['shown']}"


def test_a_row_without_a_results_file_shows_no_checked_figure() -> None:
    for name, (*_, results, headline) in ROWS.items():
        if "results/" not in results:
            assert "**" not in headline, name
        else:
            assert FIGURE.search(headline), f"{name}: a results file but no figure from it"


def test_every_results_file_is_named() -> None:
    for path in (BENCHMARKS / "results").glob("*.json"):
        assert f"`{path.name}`" in README, path.name


def test_rounding_is_as_shown() -> None:
    assert shown_as(0.9111880046136102, "0.911") and not shown_as(0.9111880046136102, "0.912")
    assert shown_as(1614.0, "1,614") and shown_as(18.25, "18.25x") and shown_as(0.8395, "+0.84")
    assert not shown_as(True, "1")
