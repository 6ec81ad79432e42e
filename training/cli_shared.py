"""What the command groups share: the configuration, the log store, retrievers, gate options.

Invariant: importing this module is cheap (click and the gate's config only); everything heavy
is imported inside the function that needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from training.gate import GateConfig

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.store import LogStore
    from training.data import Retriever

F = TypeVar("F", bound=Callable[..., Any])
# The defaults of the gate's own config (training.gate.GateConfig): the CLI repeats none of them.
GATE = GateConfig()


def config_of(ctx: click.Context) -> AgentConfig:
    from agent.cli import context_config

    config: AgentConfig = context_config(ctx)
    return config


@contextlib.contextmanager
def log_store(config: AgentConfig, wanted: bool) -> Iterator[LogStore | None]:
    """The configured log store, closed afterwards, when ``wanted`` (--from-logs); else None."""
    from agent.store import LogStore

    store = LogStore.from_config(config) if wanted else None
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def erasures_of(config: AgentConfig) -> tuple[frozenset[str], datetime | None]:
    """(erased conversations' keys, the latest erasure's time) of the configured log store; none
    when the store has never been created (a SQLite file that does not exist is not made here)."""
    from agent.store import LogStore

    if config.store_url is None and not (Path(config.home) / "supportloop.db").exists():
        return frozenset(), None
    with LogStore.from_config(config) as store:
        return store.erasure_keys(), store.latest_erasure()


def gate_options(func: F) -> F:
    """``--primary``, ``--setting`` and ``--margin``, with the gate's own defaults."""
    options = [
        click.option("--primary", default=GATE.primary, show_default=True, help="The gate's primary metric."),
        click.option(
            "--setting", type=click.Choice(["retrieved", "gold"]), default=GATE.setting, show_default=True
        ),
        click.option("--margin", type=float, default=GATE.margin, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def default_docs(config: AgentConfig) -> Path | None:
    """The shipped sample documents when the index is the sample's (the default set-up)."""
    from agent.knowledge import SAMPLE_DOCS

    return SAMPLE_DOCS if config.retrieval.ingest_sample and SAMPLE_DOCS.is_dir() else None


def eval_retriever(config: AgentConfig, docs: Path | None) -> Retriever:
    """BM25 over --docs; else the knowledge index (the shipped sample, ingested on first use)."""
    from agent.knowledge import open_knowledge
    from training.data import load_docs
    from training.retrievers import bm25_retriever, knowledge_retriever

    k = config.retrieval.k
    if docs is not None:
        return bm25_retriever(load_docs(docs), k=k)
    from agent.ranker import production_ranker

    settings = config.retrieval
    return knowledge_retriever(
        open_knowledge(config),
        k=k,
        candidates=settings.candidates,
        one_per_page=settings.one_per_page,
        keep_retrieved=settings.keep_retrieved,
        ranker=production_ranker(config),
    )
