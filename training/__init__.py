"""Training: compile support history into TRL datasets and fine-tune, evaluate and promote models.

Public API (imported lazily, so ``import training`` pulls in neither torch nor TRL)::

    from training import compile_dataset, load_rows, redact
    dataset = compile_dataset([Path("conversations.jsonl")], docs=Path("docs/"))
    paths = dataset.write(Path("runs/data"))   # sft/pref/kto _train/_val .jsonl + manifest.json

    from training import train_sft, train_dpo, evaluate_versions, EvalPlan, decide, promote
    sft = train_sft(dataset, base="production")             # -> TrainResult(version="v1", ...)
    dpo = train_dpo(dataset, base=sft.version)              # parent: the SFT version

``training`` may import ``agent`` and ``knowledge``, never ``ui`` or ``deploy``.
"""

from __future__ import annotations

from knowledge.lazy import lazy_exports

_EXPORTS = {
    "compile_dataset": "training.data",
    "CompiledDataset": "training.data",
    "detect_format": "training.data",
    "load_rows": "training.data",
    "find_pii": "training.pii",
    "redact": "training.pii",
    "PiiSpan": "training.pii",
    "TrainResult": "training.run",
    "train_sft": "training.sft",
    "train_dpo": "training.preference",
    "train_kto": "training.preference",
    "train_reward": "training.reward",
    "evaluate_versions": "training.evaluate",
    "EvalPlan": "training.evaluate",
    "GateConfig": "training.gate",
    "GateDecision": "training.gate",
    "decide": "training.gate",
    "promote": "training.gate",
    "run_round": "training.round",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
