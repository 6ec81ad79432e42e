from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config
from agent.errors import ConfigError


def test_defaults_use_the_data_home(home: Path) -> None:
    config = load_config()
    assert config.home == home
    assert config.database_url == f"sqlite:///{home / 'supportloop.db'}"
    assert config.index_dir == home / "index"
    assert config.model == "production"
    assert config.source is None


def test_yaml_file_then_environment_override(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("supportloop.yaml").write_text(
        "persona:\n  company: Acme\nretrieval:\n  k: 7\n  entity_fields: [entity_name]\n", encoding="utf-8"
    )
    config = load_config()
    assert config.persona.company == "Acme"
    assert config.retrieval.k == 7
    assert config.retrieval.entity_fields == ["entity_name"]
    monkeypatch.setenv("SUPPORTLOOP_RETRIEVAL__K", "3")
    monkeypatch.setenv("SUPPORTLOOP_STORE_URL", "postgresql+psycopg://u@h/db")
    config = load_config()
    assert config.retrieval.k == 3
    assert config.database_url == "postgresql+psycopg://u@h/db"
    assert config.persona.company == "Acme"


def test_unknown_key_is_an_error_naming_the_file(home: Path) -> None:
    Path("supportloop.yaml").write_text("retrieval:\n  kk: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"supportloop.yaml.*kk"):
        load_config()


def test_invalid_yaml_names_file_and_line(home: Path) -> None:
    Path("supportloop.yaml").write_text("persona:\n  company: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"supportloop.yaml:\d+: invalid YAML"):
        load_config()


def test_config_file_from_environment_must_exist(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTLOOP_CONFIG", str(home / "missing.yaml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_config()


def test_to_dict_is_plain(home: Path) -> None:
    data = AgentConfig(home=home).to_dict()
    assert data["home"] == str(home)
    assert data["persona"]["agent_name"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SUPPORTLOOP_RETRIEVAL__K", "abc", r"retrieval\.k = 'abc' is not valid.*expected int"),
        ("SUPPORTLOOP_GENERATION__TEMPERATURE", "hot", r"generation\.temperature = 'hot'.*expected float"),
        (
            "SUPPORTLOOP_GUARDRAILS__REFUSE_OFF_TOPIC",
            "maybe",
            r"guardrails\.refuse_off_topic = 'maybe'.*bool",
        ),
        ("SUPPORTLOOP_RETRIEVAL__ENTITY_FIELDS", "sku", r"retrieval\.entity_fields = 'sku'.*list\[str\]"),
    ],
)
def test_a_badly_typed_value_is_refused_naming_key_value_and_type(
    home: Path, key: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(env={"SUPPORTLOOP_HOME": str(home), key: value})
    assert key in str(caught.value)


def test_a_badly_typed_value_in_the_file_names_the_file(home: Path) -> None:
    Path("supportloop.yaml").write_text("generation:\n  max_new_tokens: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"supportloop\.yaml: generation\.max_new_tokens = 'lots'"):
        load_config()


def test_well_typed_values_are_coerced_leniently(home: Path) -> None:
    config = load_config(
        env={
            "SUPPORTLOOP_RETRIEVAL__K": "6",
            "SUPPORTLOOP_GENERATION__TEMPERATURE": "1",
            "SUPPORTLOOP_MODEL": "2024",
        }
    )
    assert (config.retrieval.k, config.generation.temperature, config.model) == (6, 1.0, "2024")
    assert isinstance(config.generation.temperature, float)


def test_ask_with_a_bad_value_fails_in_one_line_before_loading_anything(home: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUPPORTLOOP_HOME": str(home), "SUPPORTLOOP_RETRIEVAL__K": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "ask", "How often should I change the filter?"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(home),
        timeout=300,
    )
    assert done.returncode == ConfigError.exit_code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "retrieval.k = 'abc'" in lines[0] and "Traceback" not in done.stderr
    assert not (home / "supportloop.db").exists()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SUPPORTLOOP_RETRIEVAL__K", "0", r"retrieval\.k must be a whole number of 1 or more, not 0"),
        ("SUPPORTLOOP_RETRIEVAL__CANDIDATES", "-1", r"retrieval\.candidates must be .* 0 or more, not -1"),
    ],
)
def test_retrieval_counts_out_of_range_are_refused(home: Path, key: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(env={"SUPPORTLOOP_HOME": str(home), key: value})
