"""The ranker: which model re-ranks the candidate chunks, how a ranker directory is checked, and the
shipped one (its data kept apart from every question set it is measured on)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agent import ranker
from agent.config import load_config
from agent.errors import ConfigError
from agent.models import SHIPPED_DIR, shipped_manifest
from agent.ranker import SHIPPED_RANKER, check_ranker, ranker_for

SAMPLE = SHIPPED_DIR.parent / "sample"


def _ranker_dir(path: Path, **manifest: object) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text("{}")
    (path / "adapter_model.safetensors").write_bytes(b"")
    (path / "ranker.json").write_text(json.dumps({"base": ranker.RANKER_BASE, **manifest}))
    return path


def test_a_ranker_directory_is_checked_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        check_ranker(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"lacks adapter_model\.safetensors, ranker\.json"):
        check_ranker(tmp_path / "half")
    broken = _ranker_dir(tmp_path / "broken")
    (broken / "ranker.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        check_ranker(broken)
    other = _ranker_dir(tmp_path / "other", base="BAAI/bge-small-en")
    with pytest.raises(ConfigError, match="trained on 'BAAI/bge-small-en'"):
        check_ranker(other)
    good = _ranker_dir(tmp_path / "good")
    assert check_ranker(good) == good


def test_auto_is_the_ranker_that_comes_with_the_production_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTLOOP_SHIPPED_MODEL", "1")
    shipped = shipped_manifest()
    assert shipped is not None and SHIPPED_RANKER.is_dir()
    assert ranker_for("auto", shipped["name"], None) == SHIPPED_RANKER
    assert ranker_for("auto", "base", None) is None  # the bare base model: the index's model
    adapter = tmp_path / "my-round"
    adapter.mkdir()
    assert ranker_for("auto", "my-round", str(adapter)) is None
    own = _ranker_dir(adapter / "ranker")
    assert ranker_for("auto", "my-round", str(adapter)) == own
    assert ranker_for("none", shipped["name"], None) is None
    assert ranker_for(str(own), "base", None) == own
    with pytest.raises(ConfigError, match="is not a directory"):
        ranker_for(str(tmp_path / "missing"), shipped["name"], None)


def test_the_setting_is_validated_and_can_come_from_the_environment(home: Path) -> None:
    assert load_config().retrieval.ranker == "auto"
    assert (
        load_config(
            env={"SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_RETRIEVAL__RANKER": "none"}
        ).retrieval.ranker
        == "none"
    )
    with pytest.raises(ConfigError, match=r"retrieval\.ranker must be"):
        load_config(env={"SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_RETRIEVAL__RANKER": "''"})


def test_an_agent_named_a_missing_ranker_refuses_to_start_and_writes_nothing(make_agent, home: Path) -> None:
    with pytest.raises(ConfigError, match=r"retrieval\.ranker"):
        make_agent(retrieval__ranker=str(home / "no-such-ranker"))
    from agent.store import LogStore

    with LogStore(home=home) as store:
        assert store.list_conversations() == []


def test_the_agent_re_ranks_with_the_named_ranker_and_with_the_index_model_under_none(
    make_agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.generator import ScriptedGenerator

    calls: list[list[str]] = []

    def fake_ranker(path: str):
        def encode(texts):
            calls.append(list(texts))
            return np.ones((len(texts), 4), dtype=np.float32) / 2.0

        return encode

    monkeypatch.setattr(ranker, "load_ranker", fake_ranker)
    own = _ranker_dir(tmp_path / "own")
    agent = make_agent(ScriptedGenerator(["The warranty lasts 2 years [1]."]), retrieval__ranker=str(own))
    rerank = agent._ranker_embed()
    assert rerank is not agent._sentence_embed() and agent._ranker_embed() is rerank  # resolved once
    rerank(["The warranty lasts 2 years."])
    assert calls == [["The warranty lasts 2 years."]]  # the ranker's encoder, not the index's
    none = make_agent(ScriptedGenerator(["x"]), retrieval__ranker="none")
    assert none._ranker_embed() is none._sentence_embed()


def test_the_shipped_ranker_was_trained_on_the_sample_history_and_never_on_a_question_set() -> None:
    manifest = json.loads((SHIPPED_RANKER / "ranker.json").read_text())
    assert manifest["base"] == ranker.RANKER_BASE
    conversations = SAMPLE / "conversations.jsonl"
    assert manifest["data"]["conversations"] == ["agent/sample/conversations.jsonl"]
    assert manifest["data"]["sha256"] == hashlib.sha256(conversations.read_bytes()).hexdigest()
    trained_on = {
        turn["text"].strip().lower()
        for line in conversations.read_text().splitlines()
        for turn in json.loads(line)["turns"]
        if turn["role"] == "customer"
    }
    for questions in sorted(SAMPLE.glob("*.jsonl")):
        if questions.name in ("conversations.jsonl", "verified_pairs.jsonl"):
            continue
        for line in questions.read_text().splitlines():
            item = json.loads(line)
            asked = [item.get("question", ""), *(t["text"] for t in item.get("history", []))]
            assert not {a.strip().lower() for a in asked} & trained_on, (questions.name, item.get("id"))
    metrics = manifest["metrics"]
    assert metrics["validation_pairs"] > 0 and 0 <= metrics["shown_recall_ranker"] <= 1


def test_the_shipped_ranker_loads_and_changes_the_embedding(tmp_path: Path) -> None:
    from knowledge.embeddings import load_embeddings

    ranker.load_ranker.cache_clear()
    encode = ranker.load_ranker(str(SHIPPED_RANKER))
    texts = ["how long until my refund shows up", "Refunds reach your card within 5 to 10 business days."]
    tuned = encode(texts)
    assert tuned.shape == (2, 384) and np.allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-4)
    index_model = np.asarray(load_embeddings(None).encode(texts))
    assert not np.allclose(tuned, index_model, atol=1e-3)  # the adapter is applied
    # A copy anywhere loads the same: the adapter names the packaged model, not a path.
    copy = shutil.copytree(SHIPPED_RANKER, tmp_path / "copy")
    assert np.allclose(ranker.load_ranker(str(copy))(texts), tuned, atol=1e-5)
