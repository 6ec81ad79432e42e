"""supportloop's knowledge layer: product documents -> a Chroma index -> hybrid, conversation-aware search.

The bottom layer: it imports nothing else of supportloop and takes paths and settings as arguments.
``import knowledge`` stays cheap: the value types load eagerly, everything that pulls in torch,
chromadb or LangChain loads on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge.errors import ConfigError, KnowledgeError, LoaderError
from knowledge.lazy import lazy_exports
from knowledge.types import Chunk, Document, Failure, Hit, IngestReport, KnowledgeConfig

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase
    from knowledge.embeddings import SentenceEmbeddings, load_embeddings
    from knowledge.retrieval import KnowledgeRetriever

__all__ = [
    "Chunk",
    "ConfigError",
    "Document",
    "Failure",
    "Hit",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeConfig",
    "KnowledgeError",
    "KnowledgeRetriever",
    "LoaderError",
    "SentenceEmbeddings",
    "load_embeddings",
]

_LAZY = {
    "KnowledgeBase": "knowledge.base",
    "KnowledgeRetriever": "knowledge.retrieval",
    "SentenceEmbeddings": "knowledge.embeddings",
    "load_embeddings": "knowledge.embeddings",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
