"""Shared by the trainer/eval/gate/round tests: tiny TRL rows with short prompts (a 2-layer model
spends its time in the 49k-token vocabulary projection, so short rows keep steps fast), and a
callback that proves an optimizer step changed the trainable parameters."""

from __future__ import annotations

from typing import Any

from agent.config import Persona
from agent.prompt import Passage, build_messages

PERSONA = Persona(system_prompt="You are Aria, Halcyon's support assistant. Answer from the passages.")
FAQ = [
    (
        "How often should I replace the filter?",
        "Every 12 months, or sooner if the light turns red.",
        "filters",
    ),
    (
        "Can the pre-filter go in the dishwasher?",
        "No. Rinse it in lukewarm water and let it dry.",
        "cleaning",
    ),
    ("How long is the warranty?", "New purifiers have a 2-year warranty.", "warranty"),
    ("Does it work on 5 GHz Wi-Fi?", "No, the Aero joins 2.4 GHz networks only.", "wifi"),
    ("What does error E4 mean?", "E4 means the motor overheated; unplug it for an hour.", "errors"),
    ("How loud is the night mode?", "Night mode runs at about 22 dB.", "noise"),
]


def prompt(question: str, doc: str, text: str) -> list[dict[str, str]]:
    return build_messages(question, [Passage(doc, f"{doc}.md", text)], PERSONA)


def sft_rows() -> list[dict[str, Any]]:
    return [
        {
            "prompt": prompt(q, d, a),
            "completion": [{"role": "assistant", "content": a}],
            "conversation_id": f"c{i}",
        }
        for i, (q, a, d) in enumerate(FAQ)
    ]


def pref_rows() -> list[dict[str, Any]]:
    return [
        {
            "prompt": prompt(q, d, a),
            "chosen": [{"role": "assistant", "content": a}],
            "rejected": [{"role": "assistant", "content": "I have no idea, sorry."}],
        }
        for q, a, d in FAQ
    ]


def kto_rows() -> list[dict[str, Any]]:
    rows = []
    for q, a, d in FAQ:
        rows.append(
            {"prompt": prompt(q, d, a), "completion": [{"role": "assistant", "content": a}], "label": True}
        )
        bad = [{"role": "assistant", "content": "Whatever, figure it out."}]
        rows.append({"prompt": prompt(q, d, a), "completion": bad, "label": False})
    return rows


FAST = {
    "max_steps": 2,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "logging_steps": 1,
}


def snapshot_callback() -> Any:
    """A TrainerCallback recording trainable parameters at the start and the end of training."""
    from transformers import TrainerCallback

    from training.run import trainable_snapshot

    class Snapshot(TrainerCallback):
        before: dict[str, Any]
        after: dict[str, Any]

        def on_train_begin(
            self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
        ) -> None:
            self.before = trainable_snapshot(model)

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            self.after = trainable_snapshot(model)

        def changed(self) -> list[str]:
            import torch

            return [n for n, p in self.before.items() if not torch.equal(p, self.after[n])]

    return Snapshot()
