"""The knowledge layer logs ingest counts (INFO) and search decisions (DEBUG), never query text."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeConfig
from tests.knowledge.conftest import HashingEmbeddings

SECRET_WORDS = "zebra-umbrella"


def test_knowledge_logs_ingest_counts_and_search_decisions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "filters.md").write_text("# Filters\n\nReplace the HEPA filter every 6 months.\n")
    kb = KnowledgeBase(KnowledgeConfig(persist_dir=None), embeddings=HashingEmbeddings())
    with caplog.at_level(logging.DEBUG, logger="knowledge"):
        kb.ingest([tmp_path / "docs"])
        kb.search(f"filter {SECRET_WORDS}", k=3)
    kb.close()
    info = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "ingest: 1 added, 0 updated, 0 unchanged, 0 removed, 0 failed" in info
    assert any(
        r.levelno == logging.DEBUG and "search: k=3 history=0 turns -> 1 hits" in r.getMessage()
        for r in caplog.records
    )
    assert SECRET_WORDS not in "\n".join(r.getMessage() for r in caplog.records)
