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
