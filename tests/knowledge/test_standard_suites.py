"""LangChain's own standard suites (``langchain-tests``), unmodified, against the real classes:
``KnowledgeRetriever`` over a knowledge base of the shipped sample documents, and the default
``SentenceEmbeddings`` (the packaged all-MiniLM-L6-v2). Counts: ``docs/ecosystem.md``.

Nothing is switched off here: both classes claim every feature these suites test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.embeddings import SentenceEmbeddings
from knowledge.retrieval import retriever_class

SAMPLE_DOCS = Path(__file__).resolve().parents[2] / "agent" / "sample" / "docs"
_KB: dict[str, KnowledgeBase] = {}


@pytest.fixture(scope="module", autouse=True)
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """One knowledge base of the sample documents (real embeddings) for the whole module."""
    kb = KnowledgeBase(KnowledgeConfig(persist_dir=tmp_path_factory.mktemp("index")))
    kb.ingest([SAMPLE_DOCS])
    _KB["sample"] = kb
    yield kb
    _KB.clear()
    kb.close()


@pytest.mark.slow
class TestKnowledgeRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return retriever_class()

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"knowledge": _KB["sample"]}

    @property
    def retriever_query_example(self) -> str:
        return "How often should I replace the filter?"


class TestSentenceEmbeddingsUnitStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[SentenceEmbeddings]:
        return SentenceEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}


@pytest.mark.slow
class TestSentenceEmbeddingsIntegrationStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SentenceEmbeddings]:
        return SentenceEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}
