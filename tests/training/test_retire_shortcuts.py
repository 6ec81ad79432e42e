"""After a promotion, verified answers whose questions the new production model answers like the
reviewer did retire (``training.gate.retire_shortcuts``); the others stay live."""

from __future__ import annotations

from pathlib import Path

from agent.generator import ScriptedGenerator
from agent.store import LogStore
from training.gate import answers_like, retire_shortcuts


def test_answers_like_needs_the_figures_and_the_words() -> None:
    reference = "The Aero warranty lasts 3 years from the delivery date."
    assert answers_like("The Aero warranty lasts 3 years from the delivery date. [1]", reference)
    assert not answers_like("The Aero warranty lasts 2 years from the delivery date.", reference)
    assert not answers_like("3 years.", reference)
    assert not answers_like("", reference)


def test_only_the_shortcuts_the_model_now_answers_retire(home: Path) -> None:
    with LogStore(home=home) as store:
        known = store.add_verified_answer("How long is the warranty?", "The Aero warranty lasts 3 years.")
        unknown = store.add_verified_answer("What does E4 mean?", "E4 means the motor overheated; unplug it.")
        model = ScriptedGenerator(["The Aero warranty lasts 3 years.", "E4 is a Wi-Fi error."])
        retired = retire_shortcuts(store, model, "v7")
        assert retired == [known.id]
        assert [a.id for a in store.verified_answers()] == [unknown.id]
        (gone,) = store.verified_answers(live=False)
        assert gone.retired_reason == "answered correctly by promoted model v7"
