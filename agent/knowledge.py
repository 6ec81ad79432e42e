"""The agent's view of the knowledge base: built from the agent config, sample ingested once.

``knowledge`` stays ignorant of supportloop's config; this module translates. With the
default config and an empty index, the first chat/ask/ui ingests the shipped sample documents
(``agent/sample/docs``), so a newcomer gets a working agent with no set-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from knowledge import KnowledgeBase, KnowledgeConfig

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_DOCS = SAMPLE_DIR / "docs"


def knowledge_config(config: AgentConfig) -> KnowledgeConfig:
    from knowledge import KnowledgeConfig

    settings = config.retrieval
    return KnowledgeConfig(
        persist_dir=config.index_dir,
        collection=settings.collection,
        embedding_model=settings.embedding_model,
        model_cache=config.models_dir,
        chroma_url=settings.chroma_url,
        entity_fields=tuple(settings.entity_fields),
        variants=tuple(settings.variants),
        rerank=settings.rerank,
    )


def open_knowledge(config: AgentConfig, *, progress: bool = False, embeddings: Any = None) -> KnowledgeBase:
    """The configured knowledge base; ingests the shipped sample when it is empty and allowed."""
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(knowledge_config(config), embeddings=embeddings)
    if config.retrieval.ingest_sample and kb.count() == 0 and SAMPLE_DOCS.is_dir():
        kb.ingest([SAMPLE_DOCS], progress=progress)
    return kb


def ranked_search(
    kb: KnowledgeBase,
    question: str,
    history: list[tuple[str, str]],
    *,
    k: int,
    candidates: int,
    embed: Any = None,
    one_per_page: bool = False,
    whole_lists: bool = True,
    keep_retrieved: int = 0,
) -> list[Any]:
    """The ``k`` chunks the agent shows the model for ``question``: the best ``candidates`` chunks,
    whatever page they are on, re-ranked by the sentence in each that answers best
    (``agent.grounding.rank_passages``): the answer is often in a page's later chunk. With
    ``one_per_page`` each page is shown once, by its best chunk; without, two chunks of one page
    may both be shown; the first page is shown by its chunk that gives what the question asks for
    when its best one does not (``_one_per_page``). A section named by a code the question names
    ("E4: Overheating Protection" for "What does E4 mean?") comes first (``grounding.titled_by``);
    with ``whole_lists``, a chunk with the list the question asks for goes first (``rank_passages``).
    ``keep_retrieved``: the retriever's own best chunks, up to that many, follow the ``k`` where
    the re-rank left them out (so up to ``k + keep_retrieved`` chunks are shown).
    With ``candidates <= k`` or no embedding model, the retriever's own top ``k``, one per page.
    ``embed`` defaults to the index's model (pass a cached one)."""
    from agent import grounding

    embed = embed if embed is not None else getattr(kb, "embed", None)
    if embed is None or candidates <= k:
        return list(kb.search(question, k=k, history=history))
    hits = kb.search(question, k=candidates, history=history, distinct=False)
    asked = [text for role, text in history if role == "customer"]
    texts, scores = [h.text for h in hits], [h.score for h in hits]
    order = grounding.rank_passages(question, texts, scores, embed, asked, lists=whole_lists)
    titled = grounding.titled_by(question, [h.text for h in hits])  # "E4: ..." for "What does E4 mean?"
    order = [*titled, *(i for i in order if i not in titled)]
    if one_per_page:  # each page by the chunk that answers best, as the model was trained on pages
        order = _one_per_page(question, [h.doc_id for h in hits], [h.text for h in hits], order)
    shown = order[:k]
    shown += [i for i in range(min(keep_retrieved, len(hits))) if i not in shown]
    return [hits[i] for i in shown]


def _one_per_page(question: str, pages: list[str], texts: list[str], order: list[int]) -> list[int]:
    """``order`` (indices of chunks, best first) with each page once, in the place of its best
    chunk, and by that chunk, except for the first page: when the question asks for a measurable
    thing (``agent.asked``: a weight, a price, how often; a bare count is too common to tell) that
    the page's best chunk does not give and a lower chunk of it does, that chunk is shown. "Is it
    easy to carry? How much does it weigh?" shows the specification table's weight rows, not its
    room-size rows that share more of the question's words. Only the first page: a lower page is
    there for context, and its chunk that merely has a figure is seldom the better one."""
    from agent import asked

    first: dict[str, int] = {}
    for i in order:
        first.setdefault(pages[i], i)
    asks = [kinds for kinds in asked.asked_kinds(question) if kinds != ("count",)]
    if asks and first:
        page, best = next(iter(first.items()))

        def gives(text: str) -> bool:
            # Read without the chunk's title ("After 30 Days" is not an answer) and without a length
            # of time given to something else ("the 2-year warranty", asked for the return window).
            first_line, _, rest = text.partition("\n")
            return not asked.missing(
                asks, asked.without_others(rest if " > " in first_line else text, question)
            )

        if not gives(texts[best]):
            giving = [j for j in order if pages[j] == page and gives(texts[j])]
            first[page] = giving[0] if giving else best
    return list(first.values())
