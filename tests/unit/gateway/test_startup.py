"""Everything the gateway needs is checked when it is built: keys, models, prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain import ConfigError, Message, UnknownModel
from corral.gateway import Gateway, parse_config
from corral.gateway.prices import litellm_price
from corral.gateway.wire import WirePrompt


def _config(model: str, **extra: object) -> object:
    return parse_config({"deployments": [{"name": "d", "model": model, **extra}]})


def test_a_missing_key_fails_at_startup_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        Gateway(_config("openai/gpt-4o-mini"), env={})  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "OPENAI_API_KEY" in message and "'d'" in message


def test_a_missing_named_key_variable_fails_at_startup() -> None:
    config = _config(
        "openai-compatible:http://127.0.0.1:9/v1#m",
        api_key_env="LOCAL_KEY",
        price={"input_per_mtok": 0, "output_per_mtok": 0},
    )
    with pytest.raises(ConfigError, match="needs LOCAL_KEY"):
        Gateway(config, env={})  # type: ignore[arg-type]


def test_an_unknown_model_fails_at_startup() -> None:
    with pytest.raises(UnknownModel) as info:
        Gateway(_config("nosuchprovider/model"), env={})  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_an_unpriced_model_fails_at_startup_and_config_can_price_it() -> None:
    spec = "openai-compatible:http://127.0.0.1:9/v1#my-local-model"
    with pytest.raises(ConfigError, match="no price known"):
        Gateway(_config(spec), env={})  # type: ignore[arg-type]
    priced = _config(spec, price={"input_per_mtok": 1.5, "output_per_mtok": 2})
    gateway = Gateway(priced, env={})  # type: ignore[arg-type]
    assert gateway.slots["d"].price.cost(1_000_000, 1_000_000) == pytest.approx(3.5)


def test_prices_come_from_litellms_offline_map() -> None:
    price = litellm_price("openai/gpt-4o-mini")
    assert price is not None and price.input_per_mtok == pytest.approx(0.15)
    gateway = Gateway(_config("openai/gpt-4o-mini"), env={"OPENAI_API_KEY": "sk-x"})  # type: ignore[arg-type]
    assert gateway.slots["d"].price == price
    assert "sk-x" not in repr(gateway.slots["d"].upstream)


def test_the_prompt_estimate_is_an_upper_bound_of_the_providers_count() -> None:
    messages = [Message(role="user", content="word " * 500)]
    assert WirePrompt(messages, []).estimated_tokens >= len("word " * 500) // 4


def test_unknown_deployment_names_say_what_exists(tmp_path: Path) -> None:
    spec = f"scripted:{tmp_path / 's.yaml'}"
    (tmp_path / "s.yaml").write_text("- thought: hi\n")
    gateway = Gateway(_config(spec), env={})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="the gateway serves: d"):
        gateway.model("nope")
    assert gateway.model(spec).name == "gateway:d"  # a spec a deployment serves resolves
