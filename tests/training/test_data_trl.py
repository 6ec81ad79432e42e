"""The compiled rows are what TRL expects: conversational prompt-completion, preference and
unpaired preference rows that render through the default model's chat template."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data import compile_dataset

SAMPLE = Path(__file__).resolve().parents[2] / "agent" / "sample"


@pytest.mark.slow
def test_rows_render_with_trl_and_the_chat_template(tokenizer):
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    dataset = compile_dataset([SAMPLE / "conversations.jsonl"], docs=SAMPLE / "docs", val_fraction=0.0)
    for rows, answer_keys in (
        (dataset.sft_train, ("completion",)),
        (dataset.pref_train, ("chosen", "rejected")),
        (dataset.kto_train, ("completion",)),
    ):
        assert rows
        for row in rows[:5]:
            assert is_conversational(row)
            rendered = maybe_apply_chat_template(row, tokenizer)
            assert "Passages:" in rendered["prompt"]
            for key in answer_keys:
                assert rendered[key].strip() and row[key][0]["content"] in rendered[key]
