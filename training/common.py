"""Where ``training.common``'s names live now, re-exported so older imports keep working.

Recipes and overrides: ``training.recipes``; the base model, the run folder, saving and
registering: ``training.run``; any input -> a trainer's rows: ``training.data``.
"""

from training.data import COLUMNS, training_rows
from training.recipes import (
    RECIPES_DIR,
    SECTIONS,
    TRAINER_SECTIONS,
    apply_overrides,
    available_reporters,
    load_recipe,
    lora_config,
    parse_set,
    recipe_path,
    trl_config,
)
from training.run import (
    Base,
    TrainResult,
    compact_lm_head_on_cpu,
    count_tokens,
    freeze_layers,
    load_policy,
    load_tokenizer,
    new_run_dir,
    peak_rss_mb,
    resolve_base,
    run_training,
    save_and_register,
    start_run,
    trainable_snapshot,
)

__all__ = [
    "COLUMNS",
    "RECIPES_DIR",
    "SECTIONS",
    "TRAINER_SECTIONS",
    "Base",
    "TrainResult",
    "apply_overrides",
    "available_reporters",
    "compact_lm_head_on_cpu",
    "count_tokens",
    "freeze_layers",
    "load_policy",
    "load_recipe",
    "load_tokenizer",
    "lora_config",
    "new_run_dir",
    "parse_set",
    "peak_rss_mb",
    "recipe_path",
    "resolve_base",
    "run_training",
    "save_and_register",
    "start_run",
    "trainable_snapshot",
    "training_rows",
    "trl_config",
]
