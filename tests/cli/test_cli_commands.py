"""``multimodel models``, ``chat`` and ``simulate``: output, filters, exit codes (no network)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from multimodel.cli import _output, main
from multimodel.cli import chat as chat_cli
from multimodel.providers.presets import builtin_presets
from multimodel.testing import Behavior, MockDeployment, MockProviderServer
from multimodel.testing.fixtures import MockServerFactory

FLEET_JSON = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "fleet.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No provider key and no base-URL override in the environment."""
    import os

    for preset in builtin_presets().values():
        for var in preset.env_vars:
            monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith(chat_cli.BASE_URL_ENV_PREFIX):
            monkeypatch.delenv(var)
    return monkeypatch


# -- models ----------------------------------------------------------------------------------


def test_models_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models")
    assert code == 0 and err == ""
    header = out.splitlines()[0].split()
    assert header[:3] == ["model", "provider", "context"]
    assert "capabilities" in header and "quality" in header
    assert "gpt-4o-mini" in out and "claude-3.5-haiku" in out
    assert "USD per 1M tokens" in out.splitlines()[-1]


def test_models_json_is_a_list_of_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    rows = json.loads(out)
    mini = next(r for r in rows if r["id"] == "gpt-4o-mini")
    assert mini["provider"] == "openai"
    assert mini["input_price"] == pytest.approx(0.15) and mini["output_price"] == pytest.approx(0.6)
    assert mini["context_window"] >= 128_000 and "chat" in mini["capabilities"]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # default sort: name


def test_models_filters(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "models", "--json", "--provider", "anthropic")
    rows = json.loads(out)
    assert rows and {r["provider"] for r in rows} == {"anthropic"}
    _, out, _ = run(capsys, "models", "--json", "--capability", "vision", "--capability", "tools")
    rows = json.loads(out)
    assert rows and all({"vision", "tools"} <= set(r["capabilities"]) for r in rows)
    _, out, _ = run(capsys, "models", "--provider", "deepseek", "--plain")
    assert "deepseek-chat" in out and "gpt-4o" not in out


@pytest.mark.parametrize(
    ("key", "field", "descending"),
    [
        ("input_price", "input_price", False),
        ("output_price", "output_price", False),
        ("context", "context_window", True),
        ("quality", "quality", True),
    ],
)
def test_models_sort(
    capsys: pytest.CaptureFixture[str], key: str, field: str, descending: bool
) -> None:
    _, out, _ = run(capsys, "models", "--json", "--sort", key)
    values = [r[field] for r in json.loads(out) if r[field] is not None]
    assert values == sorted(values, reverse=descending)
    if field.endswith("price"):  # unpriced models last
        priced = [r[field] is not None for r in json.loads(out)]
        assert priced == sorted(priced, reverse=True)


def test_models_sort_by_blended_price(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "models", "--json", "--sort", "price")
    blended = [
        (3 * Decimal(str(r["input_price"])) + Decimal(str(r["output_price"]))) / 4
        for r in json.loads(out)
        if r["input_price"] is not None
    ]
    assert blended == sorted(blended)


def test_models_unknown_filters_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "--provider", "nope")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "unknown provider 'nope'" in err and "openai" in err
    code, _, err = run(capsys, "models", "--capability", "telepathy")
    assert code == 2 and "unknown capability 'telepathy'" in err and "vision" in err


def test_models_no_match_is_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--provider", "deepseek", "--capability", "vision")
    assert code == 0 and "no model matches" in out
    code, out, _ = run(
        capsys, "models", "--json", "--provider", "deepseek", "--capability", "vision"
    )
    assert code == 0 and json.loads(out) == []


def test_rich_table_when_installed(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rich", reason="needs the cli extra: pip install 'multimodel[cli]'")
    _output.table(["model", "price"], [["gpt-4o-mini", "0.15"]], right=(1,), use_rich=True)
    out = capsys.readouterr().out
    assert "gpt-4o-mini" in out and "0.15" in out


def test_plain_table_alignment() -> None:
    text = _output.plain_table(
        ["a", "num", "last"], [["xx", "1", "tail"], ["y", "200", "t"]], right=(1,)
    )
    lines = text.splitlines()
    assert lines[0] == "a   num  last"
    assert lines[2] == "xx    1  tail" and lines[3] == "y   200  t"


# -- chat ------------------------------------------------------------------------------------


def test_chat_without_keys_lists_the_variables(
    no_keys: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "chat", "Hello")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("multimodel chat: error: no provider API key")
    for var in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "DEEPSEEK_API_KEY",
        "GROQ_API_KEY",
        "MISTRAL_API_KEY",
        "XAI_API_KEY",
    ):
        assert var in err


def test_chat_model_whose_provider_has_no_key(
    no_keys: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_keys.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = run(capsys, "chat", "Hello", "--model", "gemini-pro")
    assert code == 1 and "GEMINI_API_KEY" in err and "sk-test" not in err
    code, _, err = run(capsys, "chat", "Hello", "--model", "anthropic/claude-x")
    assert code == 1 and "ANTHROPIC_API_KEY" in err


def test_chat_unknown_model_is_a_usage_error(
    no_keys: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_keys.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = run(capsys, "chat", "Hello", "--model", "no-such-model")
    assert code == 2 and "unknown model 'no-such-model'" in err


def test_default_models_are_in_the_catalog() -> None:
    from multimodel.catalog import default_catalog

    catalog = default_catalog()
    for provider, model in chat_cli.DEFAULT_MODELS.items():
        assert chat_cli.default_model(catalog, provider) == model


@pytest.fixture
def mock_env(
    no_keys: pytest.MonkeyPatch, mock_server_factory: MockServerFactory
) -> MockProviderServer:
    """OpenAI and Anthropic keys set, their base URLs pointed at a local mock server."""
    server = mock_server_factory(
        {
            "oa": MockDeployment("openai", Behavior(text="Forty-two is the answer.", chunks=4)),
            "an": MockDeployment("anthropic", Behavior(text="Claude says hi.", latency=0.05)),
            "broken": MockDeployment("openai", Behavior(fail_status=400, fail_rate=1.0)),
        }
    )
    no_keys.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    no_keys.setenv("ANTHROPIC_API_KEY", "ak-test-not-a-key")
    no_keys.setenv("MULTIMODEL_CHAT_BASE_URL_OPENAI", server.base_url("oa"))
    no_keys.setenv("MULTIMODEL_CHAT_BASE_URL_ANTHROPIC", server.base_url("an"))
    return server


def test_chat_against_the_mock_server(
    mock_env: MockProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "chat", "What is the answer?", "--model", "gpt-4o-mini")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Forty-two is the answer."
    summary = {line.split()[0]: line for line in lines[2:]}
    assert "openai/gpt-4o-mini" in summary["deployment"]
    assert " in, " in summary["tokens"] and summary["cost"].split()[1].startswith("$")
    assert summary["latency"].split()[2] == "s"
    body = mock_env.requests("oa")[0].body
    assert body["model"] == "gpt-4o-mini" and body["max_completion_tokens"] == 1024


def test_chat_auto_json(mock_env: MockProviderServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "chat", "Hi", "--json", "--max-tokens", "50")
    assert code == 0
    data = json.loads(out)
    assert data["text"] in ("Forty-two is the answer.", "Claude says hi.")
    assert sorted(data["candidates"]) == ["anthropic/claude-3.5-haiku", "openai/gpt-4o-mini"]
    assert data["deployment"] in data["candidates"]
    assert data["usage"]["total_tokens"] > 0 and data["cost"] > 0
    assert data["latency"] > 0 and data["stream"] is False and data["ttft"] is None


def test_chat_stream(mock_env: MockProviderServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "chat", "Hi", "--stream", "--model", "claude-3.5-haiku")
    assert code == 0
    assert out.startswith("Claude says hi.\n\n")
    assert "anthropic/claude-3.5-haiku" in out and "first token" in out
    assert mock_env.stats("an").streams == 1
    code, out, _ = run(capsys, "chat", "Hi", "--stream", "--json", "--model", "gpt-4o-mini")
    data = json.loads(out)
    assert code == 0 and data["text"] == "Forty-two is the answer." and data["stream"] is True
    assert data["ttft"] is not None


def test_chat_provider_slash_model_outside_the_catalog(
    mock_env: MockProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "chat", "Hi", "--model", "openai/my-finetune")
    assert code == 0 and "cost        unknown" in out
    assert mock_env.requests("oa")[-1].body["model"] == "my-finetune"


def test_chat_provider_error_is_one_line_exit_1(
    mock_env: MockProviderServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MULTIMODEL_CHAT_BASE_URL_OPENAI", mock_env.base_url("broken"))
    code, out, err = run(capsys, "chat", "Hi", "--model", "gpt-4o-mini")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("multimodel chat: error: ")
    assert "sk-test-not-a-key" not in err


def test_chat_bad_base_url_override(
    mock_env: MockProviderServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MULTIMODEL_CHAT_BASE_URL_OPENAI", "ftp://nope")
    code, _, err = run(capsys, "chat", "Hi", "--model", "gpt-4o-mini")
    assert code == 1 and "MULTIMODEL_CHAT_BASE_URL_OPENAI" in err


# -- simulate --------------------------------------------------------------------------------


def test_simulate_example_scenario_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "simulate", str(FLEET_JSON), "--json")
    assert code == 0, err
    data = json.loads(out)
    names = data["scenario"]["deployments"]
    assert len(names) == 5 and data["scenario"]["requests"] == 2000
    results = {r["strategy"]: r for r in data["results"]}
    assert set(results) == {
        "round_robin",
        "weighted",
        "least_connections",
        "response_time",
        "intelligent",
        "adaptive",
    }
    for r in results.values():
        assert 0.9 < r["success_rate"] <= 1.0
        assert r["p50"] <= r["p95"] <= r["p99"]
        assert r["cost"] > 0 and set(r["share"]) == set(names)
        assert sum(r["share"].values()) == pytest.approx(1.0)
    # the same file and seed give the same numbers
    assert main(["simulate", str(FLEET_JSON), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == data


def test_simulate_text_tables_and_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "simulate",
        str(FLEET_JSON),
        "--strategy",
        "adaptive",
        "--strategy",
        "round_robin",
        "--requests",
        "200",
        "--seed",
        "3",
    )
    assert code == 0
    assert "200 requests" in out and "seed 3" in out
    assert "results per strategy" in out and "share of attempts per deployment" in out
    assert "adaptive" in out and "round_robin" in out and "intelligent" not in out
    assert "gemini/gemini-2.0-flash" in out


def test_simulate_toml_with_strategies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'seed = 1\nstrategies = ["round_robin", {name = "intelligent", factors = {cost = 1.0}}]\n'
        "[load]\nrequests = 100\n"
        '[[deployments]]\nname = "a"\nprice = {input = 1.0, output = 2.0}\n'
        '[[deployments]]\nname = "b"\nfailure = {rate = 0.5}\n'
    )
    code, out, err = run(capsys, "simulate", str(scenario), "--json")
    assert code == 0, err
    assert [r["strategy"] for r in json.loads(out)["results"]] == ["round_robin", "intelligent"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"deployments": [{"name": "a", "colour": "red"}]}', "unknown deployment keys"),
        ('{"deployments": [{"name": "a", "latency": {"mean": 1}}]}', "invalid scenario"),
        ('{"load": {"requests": 10}}', "missing key 'deployments'"),
        ('{"deployments": []}', "at least one deployment"),
        ('{"strategies": "adaptive", "deployments": [{"name": "a"}]}', "`strategies` must"),
    ],
)
def test_simulate_bad_scenario_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "scenario.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "simulate", str(path))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_simulate_unknown_strategy_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "simulate", str(FLEET_JSON), "--strategy", "telepathic")
    assert code == 2 and "unknown strategy 'telepathic'" in err and "adaptive" in err


def test_simulate_lists_the_named_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "simulate", "--list")
    assert code == 0, err
    assert "large_fleet" in out and "brownout" in out
    code, out, _ = run(capsys, "simulate", "--list", "--json")
    assert code == 0
    assert {"name": "homogeneous", "description": "three equal deployments"} in json.loads(out)


def test_simulate_a_named_scenario_against_the_oracle(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "one_slow", "--requests", "300", "--strategy", "oracle"]
    code, out, err = run(capsys, *argv, "--strategy", "adaptive", "--json")
    assert code == 0, err
    results = {r["strategy"]: r for r in json.loads(out)["results"]}
    assert results["oracle"]["p95_vs_oracle"] == 1.0
    assert results["adaptive"]["p95_vs_oracle"] > 0
    code, out, _ = run(capsys, *argv, "--plain")
    assert code == 0 and "p95 / oracle" in out and "bursts" not in out


def test_simulate_help_documents_the_file_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for key in ("deployments", "latency", "failure", "rate_limit", "price", "load", "seed"):
        assert key in out


# -- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "--sort", "bogus"],
        ["models", "--nope"],
        ["chat"],
        ["chat", "hi", "--max-tokens", "0"],
        ["chat", "hi", "--max-tokens", "many"],
        ["simulate"],
        ["simulate", "x.json", "--requests", "lots"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_option_value_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(FLEET_JSON), "--requests", "0"]) == 2
    assert main(["chat", "hi", "--timeout", "0"]) == 2
    err = capsys.readouterr().err
    assert "--requests must be at least 1" in err and "--timeout must be > 0" in err


def test_demo_concurrency_default_is_the_documented_one() -> None:
    from multimodel.cli import _parser
    from multimodel.cli.demo import DEFAULT_CONCURRENCY

    args = _parser().parse_args(["demo"])
    assert args.concurrency == DEFAULT_CONCURRENCY == 16


# -- simulate --feedback -----------------------------------------------------------------------

TASKS = ("chat", "code", "math", "summ")  # the built-in tasks (as the table's rows start)


def test_simulate_feedback_prints_the_learned_routing_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "simulate", "--feedback", "--requests", "1500", "--plain")
    assert code == 0, err
    assert "built-in matrix: 1500 requests, seed 0" in out and "of the oracle's" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:4] in TASKS}
    assert rows["chat"][1:3] == ["gpt-4.1-nano", "gpt-4.1-nano"]  # learned: the cheap one
    assert rows["math"][1:3] == ["gpt-4.1", "gpt-4.1"]  # learned: only the strong one


def test_simulate_feedback_replays_a_scenario_file_with_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "matrix.json"
    path.write_text(
        json.dumps(
            {
                "requests": 1200,
                "matrix": {
                    "gpt-4.1": {"easy": 0.9, "hard": 0.9},
                    "gpt-4.1-nano": {"easy": 0.9, "hard": 0.2},
                },
                "drift": {"gpt-4.1-nano": {"easy": 0.3}},
            }
        )
    )
    # A seed whose random stream recovers within the 600 requests after the drift (about half
    # of them do at this short length; the benchmark measures recovery over longer runs).
    code, out, err = run(capsys, "simulate", "--feedback", str(path), "--seed", "4", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["scenario"] == {"path": str(path), "seed": 4, "requests": 1200, "drift_at": 600}
    assert data["oracle_choice"] == {"easy": "gpt-4.1-nano", "hard": "gpt-4.1"}
    assert max(data["share"]["hard"], key=data["share"]["hard"].get) == "gpt-4.1"
    assert data["recovery"]["easy"] is not None  # traffic moved off the model that got worse
    assert 0.8 < data["quality_vs_oracle"] <= 1.05 and len(data["regret_by_fifth"]) == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"matrix": {"gpt-4.1": {"chat": 1.5}}}', "must be in [0, 1]"),
        ('{"matrix": ["gpt-4.1"]}', "`matrix` must be a table"),
        ('{"colour": "red"}', "unknown key 'colour'"),
    ],
)
def test_simulate_feedback_bad_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "matrix.json"
    path.write_text(content)
    code, out, err = run(capsys, "simulate", "--feedback", str(path))
    assert code == 1 and out == "" and message in err, err
