"""Erasure: ``supportloop logs erase --conversation ID`` (and the store call behind it and the
admin API) removes a customer's conversation and everything derived from it, records it by hash,
and ``data compile`` never compiles it again, not even from an exported file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from agent.cli import cli, main
from agent.errors import InputError, NotFoundError
from agent.store import LogStore, erasure_key, schema
from agent.verified import record_correction
from tests.agent.test_knowledge_tasks import raise_task
from training.data import compile_dataset, load_rows
from training.data.erasure import is_stale, stale_datasets


@pytest.fixture
def store(store_url: str) -> Iterator[LogStore]:
    with LogStore(store_url) as opened:
        yield opened


def reviewed(store: LogStore, cid: str, question: str) -> str:
    """A conversation with a corrected (so reviewed) answer, an escalation and customer thumbs."""
    store.ensure_conversation(cid)
    store.add_turn(cid, "customer", question)
    turn = store.add_turn(cid, "agent", f"A wrong answer to: {question}")
    store.add_feedback(str(turn.id), thumbs=-1)
    record_correction(store, str(turn.id), f"The right answer to: {question}", reviewer="kim")
    store.escalate(cid, "customer asked for a person", turn_id=str(turn.id))
    return str(turn.id)


def count(store: LogStore, table: str, **where: str) -> int:
    engine = create_engine(store.url)
    try:
        t = schema.metadata.tables[table]
        stmt = select(func.count()).select_from(t)
        for column, value in where.items():
            stmt = stmt.where(t.c[column] == value)
        with engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())
    finally:
        engine.dispose()


def all_text(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False)


# ------------------------------------------------------------------------------- the store


def test_erase_removes_the_conversation_and_what_came_from_it(store: LogStore) -> None:
    reviewed(store, "erase-me", "Where is my order 4411?")
    reviewed(store, "keep-me", "How long is the warranty?")
    erasure = store.erase_conversation("erase-me", erased_by="dpo")
    assert (erasure.turns, erasure.feedback, erasure.escalations, erasure.verified_answers) == (2, 2, 1, 1)
    assert not erasure.already and "2 turns" in erasure.summary()
    with pytest.raises(NotFoundError):
        store.get_conversation("erase-me")
    for table in ("turns", "feedback", "escalations"):
        assert count(store, table, conversation_id="erase-me") == 0
        assert count(store, table, conversation_id="keep-me") > 0
    assert [a.question for a in store.verified_answers(live=None)] == ["How long is the warranty?"]
    assert store.search("4411") == []  # the full-text index followed the turns
    # The record names no one: only the id's hash, the counts, who and when.
    assert store.erasure_keys() == {erasure_key("erase-me")}
    assert "erase-me" not in json.dumps([e.to_dict() for e in store.erasures()])
    assert store.latest_erasure() == erasure.erased_at


def test_erase_removes_the_closures_of_the_knowledge_tasks_its_feedback_raised(store: LogStore) -> None:
    """A reviewer's closing note may name the customer: it goes with the conversation."""
    erased = raise_task(store, "Do you ship to 12 Elm Street, Springfield?", cid="erase-me")
    kept = raise_task(store, "Do you ship to Puerto Rico?", cid="keep-me")
    store.close_knowledge_task(erased, closed_by="kim", note="told Jane Doe at 12 Elm Street: yes")
    store.close_knowledge_task(kept, closed_by="kim", note="shipping-and-delivery.md covers it")
    assert count(store, "knowledge_task_closures") == 2
    store.erase_conversation("erase-me")
    assert count(store, "knowledge_task_closures", feedback_id=erased) == 0
    assert count(store, "knowledge_task_closures", feedback_id=kept) == 1
    (task,) = store.knowledge_tasks(include_closed=True)
    assert task.id == kept and task.closure is not None and "Jane Doe" not in str(task.closure)


def test_erasing_twice_answers_the_first_record_and_unknown_ids_are_refused(store: LogStore) -> None:
    reviewed(store, "c1", "Question?")
    first = store.erase_conversation("c1")
    again = store.erase_conversation("c1")
    assert again.already and again.id == first.id and "already erased" in again.summary()
    with pytest.raises(NotFoundError):
        store.erase_conversation("never-existed")
    with pytest.raises(InputError):
        store.erase_conversation("bad id!")
    assert len(store.erasures()) == 1


# ------------------------------------------------------------------------------- compile


def test_erased_conversations_appear_in_no_later_compiled_dataset(home: Path, tmp_path: Path) -> None:
    with LogStore(home=home) as store:
        reviewed(store, "erase-me", "Where is parcel ZX-9931?")
        reviewed(store, "keep-me", "How long is the warranty?")
        exported = tmp_path / "export.jsonl"
        exported.write_text("".join(json.dumps(r, default=str) + "\n" for r in store.export()))
        before = compile_dataset([exported], store=store, val_fraction=0.0)
        rows_file = tmp_path / "sft_rows.jsonl"
        rows_file.write_text("".join(json.dumps(r) + "\n" for r in before.sft_train))
        assert "ZX-9931" in all_text(before.sft_train)  # the control: it was compiled before

        store.erase_conversation("erase-me")
        # From the store, from the exported file and from a file of compiled rows alike.
        after = compile_dataset([exported, rows_file], store=store, val_fraction=0.0)
    text = all_text([row for rows in after.splits().values() for row in rows])
    assert "ZX-9931" not in text and "erase-me" not in text
    assert "How long is the warranty?" in text
    assert after.manifest["erased_left_out"] == 3  # the file's, the store's and the rows file's


def test_logs_erase_then_data_compile_leaves_it_out_and_flags_older_datasets(
    home: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    with LogStore(home=home) as store:
        reviewed(store, "erase-me", "Where is parcel ZX-9931?")
        reviewed(store, "keep-me", "How long is the warranty?")
    old = home / "runs" / "data-old"
    result = runner.invoke(cli, ["data", "compile", "--from-logs", "--out", str(old), "--val-fraction", "0"])
    assert result.exit_code == 0, result.output
    assert "ZX-9931" in (old / "sft_train.jsonl").read_text()
    stamp = time.time() - 60  # compiled a minute ago (a file-time manifest, as older versions wrote)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["compiled_at"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    os.utime(old / "manifest.json", (stamp, stamp))

    result = runner.invoke(cli, ["logs", "erase", "--conversation", "erase-me", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["turns"] == 2

    new = tmp_path / "new"
    result = runner.invoke(cli, ["data", "compile", "--from-logs", "--out", str(new), "--val-fraction", "0"])
    assert result.exit_code == 0, result.output
    assert "predate the latest erasure" in result.output and str(old) in result.output
    rows = load_rows(new / "sft_train.jsonl")
    assert rows and "ZX-9931" not in all_text(rows)
    with LogStore(home=home) as store:
        latest = store.latest_erasure()
    assert stale_datasets(home, latest) == [old]
    assert is_stale(old / "sft_train.jsonl", latest) and not is_stale(new, latest)

    # A trainer given the stale dataset warns before it trains (it fails later: no model here).
    result = runner.invoke(cli, ["train", "sft", "--data", str(old / "sft_train.jsonl"), "--base", "nowhere"])
    assert "compiled before a conversation was erased" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "erase"],
        ["logs", "erase", "--conversation", "bad id!"],
        ["logs", "erase", "--conversation", "x" * 300],
    ],
)
def test_logs_erase_refuses_bad_input_and_writes_nothing(home: Path, args: list[str]) -> None:
    with LogStore(home=home) as store:
        reviewed(store, "c1", "Question?")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    with LogStore(home=home) as store:
        assert store.erasures() == [] and store.get_conversation("c1").turns


def test_logs_erase_of_an_unknown_conversation_is_a_one_line_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["logs", "erase", "--conversation", "nobody"])
    assert exited.value.code != 0
    assert capsys.readouterr().err.startswith("error: no conversation 'nobody' in the log store")


def test_models_list_flags_versions_trained_before_an_erasure(home: Path, tiny_model_dir: Path) -> None:
    from agent.models import ModelRegistry

    registry = ModelRegistry(home)
    registry.register(name="before", base_model=str(tiny_model_dir), metrics={"data": "compiled dataset"})
    registry.register(name="elsewhere", base_model=str(tiny_model_dir))  # no data: not trained here
    with LogStore(home=home) as store:
        reviewed(store, "erase-me", "Where is parcel ZX-9931?")
        time.sleep(1.1)  # registry times have whole seconds
        store.erase_conversation("erase-me")
    time.sleep(1.1)
    registry.register(name="after", base_model=str(tiny_model_dir), metrics={"data": "compiled dataset"})
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["models", "list", "--json"]).output)["versions"]
    flags = {v["name"]: v["trained_before_erasure"] for v in listed if v["name"] != "base"}
    assert flags == {"before": True, "elsewhere": False, "after": False}
    assert "trained before an erasure" in runner.invoke(cli, ["models", "list"]).output
