"""The ``supportloop`` command: the one composition root that reaches every package, lazily.

Each package owns its commands in its own module; this entry module only knows their names and
one-line help, and imports a command's module when that command runs. So ``supportloop --help``
answers without importing torch, transformers or chromadb.

Library errors (``agent.errors.SupportloopError``) become one line on stderr and an exit code.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

# name -> (module:attribute, one-line help). Groups spanning packages (eval) are nested dicts.
COMMANDS: dict[str, tuple[str, str]] = {
    "chat": ("agent.commands:chat", "Chat with the support agent in the terminal."),
    "ask": ("agent.commands:ask", "Ask one question (optionally after a conversation history)."),
    "logs": ("agent.commands:logs", "List, show, export, correct and erase logged conversations."),
    "config": ("agent.commands:config", "Show the effective configuration."),
    "model": ("agent.commands:model", "Prepare or inspect the base model (default: SmolLM2-135M)."),
    "ingest": ("knowledge.cli:ingest", "Ingest product documents into the knowledge index."),
    "search": ("knowledge.cli:search", "Search the knowledge index."),
    "kb": ("agent.commands:kb", "Knowledge index statistics, maintenance and knowledge tasks."),
    "data": ("training.cli:data", "Compile conversations and reviewed logs into training data."),
    "train": ("training.cli:train", "Fine-tune with TRL: sft, dpo, kto, reward, round."),
    "models": ("training.cli:models", "List, promote and roll back model versions."),
    "users": ("ui.cli:users", "Manage support-console users."),
    "ui": ("ui.cli:ui", "Start the Streamlit customer chat and review console."),
    "serve": ("deploy.cli:serve", "Start the OpenAI-compatible HTTP API."),
    "keys": ("deploy.cli:keys", "Manage API keys for the HTTP API."),
}
EVAL_COMMANDS: dict[str, tuple[str, str]] = {
    "retrieval": ("knowledge.cli:eval_retrieval", "Retrieval quality: hit@1, hit@5, MRR."),
    "agent": ("agent.commands:eval_agent", "Answer / decline / clarify behaviour on labelled conversations."),
    "model": ("training.cli:eval_model", "Held-out generation metrics of a model version."),
}


def _available(target: str) -> bool:
    """Whether the command behind ``module:attr`` ships in this install, without importing it
    (the module file exists and defines ``attr`` at top level)."""
    import importlib.util
    import re

    module, attr = target.split(":", 1)
    package, _, rest = module.partition(".")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return False
    defines = re.compile(rf"^(?:def {attr}\(|{attr} = )", re.M)
    for location in spec.submodule_search_locations:
        path = Path(location) / (rest.replace(".", "/") + ".py")
        if path.is_file() and defines.search(path.read_text(encoding="utf-8")):
            return True
    return False


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = {name: entry for name, entry in (lazy or {}).items() if _available(entry[0])}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target = self.lazy[cmd_name][0]
            module_name, attr = target.split(":", 1)
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{target} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table above, so listing imports nothing.
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        for name in super().list_commands(ctx):
            cmd = super().get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


class CliState:
    """Shared by subcommands through ``ctx.obj``: the configuration, loaded once on demand."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._config: Any = None

    def config(self) -> Any:
        if self._config is None:
            from agent.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def knowledge_config(self) -> Any:
        from agent.knowledge import knowledge_config

        return knowledge_config(self.config())

    def after_ingest(self, knowledge: Any) -> None:
        """Close the knowledge tasks the documents just ingested cover (``supportloop ingest``
        calls this). A failure here is reported, not fatal: the documents are in."""
        from agent.errors import SupportloopError
        from agent.knowledge_tasks import check_tasks
        from agent.store import LogStore

        try:
            with LogStore.from_config(self.config()) as store:
                closed = check_tasks(store, knowledge)
        except SupportloopError as exc:
            click.echo(f"warning: knowledge tasks not checked: {exc}", err=True)
            return
        for task in closed:
            click.echo(
                f"knowledge task closed by {task.closure.doc_id if task.closure else '?'}: {task.question}",
                err=True,
            )


def context_config(ctx: click.Context) -> Any:
    """The effective configuration for a command: the CLI's (loaded once) when run under
    ``supportloop``, else from disk (a command invoked on its own, e.g. by CliRunner)."""
    obj = ctx.find_root().obj
    if obj is not None and hasattr(obj, "config"):
        return obj.config()
    from agent.config import load_config

    return load_config()


def context_store(ctx: click.Context) -> Any:
    """The log store of ``context_config(ctx)``."""
    from agent.store import LogStore

    return LogStore.from_config(context_config(ctx))


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SUPPORTLOOP_CONFIG",
    help="YAML config file (default: ./supportloop.yaml, then <home>/supportloop.yaml).",
)
@click.version_option(package_name="supportloop")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """supportloop: a support agent you fine-tune on your own support history."""
    ctx.obj = CliState(config_path)
    ctx.ensure_object(CliState)


@cli.group(cls=LazyGroup, lazy=EVAL_COMMANDS, name="eval")
def eval_group() -> None:
    """Evaluate retrieval, the agent, or a model version."""


def main(argv: list[str] | None = None) -> None:
    from agent.errors import SupportloopError

    try:
        cli.main(args=argv, prog_name="supportloop", standalone_mode=False)
    except SupportloopError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
