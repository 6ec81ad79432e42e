"""The default model's row augmentations: every row stays a serving prompt."""

from __future__ import annotations

import random

from agent.citations import says_unknown
from agent.prompt import Passage, user_message
from training import augment

WARRANTY = Passage(
    "warranty", "warranty", "New purifiers have a 2 year warranty. Refurbished ones 1 year.", "warranty"
)
WIFI = Passage("wifi", "wifi", "The purifier joins 2.4 GHz Wi-Fi networks only, never 5 GHz.", "wifi")
RETURNS = Passage("returns", "returns", "Returns are free within 30 days of the warranty start.", "returns")


def row(answer: str = "New purifiers have a 2 year warranty.") -> dict:
    prompt = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": user_message("How long is the warranty?", [WARRANTY])},
    ]
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": answer}]}


def test_split_user_reads_back_what_user_message_wrote() -> None:
    passages, question = augment.split_user(user_message("Hi?", [WARRANTY, WIFI]))
    assert question == "Hi?" and [p.text for p in passages] == [WARRANTY.text, WIFI.text]


def test_counterfactual_changes_each_shared_figure_in_passage_and_answer_alike() -> None:
    out = augment.counterfactual(row(), random.Random(0))
    passages, _ = augment.split_user(out["prompt"][-1]["content"])
    answer = out["completion"][0]["content"]
    new = answer.split(" ")[4]
    assert new != "2" and f"{new} year warranty" in passages[0].text
    assert "Refurbished ones 1 year" in passages[0].text  # a figure the answer does not use stays
    assert out["prompt"][0] == row()["prompt"][0]


def test_declined_swaps_in_passages_that_do_not_answer_and_teaches_the_decline() -> None:
    out = augment.declined(row(), [WARRANTY, WIFI, RETURNS], k=2)
    passages, _ = augment.split_user(out["prompt"][-1]["content"])
    assert {p.doc_id for p in passages} == {"wifi", "returns"}
    assert says_unknown(out["completion"][0]["content"])
    # a negative that shares the answer's figure might answer after all: no row
    assert augment.declined(row("It lasts 30 days."), [WARRANTY, WIFI, RETURNS], k=2) is None


def test_with_distractors_fills_to_k_passages() -> None:
    out = augment.with_distractors(row(), [WIFI, RETURNS], random.Random(1), k=2)
    passages, _ = augment.split_user(out["prompt"][-1]["content"])
    assert len(passages) == 2 and "warranty" in {p.doc_id for p in passages}
