"""Mix recipes: several sources compiled with their own splits, augmented, weighted and described."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import DataError
from tests.training.test_data import convo, write_jsonl
from training.mix import build_mix, load_mix


def recipe(tmp_path: Path, extra: str = "") -> Path:
    rows = [convo(f"c{i}", f"question {i}?", f"answer {i}.") for i in range(40)]
    write_jsonl(tmp_path / "small.jsonl", rows)
    write_jsonl(tmp_path / "other.jsonl", [convo(f"o{i}", f"other {i}?", f"reply {i}.") for i in range(40)])
    path = tmp_path / "mix.yaml"
    path.write_text(
        "seed: 7\nsources:\n"
        f"  - {{name: small, path: {tmp_path / 'small.jsonl'}, val_fraction: 0.2{extra}}}\n"
        f"  - {{name: other, path: {tmp_path / 'other.jsonl'}, val_fraction: 0.2}}\n",
        encoding="utf-8",
    )
    return path


def test_repeat_weights_a_source_and_the_manifest_says_so(tmp_path: Path) -> None:
    once, _, plain = build_mix(load_mix(recipe(tmp_path))[0], seed=7)
    twice, val, weighted = build_mix(load_mix(recipe(tmp_path, ", repeat: 2"))[0], seed=7)
    small = [r for r in once if r["source"] == "small"]
    assert len([r for r in twice if r["source"] == "small"]) == 2 * len(small) > 0
    assert len([r for r in twice if r["source"] == "other"]) == len(once) - len(small)
    assert weighted["sources"][0]["repeat"] == 2 and "repeat" not in plain["sources"][0]
    assert not {r["conversation_id"] for r in twice} & {r["conversation_id"] for r in val}


@pytest.mark.parametrize("value", ["0", "1.5", "true", "two"])
def test_a_bad_repeat_is_an_error_before_anything_is_compiled(tmp_path: Path, value: str) -> None:
    with pytest.raises(DataError, match="source 'small': repeat must be a whole number of 1 or more"):
        load_mix(recipe(tmp_path, f", repeat: {value}"))


def one_source(tmp_path: Path, name: str, rows: list[dict], seed: int, setting: str) -> Path:
    """A one-source mix recipe over ``rows`` with ``setting`` (``key: value``) on the source."""
    write_jsonl(tmp_path / f"{name}.jsonl", rows)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"seed: {seed}\nsources:\n"
        f"  - {{name: {name}, path: {tmp_path / f'{name}.jsonl'}, val_fraction: 0.2, {setting}}}\n",
        encoding="utf-8",
    )
    return path


def priced(tmp_path: Path, counterfactuals: str) -> Path:
    rows = [
        convo(f"p{i}", f"how much is plan {i}?", f"Plan {i} costs {10 + i} dollars.",
              contexts=[{"doc_id": f"plans-{i}", "text": f"Plan {i} costs {10 + i} dollars a month."}])
        for i in range(30)
    ]  # fmt: skip
    return one_source(tmp_path, "priced", rows, 3, f"counterfactuals: {counterfactuals}")


def test_counterfactuals_above_one_are_copies_per_row_each_drawn_afresh(tmp_path: Path) -> None:
    plain, _, _ = build_mix(load_mix(priced(tmp_path, "0"))[0], seed=3)
    twice, _, manifest = build_mix(load_mix(priced(tmp_path, "2"))[0], seed=3)
    copies = [r for r in twice if r.get("augmentation") == "counterfactuals"]
    assert len(plain) > 0 and len(copies) == 2 * len(plain) == 2 * (len(twice) - len(copies))
    assert manifest["sources"][0]["counterfactuals"] == len(copies)
    answers = [r["completion"][-1]["content"] for r in copies]
    original = {r["conversation_id"]: r["completion"][-1]["content"] for r in plain}
    assert all(r["completion"][-1]["content"] != original[r["conversation_id"]] for r in copies)
    assert len(set(answers)) > len(plain)  # the two copies of a row change its figure differently


def asking(tmp_path: Path, clarifications: str) -> Path:
    rows = [convo(f"a{i}", f"how do I reset it {i}?", f"Press reset {i}.") for i in range(30)]
    rows += [convo(f"q{i}", f"it broke {i}", "Which model do you have?") for i in range(30)]
    return one_source(tmp_path, "asking", rows, 5, f"clarifications: {clarifications}")


def test_clarifications_copy_only_the_rows_that_ask_back(tmp_path: Path) -> None:
    plain, _, before = build_mix(load_mix(asking(tmp_path, "0"))[0], seed=5)
    more, _, manifest = build_mix(load_mix(asking(tmp_path, "3"))[0], seed=5)
    asks = [r for r in plain if r["completion"][-1]["content"].endswith("?")]
    copies = [r for r in more if r.get("augmentation") == "clarifications"]
    assert 0 < len(asks) < len(plain)
    assert len(copies) == 3 * len(asks) == manifest["sources"][0]["clarifications"]
    assert all(r["completion"][-1]["content"] == "Which model do you have?" for r in copies)
    assert before["sources"][0]["clarifications"] == 0


@pytest.mark.parametrize(
    "setting",
    ["counterfactuals: -1", "declines: 11", "distractors: 1.5", "declines: yes", "clarifications: 12"],
)
def test_a_bad_augmentation_share_is_an_error(tmp_path: Path, setting: str) -> None:
    name = setting.split(":")[0]
    with pytest.raises(DataError, match=f"source 'small': {name} must be a number from 0 to"):
        load_mix(recipe(tmp_path, f", {setting}"))
