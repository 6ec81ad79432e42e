"""A model-free demo mode for the UI: keyword search over the shipped sample documents and a
generator that answers with the best passage's most relevant sentences, word by word.

Used when ``SUPPORTLOOP_UI_FAKE_MODEL=1`` (tests, screenshots, the browser test, demos on a
machine without the default model). Deterministic: the same question always gets the same answer.
The real app uses ``Agent.from_config()`` instead.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.generator import ScriptedGenerator, Usage
from knowledge import Hit

SAMPLE_DOCS = Path(__file__).resolve().parents[1] / "agent" / "sample" / "docs"
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
NO_ANSWER = "I'm not sure about that one. Could you tell me a little more?"


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """Lower-cased, lightly stemmed content words."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2]


@dataclass(frozen=True)
class _Section:
    doc_id: str
    source: str
    title: str
    text: str
    chunk_id: str
    counts: Counter[str]


class KeywordKnowledge:
    """Markdown files split at ``##`` headings, ranked by idf-weighted shared terms.

    ``relevance`` is the share of the question's terms a section contains, so unrelated
    questions fall under the agent's escalation threshold just as with the real index."""

    def __init__(self, folder: Path = SAMPLE_DOCS):
        self.sections = [s for path in sorted(folder.glob("*.md")) for s in _split(path)]
        df = Counter(t for s in self.sections for t in s.counts)
        n = len(self.sections)
        self.idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self._last = threading.local()

    def count(self) -> int:
        return len(self.sections)

    def search(self, query: str, *, k: int = 4, history: Sequence[tuple[str, str]] = ()) -> list[Hit]:
        wanted = set(terms(query))
        hits = []
        for s in self.sections:
            shared = wanted & s.counts.keys()
            if not shared:
                continue
            score = sum(self.idf[t] * (1 + math.log(s.counts[t])) for t in shared)
            relevance = len(shared) / len(wanted)
            hits.append(
                Hit(s.doc_id, s.source, s.text, round(score, 3), s.chunk_id, relevance, title=s.title)
            )
        hits.sort(key=lambda h: (-h.score, -h.relevance))
        self._last.hits = hits[:k]
        self._last.query = query
        return hits[:k]

    def last_search(self) -> tuple[str, list[Hit]]:
        """This thread's latest query and hits (the demo generator answers from them)."""
        return getattr(self._last, "query", ""), getattr(self._last, "hits", [])


def _split(path: Path) -> Iterator[_Section]:
    text = path.read_text(encoding="utf-8")
    doc_title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), path.stem)
    parts = re.split(r"^## +(.+)$", text, flags=re.MULTILINE)
    chunks = [(doc_title, parts[0]), *zip(parts[1::2], parts[2::2], strict=True)]
    for number, (heading, body) in enumerate(chunks):
        body = "\n".join(line for line in body.splitlines() if not line.startswith("# ")).strip()
        if not body:
            continue
        title = doc_title if heading == doc_title else f"{doc_title}: {heading.strip()}"
        yield _Section(
            doc_id=path.stem,
            source=f"{path.stem}.md",
            title=title,
            text=body,
            chunk_id=f"{path.stem}#{number}",
            counts=Counter(terms(f"{heading} {body}")),
        )


def _sentences(markdown: str) -> list[str]:
    prose = "\n".join(line for line in markdown.splitlines() if not line.lstrip().startswith("|"))
    plain = re.sub(r"[*_`#]|^\s*>", " ", prose, flags=re.MULTILINE)
    plain = re.sub(r"^\s*(?:\d+\.|-)\s+", "", plain, flags=re.MULTILINE)
    plain = " ".join(plain.split())
    return [s for s in re.split(r"(?<=[.!?])\s+", plain) if len(s.split()) >= 4]


def demo_answer(question: str, hits: Sequence[Hit]) -> str:
    """The two sentences of the best prose passage sharing most words with the question, cited."""
    wanted = set(terms(question))
    for number, hit in enumerate(hits, start=1):
        sentences = _sentences(hit.text)
        if not sentences:
            continue
        ranked = sorted(range(len(sentences)), key=lambda i: (-len(wanted & set(terms(sentences[i]))), i))
        chosen = [sentences[i] for i in sorted(ranked[:2])]
        return " ".join(chosen) + f" [{number}]"
    return NO_ANSWER


class DemoGenerator(ScriptedGenerator):
    """Streams ``demo_answer`` for the knowledge base's latest search, ``delay_s`` per word.

    Replies queued with ``enqueue`` still come first (tests script exact answers). Nothing else is
    shared between calls, so concurrent sessions each get their own answer."""

    def __init__(self, knowledge: KeywordKnowledge, delay_s: float = 0.0):
        super().__init__()
        self.version = "demo"
        self.knowledge = knowledge
        self.delay_s = delay_s

    def stream(self, messages: Sequence[dict[str, str]], options: Any, cancel: Any = None) -> Iterator[str]:
        if self.replies:
            yield from super().stream(messages, options, cancel)
            return
        question, hits = self.knowledge.last_search()
        usage = Usage(prompt_tokens=sum(self.count_tokens(m["content"]) for m in messages))
        self._set_usage(usage)
        for word in demo_answer(question, hits).split(" "):
            if cancel is not None and cancel.is_set():
                usage.cancelled = True
                return
            if usage.completion_tokens >= options.max_new_tokens:
                return  # the generation limit, as a real model would hit it
            if self.delay_s:
                time.sleep(self.delay_s)
            usage.completion_tokens += 1
            yield word if usage.completion_tokens == 1 else " " + word
