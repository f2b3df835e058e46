"""One configuration object: ClientConfig, config files, keyword overrides, and their errors."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import multimodel as mm
from multimodel.cache import ResponseCache
from multimodel.config._models import OPTIONS
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-test-config-0123456789"
DEP = {"model": "m", "provider": "openai", "api_key": KEY, "base_url": "https://a.test/v1"}
CLIENTS = [mm.Client, mm.AsyncClient]
TOML_READER = "tomllib" if sys.version_info >= (3, 11) else "tomli"
needs_toml = pytest.mark.skipif(
    importlib.util.find_spec(TOML_READER) is None, reason="Python 3.10 without tomli"
)

TOML = f"""
strategy = "round_robin"
max_retries = 3
timeout = 30

[[deployments]]
model = "m"
provider = "openai"
api_key = "{KEY}"
base_url = "https://a.test/v1"
"""


def toml_file(tmp_path: Path, text: str = TOML, name: str = "mm.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def json_file(tmp_path: Path, data: Any, name: str = "mm.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# -- what is in effect -----------------------------------------------------------------------


@needs_toml
def test_keywords_override_the_file_and_config_shows_what_is_in_effect(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    path = toml_file(tmp_path)
    with mm.Client(config=str(path), strategy="adaptive", max_retries=0, transport=fake) as client:
        assert client.config.strategy == "adaptive"
        assert client.config.max_retries == 0
        assert client.config.timeout == 30  # from the file
        with pytest.raises(mm.ProviderError):
            client.query("hi")
        assert len(fake.requests) == 1  # no retry: max_retries=0 is in effect
        trace = client.query("hi").trace
        assert trace is not None and trace.strategy == "Adaptive"
    with mm.Client(config=path, transport=FakeProvider()) as client:
        assert client.config.strategy == "round_robin" and client.config.max_retries == 3
        trace = client.query("hi").trace
        assert trace is not None and trace.strategy == "RoundRobin"


@needs_toml
@pytest.mark.anyio
async def test_async_keywords_override_the_file(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.script("a.test", [500])
    path = toml_file(tmp_path)
    async with mm.AsyncClient(
        config=path, strategy="adaptive", max_retries=0, transport=fake
    ) as client:
        assert (client.config.strategy, client.config.max_retries) == ("adaptive", 0)
        with pytest.raises(mm.ProviderError):
            await client.query("hi")
        assert len(fake.requests) == 1
        response = await client.query("hi")
        assert response.trace is not None and response.trace.strategy == "Adaptive"


@pytest.mark.parametrize("cls", CLIENTS)
def test_precedence_dict_and_config_object(cls: type) -> None:
    base = {"deployments": [DEP], "strategy": "round_robin", "timeout": 5, "deadline": 20}
    client = cls(config=base, timeout=7, transport=FakeProvider())
    assert (client.config.timeout, client.config.deadline) == (7, 20)
    assert client.config.strategy == "round_robin"
    cfg = mm.ClientConfig(**base)
    assert cls(config=cfg, transport=FakeProvider()).config is cfg  # nothing to merge
    merged = cls(config=cfg, strategy="least_connections", transport=FakeProvider()).config
    assert (merged.strategy, merged.timeout, merged.deadline) == ("least_connections", 5, 20)
    assert cfg.strategy == "round_robin"  # the given configuration is left alone


@pytest.mark.parametrize("cls", CLIENTS)
def test_keyword_deployments_replace_the_configs(cls: type) -> None:
    other = {**DEP, "model": "n", "base_url": "https://b.test/v1"}
    client = cls([other], config={"deployments": [DEP], "timeout": 9}, transport=FakeProvider())
    assert client.models == ["n"] and client.config.timeout == 9
    # a config file may hold no deployments at all when the code gives them
    client = cls([DEP], config={"strategy": "least_connections"}, transport=FakeProvider())
    assert client.models == ["m"] and client.config.strategy == "least_connections"


def test_max_retries_and_retry_policy_agree() -> None:
    policy = mm.RetryPolicy(max_retries=5, backoff_initial=0.01)
    cfg = mm.Client([DEP], retry=policy, transport=FakeProvider()).config
    assert cfg.max_retries == 5 and cfg.retry == policy
    cfg = mm.Client([DEP], retry=policy, max_retries=1, transport=FakeProvider()).config
    assert cfg.max_retries == 1 and cfg.retry is not None and cfg.retry.max_retries == 1
    assert cfg.retry.backoff_initial == 0.01
    # a new retry policy given over a config brings its own count ...
    again = mm.Client(config=cfg, retry=mm.RetryPolicy(max_retries=7), transport=FakeProvider())
    assert again.config.max_retries == 7 and again._router.retry.max_retries == 7
    # ... and max_retries alone keeps the config's back-off
    again = mm.Client(config=cfg, max_retries=0, transport=FakeProvider())
    assert again._router.retry == mm.RetryPolicy(max_retries=0, backoff_initial=0.01)


@pytest.mark.parametrize("cls", CLIENTS)
def test_every_option_is_a_keyword_and_a_field(cls: type) -> None:
    params = inspect.signature(cls).parameters
    names = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    assert names == ["config", *OPTIONS[1:], "http_client", "transport"]
    assert OPTIONS[0] == "deployments" and "deployments" in params
    assert all(params[n].default is None for n in names)
    assert params["unknown"].kind is inspect.Parameter.VAR_KEYWORD
    for name in [*OPTIONS, "config", "http_client", "transport"]:  # the Args sections
        assert f"\n        {name}: " in (cls.__doc__ or ""), name
    for name in OPTIONS:
        assert f"\n        {name}: " in (mm.ClientConfig.__doc__ or ""), name


@pytest.mark.parametrize("cls", CLIENTS)
def test_every_keyword_reaches_the_config(cls: type, tmp_path: Path) -> None:
    from multimodel.catalog import Catalog
    from multimodel.tracking.telemetry import Telemetry

    catalog = Catalog()
    values: dict[str, Any] = {
        "strategy": "least_connections",
        "strategies": {"m": "round_robin"},
        "timeout": 3.0,
        "max_retries": 4,
        "deadline": 9.0,
        "stream_idle_timeout": 2.0,
        "retry": mm.RetryPolicy(max_retries=4, jitter=0.0),
        "circuit": mm.CircuitPolicy(cooldown=1.0),
        "fallbacks": {"m": ["n"]},
        "context_fallbacks": {"m": "n"},
        "retry_budget": mm.RetryBudget(ratio=0.5),
        "budgets": (mm.Budget(name="daily", limit=Decimal(1)),),
        "hedge": mm.HedgePolicy(min_delay=0.2),
        "cache": mm.CachePolicy(ttl=5),
        "policies": mm.Policy(name="p"),
        "limits": mm.InputLimits(max_tools=3),
        "catalog": catalog,
        "telemetry": Telemetry(enabled=False),
        "ledger": str(tmp_path / "usage.db"),
        "shared_state": mm.RedisState("redis://127.0.0.1:1/0"),  # built, never connected
        "clock": mm.ManualClock(),
        "env": {"X": "y"},
        "feedback": mm.FeedbackPolicy(half_life=60.0),
        "task_classifier": "heuristic",
        "unsupported_params": "error",
        "structured_retries": 3,
    }
    # max_connections sizes a transport the client builds: not with FakeProvider, checked alone.
    assert sorted([*values, "max_connections"]) == sorted(OPTIONS[1:])
    deps = [DEP, {**DEP, "model": "n"}]
    client = cls(deps, transport=FakeProvider(), **values)
    for name, value in values.items():
        assert getattr(client.config, name) == value, name
    assert client.catalog is catalog and client.config.clock is values["clock"]
    client._close_owned()
    client = cls(deps, max_connections=7)
    assert client.config.max_connections == 7
    client._close_owned()


def test_env_never_shows() -> None:
    env = {"OPENAI_API_KEY": "sk-secret-value"}
    cfg = mm.ClientConfig(deployments=[DEP], env=env)
    assert "sk-secret-value" not in repr(cfg) and "sk-secret-value" not in str(cfg.model_dump())


# -- files -----------------------------------------------------------------------------------


@needs_toml
@pytest.mark.parametrize("cls", CLIENTS)
def test_cache_true_in_toml_and_json(cls: type, tmp_path: Path) -> None:
    toml = toml_file(tmp_path, "cache = true\n" + TOML)
    data = {"cache": True, "deployments": [DEP]}
    for path in (toml, json_file(tmp_path, data)):
        client = cls(config=path, transport=FakeProvider())
        assert client.config.cache is True
        assert isinstance(client.cache, ResponseCache)


def test_cache_true_answers_from_the_cache(tmp_path: Path) -> None:
    fake = FakeProvider(FakeReply(text="once"))
    path = json_file(tmp_path, {"cache": True, "deployments": [DEP]})
    with mm.Client(config=path, transport=fake) as client:
        first = client.query("hi", temperature=0)
        second = client.query("hi", temperature=0)
    assert first.text == second.text == "once"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("cls", CLIENTS)
def test_json_file_is_parsed_as_json(cls: type, tmp_path: Path) -> None:
    data = {"strategy": {"name": "weighted", "seed": 1}, "timeout": 4, "deployments": [DEP]}
    path = json_file(tmp_path, data)
    client = cls(config=path, transport=FakeProvider())
    assert client.config.strategy == {"name": "weighted", "seed": 1}
    assert client.config.timeout == 4
    assert type(client._router.strategy("m")).__name__ == "Weighted"
    assert mm.ClientConfig.from_file(path) == mm.load_config(str(path))


@needs_toml
def test_tables_in_a_file_become_objects(tmp_path: Path) -> None:
    path = toml_file(
        tmp_path,
        TOML
        + f"""
[[deployments]]
model = "big"
provider = "openai"
api_key = "{KEY}"
base_url = "https://b.test/v1"

[strategies]
big = {{name = "weighted", seed = 3}}
m = "least_connections"

[retry]
backoff_initial = 0.1

[circuit]
cooldown = 2.5
when_all_unavailable = "fail"

[hedge]
min_delay = 0.3

[retry_budget]
ratio = 0.4

[[budgets]]
name = "daily"
limit = 1.25
window = "day"

[cache]
ttl = 60
cache_sampled = true

[limits]
max_tools = 4

[policies]
default = "free"
roles = {{"u-1" = "pro"}}
policies = [{{name = "free", max_tokens = 500}}, {{name = "pro"}}]

[fallbacks]
m = ["big"]

[context_fallbacks]
m = "big"
""",
    )
    cfg = mm.load_config(path)
    assert cfg.strategies == {"big": {"name": "weighted", "seed": 3}, "m": "least_connections"}
    assert cfg.retry == mm.RetryPolicy(max_retries=3, backoff_initial=0.1)
    assert cfg.max_retries == 3  # the file's max_retries wins over the table's default
    assert cfg.circuit == mm.CircuitPolicy(cooldown=2.5, when_all_unavailable="fail")
    assert cfg.hedge == mm.HedgePolicy(min_delay=0.3)
    assert isinstance(cfg.retry_budget, mm.RetryBudget) and cfg.retry_budget.ratio == 0.4
    assert cfg.budgets == (mm.Budget(name="daily", limit=Decimal("1.25"), window="day"),)
    assert cfg.cache == mm.CachePolicy(ttl=60, cache_sampled=True)
    assert cfg.limits == mm.InputLimits(max_tools=4)
    assert isinstance(cfg.policies, mm.PolicySet) and cfg.policies.default == "free"
    assert cfg.policies.resolve("u-1").name == "pro"
    assert cfg.fallbacks == {"m": ["big"]} and cfg.context_fallbacks == {"m": "big"}
    with mm.Client(config=cfg, transport=FakeProvider()) as client:
        assert client._router.retry.backoff_initial == 0.1
        assert client.health.policy.cooldown == 2.5
        assert type(client._router.strategy("big")).__name__ == "Weighted"
        assert client.limits.max_tools == 4


def test_one_policy_table_and_a_catalog_file(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "m",
                        "provider": "openai",
                        "context_window": 1000,
                        "max_output_tokens": 100,
                        "input": "1",
                        "output": "2",
                    }
                ]
            }
        )
    )
    data = {
        "deployments": [DEP],
        "policies": {"name": "only", "max_tokens": 10},
        "catalog": str(models),
        "ledger": str(tmp_path / "u.db"),
        "telemetry": False,
    }
    with mm.Client(config=data, transport=FakeProvider()) as client:
        assert isinstance(client.config.policies, mm.Policy)
        assert client.policies is not None and client.policies.default == "only"
        assert client.catalog.get("m", provider="openai").context_window == 1000
        assert client.ledger is not None and client.telemetry is None


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLIENTS)
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": -1}, r"timeout: Input should be greater than 0"),
        ({"timeout": 0}, r"timeout: Input should be greater than 0"),
        ({"max_retries": -1}, r"max_retries: Input should be greater than or equal to 0"),
        ({"deadline": -5}, r"deadline: Input should be greater than 0"),
        ({"stream_idle_timeout": 0}, r"stream_idle_timeout: Input should be greater than 0"),
        (
            {"strategies": {"gpt": "least_connections"}},
            r"strategies: no deployment serves the model group 'gpt' \(groups: m\)",
        ),
        ({"fallbacks": {"m": ["nope"]}}, r"fallbacks: no deployment serves the model group 'nope'"),
        (
            {"context_fallbacks": {"mm": "m"}},
            r"context_fallbacks: no deployment serves the model group 'mm'; did you mean 'm'\?",
        ),
        (
            {"retry": {"max_retry": 1}},
            r"retry: unknown field 'max_retry'; did you mean 'max_retries'",
        ),
        ({"retry": {"jitter": "lots"}}, r"retry.jitter: Input should be a valid number"),
        ({"cache": "yes"}, r"cache: expected true/false, a CachePolicy"),
        ({"cache": {"ttl": -1}}, r"cache: CachePolicy.ttl must be > 0"),
        ({"budgets": [{"name": "b", "limit": -1}]}, r"budgets.0: budget 'b': limit must be >= 0"),
        ({"strategy": {"weights": {}}}, r"strategy: a strategy table needs 'name'"),
        ({"strategy": 3}, r"strategy: expected a strategy name"),
        ({"policies": {"name": "p", "max_tokenz": 1}}, r"did you mean 'max_tokens'"),
        ({"clock": "now"}, r"clock: expected a Clock"),
    ],
)
def test_invalid_option_as_keyword_and_in_a_dict(
    cls: type, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(mm.ConfigError, match=match):
        cls([DEP], transport=FakeProvider(), **options)
    with pytest.raises(mm.ConfigError, match=match):
        cls(config={"deployments": [DEP], **options}, transport=FakeProvider())
    with pytest.raises(mm.ConfigError, match=match):
        mm.load_config({"deployments": [DEP], **options})


@pytest.mark.parametrize("cls", CLIENTS)
def test_unknown_option_suggests_the_closest(cls: type, tmp_path: Path) -> None:
    with pytest.raises(mm.ConfigError, match=r"^unknown option 'max_retry'; did you mean"):
        cls([DEP], max_retry=1, transport=FakeProvider())
    with pytest.raises(mm.ConfigError, match=r"did you mean 'http_client'\?"):
        cls([DEP], http_clent=None)
    with pytest.raises(mm.ConfigError, match=r"unknown option 'timout'; did you mean 'timeout'\?"):
        cls(config={"deployments": [DEP], "timout": 3})
    path = json_file(tmp_path, {"deployments": [DEP], "stratgy": "least_connections"})
    match = re.escape(f"{path}: unknown option 'stratgy'; did you mean 'strategy'?")
    with pytest.raises(mm.ConfigError, match=match):
        cls(config=path)
    with pytest.raises(mm.ConfigError, match=r"deployments.0: unknown field 'modle'; did you"):
        cls(config={"deployments": [{**DEP, "modle": "x"}]})
    with pytest.raises(mm.ConfigError, match=r"unknown option 'colour' \(valid: budgets, cache"):
        mm.load_config({"deployments": [DEP], "colour": "blue"})


@needs_toml
def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "max_retrys = 2\n" + TOML)
    with pytest.raises(mm.ConfigError, match=r"mm.toml: unknown option 'max_retrys'; did you"):
        mm.Client(config=path)
    path = toml_file(tmp_path, TOML.replace("timeout = 30", "timeout = -1"))
    with pytest.raises(mm.ConfigError, match=r"mm.toml: timeout: Input should be greater than 0"):
        mm.load_config(path)
    # an option given as a keyword is not blamed on the file
    with pytest.raises(mm.ConfigError, match=r"invalid configuration: max_retries: Input"):
        mm.Client(config=toml_file(tmp_path), max_retries=-2)


@pytest.mark.parametrize("cls", CLIENTS)
def test_file_errors(cls: type, tmp_path: Path) -> None:
    yaml = tmp_path / "mm.yaml"
    yaml.write_text("timeout: 3\n")
    with pytest.raises(mm.ConfigError, match=r"unsupported extension '.yaml'; use .toml or .json"):
        cls(config=yaml)
    with pytest.raises(mm.ConfigError, match="unsupported extension"):
        cls(config=tmp_path / "mm")
    with pytest.raises(mm.ConfigError, match="cannot read config file"):
        cls(config=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{'timeout': 3")
    with pytest.raises(mm.ConfigError, match=r"bad.json' is not valid JSON"):
        cls(config=bad)
    with pytest.raises(mm.ConfigError, match="top level must be an object of options, not list"):
        cls(config=json_file(tmp_path, [DEP]))
    with pytest.raises(mm.ConfigError, match=r"has no deployments; a client needs at least one"):
        cls(config=json_file(tmp_path, {"timeout": 3}))
    with pytest.raises(mm.ConfigError, match="a client needs at least one deployment"):
        cls([])
    with pytest.raises(mm.ConfigError, match="config must be a ClientConfig, a dict or a file"):
        cls(config=42)


@needs_toml
def test_invalid_toml(tmp_path: Path) -> None:
    bad = toml_file(tmp_path, "this is = = not toml", name="bad.toml")
    with pytest.raises(mm.ConfigError, match=r"bad.toml' is not valid TOML"):
        mm.Client(config=bad)


def test_client_config_itself_raises_config_error() -> None:
    with pytest.raises(mm.ConfigError, match="timeout: Input should be greater than 0"):
        mm.ClientConfig(deployments=[DEP], timeout=-1)
    with pytest.raises(mm.ConfigError, match="unknown option 'retries'; did you mean"):
        mm.ClientConfig(deployments=[DEP], retries=1)  # type: ignore[call-arg]
    cfg = mm.ClientConfig(deployments=[DEP])
    assert mm.load_config(cfg) is cfg


def test_importing_the_config_loads_no_option_classes() -> None:
    import subprocess

    code = (
        "import sys, multimodel.config as c\n"
        f"c.load_config({{'deployments': [{DEP!r}], 'cache': True, 'ledger': 'x.db'}})\n"
        "loaded = [m for m in sys.modules if m.startswith(('multimodel.cache', "
        "'multimodel.catalog', 'multimodel.tracking', 'multimodel.resilience'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_deployment_built_directly_raises_config_error() -> None:
    with pytest.raises(mm.ConfigError, match=r"base_url must start with http:// or https://"):
        mm.Deployment(model="m", provider="openai", base_url="api.openai.com/v1")
    with pytest.raises(mm.ConfigError, match=r"unknown field 'modle'; did you mean 'model'"):
        mm.Deployment(model="m", provider="openai", modle="x")  # type: ignore[call-arg]
    with pytest.raises(mm.ConfigError, match=r"deployments\.1\.base_url"):
        mm.Client(
            deployments=[
                {"model": "m", "provider": "openai", "api_key": "k"},
                {"model": "m", "provider": "openai", "base_url": "x.example"},
            ]
        )


def test_extra_header_values_stay_out_of_a_deployments_repr() -> None:
    dep = mm.Deployment(model="m", provider="openai", headers={"x-gateway-key": "gw-SECRET-1"})
    assert "gw-SECRET-1" not in repr(dep)
    assert "x-gateway-key" in repr(dep)
    assert dep.headers == {"x-gateway-key": "gw-SECRET-1"}  # the value itself is kept
