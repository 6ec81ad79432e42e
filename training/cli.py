"""The training commands, registered lazily by ``agent.cli``: ``data``, ``train``, ``models`` and
``eval model``. Each command group lives in its own module (``cli_data``, ``cli_train``,
``cli_models``, ``cli_eval``); what they share (the configuration, the log store, retrievers,
the gate's options) in ``cli_shared``.

Invariant: importing these modules is cheap (click and the gate's config only). Each command
imports what it needs, torch and transformers included, inside its function body, so
``supportloop --help`` and ``supportloop data compile`` never pay for the trainer's imports.
"""

from training import cli_data, cli_eval, cli_models, cli_train

# Bound by assignment, not imported by name: agent.cli looks for ``NAME = `` (or ``def NAME(``)
# in this file to tell whether a command ships, without importing it.
data = cli_data.data
train = cli_train.train
models = cli_models.models
eval_model = cli_eval.eval_model

__all__ = ["data", "eval_model", "models", "train"]
