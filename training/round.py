"""One improvement round, top to bottom: reviewed logs -> data -> SFT (+ DPO/KTO) -> evaluation
-> gate -> promote or refuse -> a Markdown report with plots.

Invariants:

* Production changes only through ``training.gate.promote`` with a passed decision taken
  against the production version of that moment; a refused round leaves everything serving as
  before (its candidates stay in the registry, unpromoted).
* Every stage's output lands in one folder, ``<home>/runs/round-<timestamp>/``: the compiled
  data, each trainer's run (log history, loss curve), ``eval.json``, ``decision.json`` and
  ``report.md``, so a round can be audited after the fact.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import DataError
from training.gate import GateConfig, GateDecision, eval_summary

if TYPE_CHECKING:
    from agent.config import Persona
    from agent.generator import Generator
    from agent.store import LogStore
    from training.data import CompiledDataset, IndexState, Retriever
    from training.run import TrainResult


@dataclass
class RoundResult:
    run_dir: Path
    report_md: Path
    candidate: str | None
    promoted: bool
    decision: GateDecision | None
    trained: list[dict[str, Any]] = field(default_factory=list)
    retired_shortcuts: list[str] = field(default_factory=list)  # verified answers the model now gives

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "report": str(self.report_md),
            "candidate": self.candidate,
            "promoted": self.promoted,
            "why": self.decision.why if self.decision else "",
            "reasons": (self.decision.failures or self.decision.reasons) if self.decision else [],
            "decision": self.decision.to_dict() if self.decision else None,
            "trained": self.trained,
            "retired_shortcuts": self.retired_shortcuts,
        }


def run_round(
    *,
    home: Path,
    persona: Persona | None,
    data_files: Sequence[Path] = (),
    store: LogStore | None = None,
    docs: Path | None = None,
    retriever: Retriever | None = None,
    overrides: Mapping[str, Any] | None = None,
    recipe: str = "cpu",
    eval_limit: int | None = GateConfig.eval_limit,
    gate: GateConfig = GateConfig(),
    generators: Mapping[str, Generator] | None = None,
    progress: bool = True,
    erased: Collection[str] | None = None,
    index: IndexState | None = None,
) -> RoundResult:
    """Run a round; see the module docstring. ``store``: the log store to export reviewed
    conversations from (None: only ``data_files``). ``erased``: erased conversations' keys, left
    out of ``data_files`` too (default: the store's). ``index``: the knowledge index as it is now
    (``training.data.current_index``): logged answers quoting text it no longer holds are left
    out until re-reviewed, as in ``data compile``."""
    from agent.models import ModelRegistry
    from training.data import compile_dataset
    from training.evaluate import EvalPlan, evaluate_versions, examples_from_rows
    from training.gate import promote, retire_after_promotion, run_gate
    from training.run import new_run_dir

    run_dir = new_run_dir(home, "round")
    registry = ModelRegistry(home)
    production = registry.production_name()

    # 1. Export reviewed logs + extra files, compile with the serving prompt and a stable split.
    dataset = compile_dataset(
        list(data_files),
        store=store,
        docs=docs,
        persona=persona,
        progress=progress,
        erased=erased,
        index=index,
    )
    dataset.write(run_dir / "data")

    # 2. SFT from production; DPO when there are pairs, KTO when there are labelled answers.
    stages = _train_stages(dataset, dict(overrides or {}), recipe, run_dir, home, persona, progress)
    trained = [stage.to_dict() for stage in stages]
    candidate = stages[-1].version

    # 3. Evaluate candidate vs production vs few-shot on the held-out answers, both settings.
    held_out = dataset.sft_val[:eval_limit] if eval_limit else dataset.sft_val
    if not held_out:  # never gate on training rows: the comparison would reward memorising
        raise DataError("no held-out conversation to evaluate on: the round needs more conversations")
    few_shot_base = registry.get(candidate).base_model
    plan = EvalPlan(
        models={"candidate": candidate, "production": production, "few_shot": few_shot_base},
        examples=examples_from_rows(held_out),
        shot_pool=dataset.sft_train,
        retriever=retriever,
        settings=("gold", "retrieved") if retriever is not None else ("gold",),
    )
    if retriever is None:
        gate = dataclasses.replace(gate, setting="gold")
    report = evaluate_versions(plan, home, progress=progress)
    (run_dir / "eval.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    registry.update_metrics(candidate, {"eval": eval_summary(report, production)})

    # 4. Gate, then promote or refuse.
    decision = run_gate(
        candidate, report, home=home, config=gate, retriever=retriever, persona=persona, generators=generators
    )
    (run_dir / "decision.json").write_text(json.dumps(decision.to_dict(), indent=1), encoding="utf-8")
    retired: list[str] = []
    if decision.passed:
        promote(candidate, home=home, decision=decision, reason=f"round {run_dir.name}")
        if store is not None:  # verified answers the new production model now gets right retire
            retired = retire_after_promotion(store, candidate, home, retriever, persona, generators)

    # 5. The report.
    report_md = write_report(run_dir, report, decision, trained, dataset.manifest["counts"], gate)
    return RoundResult(run_dir, report_md, candidate, decision.passed, decision, trained, retired)


def _train_stages(
    dataset: CompiledDataset,
    overrides: dict[str, Any],
    recipe: str,
    run_dir: Path,
    home: Path,
    persona: Persona | None,
    progress: bool,
) -> list[TrainResult]:
    """SFT from production, then DPO on the pairs and KTO on the labelled answers when there are
    any, each stage from the one before; every stage's run lands in ``run_dir/<kind>``."""
    from training.preference import train_dpo, train_kto
    from training.sft import train_sft

    stages = (
        ("sft", train_sft, True),
        ("dpo", train_dpo, bool(dataset.pref_train)),
        ("kto", train_kto, len(dataset.kto_train) >= 2),  # KTO's KL term needs two rows per batch
    )
    results: list[TrainResult] = []
    for kind, train_fn, wanted in stages:
        if wanted:
            result = train_fn(
                dataset,
                base=results[-1].version if results else "production",
                recipe=recipe,
                overrides=overrides if kind == "sft" else _for(kind, overrides),
                out_dir=run_dir / kind,
                home=home,
                persona=persona,
                progress=progress,
            )
            results.append(result)
    return results


def _for(kind: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The round's overrides that apply to ``kind``'s TRL config (``packing`` is SFT-only, ...);
    ``data.``/``model.`` keys apply to every stage, ``lora.`` ones only where a LoRA is created."""
    from trl import DPOConfig, KTOConfig

    fields = {f.name for f in dataclasses.fields({"dpo": DPOConfig, "kto": KTOConfig}[kind])}
    return {k: v for k, v in overrides.items() if k in fields or k.startswith(("data.", "model."))}


def write_report(
    run_dir: Path,
    report: Mapping[str, Any],
    decision: GateDecision,
    trained: Sequence[Mapping[str, Any]],
    counts: Mapping[str, Any],
    gate: GateConfig,
) -> Path:
    from training.report import fmt, metrics_table, plot_metric_bars

    plots = []
    for metric in (gate.primary, "perplexity"):
        path = plot_metric_bars(report, metric, run_dir / f"{metric}.png")
        plots.append(path.name)
    verdict = "PROMOTED" if decision.passed else "REFUSED"
    lines = [
        f"# Training round {run_dir.name}",
        "",
        f"**{verdict}**: candidate `{decision.candidate}` vs production `{decision.production}`.",
        "",
        decision.why,
        "",
        *[
            f"- {'fails' if r in decision.failures else 'ok'}: {r}"
            for r in [*decision.failures, *decision.reasons]
        ],
        "",
        "## Data",
        "",
        "| rows | train | validation |",
        "|---|---|---|",
        *[f"| {k} | {v['train']} | {v['val']} |" for k, v in counts.items()],
        "",
        f"Evaluated on {report['n']} held-out answers (validation split); protocol: {report['protocol']}.",
        "",
        "## Training",
        "",
    ]
    for stage in trained:
        loss = Path(stage["loss_png"])
        target = run_dir / f"loss-{stage['kind']}.png"
        if loss.is_file() and loss != target:
            shutil.copyfile(loss, target)
        m = stage["metrics"]
        lines += [
            f"### {stage['kind']} -> `{stage['version']}` (parent `{stage['parent']}`)",
            "",
            f"{m.get('train_rows')} rows, {m.get('train_steps')} steps, {fmt(m.get('train_seconds'))} s, "
            f"final loss {fmt(m.get('train_loss'))}, {fmt(m.get('tokens_per_s'))} tokens/s.",
            "",
            f"![{stage['kind']} loss](loss-{stage['kind']}.png)",
            "",
        ]
    lines += [
        "## Evaluation",
        "",
        metrics_table(report, ["rougeL_f1", "bleu", "perplexity", "groundedness", "behaviour_accuracy"]),
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
        "## Safety",
        "",
        "| check | candidate | production |",
        "|---|---|---|",
        *[f"| {k} | {fmt(v['candidate'])} | {fmt(v['production'])} |" for k, v in decision.safety.items()],
        "",
    ]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
