"""Fixtures of the knowledge tests: a deterministic hashing ``Embeddings`` (no model, no network),
knowledge bases on it, and a small folder of documents of every supported kind."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.text import tokenize
from tests.conftest import require

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SUPPORTLOOP_SHARED_DATA", REPO.parent / "shared" / "data"))


class HashingEmbeddings(Embeddings):
    """Bag of stemmed words hashed into 128 dimensions: texts sharing words are similar."""

    model_id = "test-hashing-128"

    def __init__(self) -> None:
        self.calls = 0
        self.texts_embedded = 0

    def _vector(self, text: str) -> list[float]:
        vec = np.zeros(128)
        for token in tokenize(text):
            vec[int(hashlib.md5(token.encode()).hexdigest(), 16) % 128] += 1.0
        norm = np.linalg.norm(vec)
        return (vec / norm if norm else vec).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self.texts_embedded += len(texts)
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.fixture
def fake_embeddings() -> HashingEmbeddings:
    return HashingEmbeddings()


@pytest.fixture
def make_kb(tmp_path: Path, fake_embeddings: HashingEmbeddings) -> Iterator:
    """Build knowledge bases (persistent under tmp_path unless told otherwise) that close after the test."""
    made: list[KnowledgeBase] = []

    def make(persist: bool = True, **settings: object) -> KnowledgeBase:
        cfg = KnowledgeConfig(persist_dir=tmp_path / "index" if persist else None, **settings)  # type: ignore[arg-type]
        kb = KnowledgeBase(cfg, embeddings=fake_embeddings)
        made.append(kb)
        return kb

    yield make
    for kb in made:
        kb.close()


@pytest.fixture
def kb(make_kb) -> KnowledgeBase:
    return make_kb(persist=False)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    """One document of each kind, a nested folder, and two unreadable files."""
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "warranty.md").write_text(
        "# Warranty\n\nEvery kettle has a two-year warranty.\n\n## Claims\n\nTo claim, email support "
        "with your order number.\n\n## Exclusions\n\nDamage from descaling with vinegar is not covered.\n",
        encoding="utf-8",
    )
    (root / "guides" / "descaling.txt").write_text(
        "Descale the kettle monthly.\n\nUse citric acid, never vinegar.", encoding="utf-8"
    )
    (root / "guides" / "leds.html").write_text(
        "<html><head><title>LED guide</title><style>p {color: red}</style></head><body>"
        "<h1>LED indicators</h1><p>A blinking red LED means the kettle is boiling dry.</p>"
        "<h2>Blue LED</h2><ul><li>Steady blue: keeping warm.</li><li>Off: idle.</li></ul>"
        "<script>alert('x')</script></body></html>",
        encoding="utf-8",
    )
    (root / "manual.pdf").write_bytes(minimal_pdf("The kettle holds 1.7 litres of water."))
    write_jsonl(
        root / "faq.jsonl",
        [
            {
                "doc_id": "faq-1",
                "text": "Shipping takes three days.",
                "topic": "shipping",
                "tags": ["a", "b"],
            },
            {"id": 7, "text": "Returns are free within 30 days.", "topic": "returns", "rating": 4.5},
        ],
    )
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    (root / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me is served hot.".encode("latin-1"))
    (root / "notes.csv").write_text("ignored,by,folder,scan\n", encoding="utf-8")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.md").write_text("# Hidden\n\nnever ingested\n", encoding="utf-8")
    return root


DSTC11 = SHARED_DATA / "dstc11"
ENTITIES = 12


@pytest.fixture(scope="module")
def dstc11_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require((DSTC11 / "knowledge_docs.jsonl").exists(), f"shared data not found at {DSTC11}")
    docs = [json.loads(line) for line in (DSTC11 / "knowledge_docs.jsonl").open(encoding="utf-8")]
    names = sorted({d["entity_name"] for d in docs})[::12][:ENTITIES]
    kept = [d for d in docs if d["entity_name"] in names]
    ids = {d["doc_id"] for d in kept}
    conversations = [
        c
        for c in map(json.loads, (DSTC11 / "conversations.jsonl").open(encoding="utf-8"))
        if set(c["gold_doc_ids"]) <= ids
    ]
    out = tmp_path_factory.mktemp("dstc11-slice")
    (out / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept), encoding="utf-8")
    (out / "queries.jsonl").write_text("".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8")
    return out / "docs.jsonl", out / "queries.jsonl"
