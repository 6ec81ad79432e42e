"""Plots and Markdown for training runs and rounds. matplotlib with the Agg backend only (no
display needed); every function writes a file and returns its path.

Invariant: a report states what was measured and on how much data; numbers are written as
measured (no rounding beyond 4 decimals), and a missing value is written as "n/a", never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_points(history: Sequence[Mapping[str, Any]], key: str = "loss") -> tuple[list[int], list[float]]:
    """(steps, values) of one logged series in a Trainer ``log_history``."""
    points = [(int(h["step"]), float(h[key])) for h in history if key in h and "step" in h]
    return [s for s, _ in points], [v for _, v in points]


def plot_loss(history: Sequence[Mapping[str, Any]], path: Path, title: str = "training loss") -> Path:
    """The training (and, when logged, validation) loss against the optimizer step; GRPO's mean
    reward on a second axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    for key, label in (("loss", "train"), ("eval_loss", "validation")):
        steps, values = loss_points(history, key)
        if steps:
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    steps, values = loss_points(history, "reward")  # GRPO: the mean reward of the sampled answers
    if steps:
        twin = ax.twinx()
        twin.plot(steps, values, color="tab:green", marker="o" if len(steps) < 30 else None, markersize=3)
        twin.set_ylabel("mean reward", color="tab:green")
    if ax.lines:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no loss was logged (too few steps for logging_steps)", ha="center", va="center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_metric_bars(report: Mapping[str, Any], metric: str, path: Path, title: str | None = None) -> Path:
    """One metric for every model (candidate, production, few-shot) in every setting."""
    plt = _pyplot()
    models = list(report["models"])
    settings = sorted({s for m in models for s in report["models"][m]})
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    width = 0.8 / max(1, len(settings))
    for i, setting in enumerate(settings):
        values = [report["models"][m].get(setting, {}).get(metric) for m in models]
        xs = [j + i * width for j in range(len(models))]
        bars = ax.bar(xs, [v or 0 for v in values], width, label=setting)
        for bar, value in zip(bars, values, strict=True):
            label = "n/a" if value is None else f"{value:.3g}"
            ax.annotate(
                label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom"
            )
    ax.set_xticks([j + width * (len(settings) - 1) / 2 for j in range(len(models))], models)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} (n={report.get('n')})")
    ax.legend(title="passages")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "nan"
    return str(value)


def metrics_table(report: Mapping[str, Any], metrics: Sequence[str]) -> str:
    """A Markdown table: one row per (model, setting), one column per metric."""
    lines = ["| model | passages | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for model, settings in report["models"].items():
        for setting, values in settings.items():
            cells = " | ".join(fmt(values.get(m)) for m in metrics)
            lines.append(f"| {model} | {setting} | {cells} |")
    return "\n".join(lines)
