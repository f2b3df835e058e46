"""The model catalog: bundled data, lookups, filters, overrides and user files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from multimodel.catalog import (
    CAPABILITIES,
    Catalog,
    ModelSpec,
    Pricing,
    default_catalog,
    list_models,
)
from multimodel.errors import ConfigError, UnknownModelError
from multimodel.providers.presets import builtin_presets


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


def entry(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "acme-1",
        "provider": "openai",
        "aliases": ["acme"],
        "context_window": 8192,
        "max_output_tokens": 1024,
        "input": "1.00",
        "output": "2.00",
        "capabilities": ["chat"],
        "quality": 40,
    }
    base.update(overrides)
    return base


# --- the bundled data ----------------------------------------------------------------------


def test_bundled_file_validates_and_is_big_enough(catalog: Catalog) -> None:
    assert catalog.version == "2026-11-01"
    assert len(catalog) >= 23
    assert len(catalog.providers()) >= 9
    for name in ("openai", "anthropic", "gemini", "qwen", "deepseek", "xai", "meta", "mistral"):
        assert name in catalog.providers()


def test_bundled_data_file_is_packaged_json() -> None:
    from importlib import resources

    data = resources.files("multimodel.catalog").joinpath("data/models.json")
    doc = json.loads(data.read_text("utf-8"))
    assert doc["version"] == "2026-11-01"
    assert "override" in doc["notes"] and "change" in doc["notes"]
    # prices are strings, so they are read as exact decimals
    for raw in doc["models"]:
        for field in ("input", "output", "cached_input", "cache_write"):
            assert field not in raw or isinstance(raw[field], str), (raw["id"], field)


def _bundled_entries() -> list[dict[str, object]]:
    from importlib import resources

    data = resources.files("multimodel.catalog").joinpath("data/models.json")
    entries: list[dict[str, object]] = json.loads(data.read_text("utf-8"))["models"]
    return entries


def test_bundled_entries_are_built_exactly_as_validation_builds_them(catalog: Catalog) -> None:
    # The bundled table is built without running the validators (issue #18): each entry must
    # come out as validation makes it, in every slot pydantic defines, repr included (so a
    # price keeps its written exponent: "2.00", not "2").
    from multimodel.catalog._store import bundled_spec, validate_entry
    from multimodel.types._response import _same

    entries = _bundled_entries()
    assert len(entries) == len(catalog)
    for raw in entries:
        built = bundled_spec(dict(raw), "t")
        validated = validate_entry(dict(raw), "t")
        assert _same(validated, built), raw["id"]
        if validated.pricing is not None:
            assert built.pricing is not None and _same(validated.pricing, built.pricing), raw["id"]
        assert catalog.get(f"{raw['provider']}/{raw['id']}") == validated


@pytest.mark.parametrize(
    "change",
    [
        {"quality": "50"},  # a string where the file has numbers
        {"quality": True},  # a bool is not an int here
        {"aliases": "one"},
        {"capabilities": ["chat", 3]},
        {"unknown": 1},
        {"pricing": {"input": "1", "output": "2"}},
    ],
)
def test_a_bundled_entry_of_another_shape_is_validated(change: dict[str, object]) -> None:
    from multimodel.catalog._store import bundled_spec, validate_entry

    raw = entry(**change)
    outcomes = []
    for build in (validate_entry, bundled_spec):
        try:
            outcomes.append(repr(build(dict(raw), "t")))
        except ConfigError as exc:
            outcomes.append(f"ConfigError: {exc}")
    assert outcomes[0] == outcomes[1]


def test_every_provider_is_a_preset(catalog: Catalog) -> None:
    presets = builtin_presets()
    assert set(catalog.providers()) <= set(presets)


def test_names_are_unique_across_the_catalog(catalog: Catalog) -> None:
    seen: dict[str, str] = {}
    for spec in catalog:
        for name in spec.names:
            assert name not in seen, f"{name!r} names both {seen[name]} and {spec.key}"
            seen[name] = spec.key


def test_required_models_are_present(catalog: Catalog) -> None:
    required = {
        "openai": ["gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini"],
        "anthropic": [
            "claude-3.5-sonnet",
            "claude-3.5-haiku",
            "claude-3.7-sonnet",
            "claude-sonnet-4",
            "claude-opus-4",
        ],
        "gemini": [
            "gemini-1.5-pro",
            "gemini-1.5-flash",
            "gemini-2.0-flash",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
        ],
        "qwen": ["qwen-max", "qwen-plus"],
        "deepseek": ["deepseek-chat", "deepseek-reasoner"],
        "xai": ["grok-3", "grok-3-mini"],
        "meta": ["llama-3.3-70b", "llama-4-maverick"],
        "mistral": ["mistral-large", "mistral-small"],
    }
    for provider, ids in required.items():
        for model_id in ids:
            assert catalog.get(model_id).provider == provider


def test_bundled_entries_are_sane(catalog: Catalog) -> None:
    for spec in catalog:
        assert spec.capabilities <= CAPABILITIES
        assert ("chat" in spec.capabilities) != ("embedding" in spec.capabilities), spec.key
        assert spec.quality_source, spec.key
        assert spec.reasoning == ("reasoning" in spec.capabilities), spec.key
        assert ("long_context" in spec.capabilities) == (spec.context_window >= 200_000), spec.key
        if spec.pricing is None:
            assert spec.notes, f"{spec.key}: an unpriced entry must say why"
            continue
        p = spec.pricing
        if "embedding" in spec.capabilities:  # priced per input token only
            assert p.input > 0 and p.output == 0, spec.key
            continue
        assert p.output >= p.input > 0 or spec.provider == "together", spec.key
        if p.cached_input is not None:
            assert p.cached_input < p.input, spec.key
        if p.cache_write is not None:
            assert p.cache_write > p.input, spec.key  # Anthropic: 1.25x


def test_known_prices(catalog: Catalog) -> None:
    sonnet = catalog.get("claude-3.5-sonnet").pricing
    assert sonnet == Pricing(
        input=Decimal(3),
        output=Decimal(15),
        cached_input=Decimal("0.3"),
        cache_write=Decimal("3.75"),
    )
    assert catalog.get("gpt-4o-mini").pricing == Pricing(
        input=Decimal("0.15"), output=Decimal("0.60"), cached_input=Decimal("0.075")
    )
    assert catalog.get("llama-3.3-70b").pricing is None  # no public price: unknown, not guessed


def test_no_file_is_read_at_import() -> None:
    code = textwrap.dedent("""
        import builtins, io, importlib.resources as r
        opened = []
        real = io.open
        def spy(file, *a, **k):
            opened.append(str(file)); return real(file, *a, **k)
        io.open = builtins.open = spy
        import multimodel.catalog, multimodel.tracking.cost
        assert not [f for f in opened if f.endswith('models.json')], opened
        c = multimodel.catalog.Catalog()
        assert not [f for f in opened if f.endswith('models.json')], opened
        len(c)
        assert [f for f in opened if f.endswith('models.json')], opened
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


# --- lookups ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gpt-4o", "openai/gpt-4o"),
        ("gpt-4", "openai/gpt-4.1"),
        ("claude-3.5", "anthropic/claude-3.5-sonnet"),
        ("claude-3-5-sonnet-20241022", "anthropic/claude-3.5-sonnet"),
        ("gemini-pro", "gemini/gemini-2.5-pro"),
        ("deepseek-r1", "deepseek/deepseek-reasoner"),
        ("anthropic/claude-opus-4", "anthropic/claude-opus-4"),
        ("anthropic/claude-3.5", "anthropic/claude-3.5-sonnet"),  # provider + alias
        ("google/gemini-2.5-flash", "gemini/gemini-2.5-flash"),  # provider alias
    ],
)
def test_get_by_id_alias_and_key(catalog: Catalog, name: str, key: str) -> None:
    assert catalog.get(name).key == key
    assert name in catalog


def test_get_with_provider(catalog: Catalog) -> None:
    assert catalog.get("grok-3", provider="xai").key == "xai/grok-3"
    assert catalog.get("grok-3", provider="grok").key == "xai/grok-3"  # preset alias
    assert catalog.find("grok-3", provider="openai") is None
    with pytest.raises(UnknownModelError, match="for provider 'openai'"):
        catalog.get("grok-3", provider="openai")
    assert catalog.find("xai/grok-3", provider="openai") is None


def test_spec_properties(catalog: Catalog) -> None:
    spec = catalog.get("claude-sonnet-4")
    assert spec.key == "anthropic/claude-sonnet-4"
    assert spec.api_model == "claude-sonnet-4-20250514"
    assert catalog.get("gpt-4o").api_model == "gpt-4o"
    assert spec.has("vision", "tools") and not spec.has("completion")


def test_unknown_model_suggests_close_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.get("gpt-4o-mni")
    assert "gpt-4o-mini" in info.value.suggestions
    assert "not in the catalog" in str(info.value) and "gpt-4o-mini" in str(info.value)
    assert isinstance(info.value, LookupError)
    assert catalog.find("no-such-model") is None
    assert "no-such-model" not in catalog


def test_same_id_on_two_providers_is_ambiguous(catalog: Catalog) -> None:
    catalog.add(entry(id="gpt-4o", provider="azure", aliases=[]))
    assert catalog.get("gpt-4o", provider="azure").provider == "azure"
    assert catalog.get("azure/gpt-4o").provider == "azure"
    with pytest.raises(UnknownModelError, match="several providers") as info:
        catalog.get("gpt-4o")
    assert set(info.value.suggestions) == {"openai/gpt-4o", "azure/gpt-4o"}


# --- filters and sorting ---------------------------------------------------------------------


def test_list_filters(catalog: Catalog) -> None:
    anthropic = catalog.list(provider="anthropic")
    assert anthropic and all(s.provider == "anthropic" for s in anthropic)
    vision_tools = catalog.list(capability=["vision", "tools"])
    assert vision_tools and all(s.has("vision", "tools") for s in vision_tools)
    assert all(s.has("reasoning") for s in catalog.list(capability="reasoning"))
    big = catalog.list(min_context=1_000_000)
    assert big and all(s.context_window >= 1_000_000 for s in big)
    cheap = catalog.list(max_input_price="0.30")
    assert cheap and all(s.pricing and s.pricing.input <= Decimal("0.30") for s in cheap)
    assert "meta/llama-3.3-70b" not in {s.key for s in cheap}  # unpriced: left out
    live = catalog.list(include_deprecated=False)
    assert "anthropic/claude-3.5-sonnet" not in {s.key for s in live}
    assert len(live) < len(catalog.list())
    assert list_models(provider="google") == catalog.list(provider="gemini")


def test_list_rejects_unknown_capability_and_sort(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="valid: analysis, chat"):
        catalog.list(capability="telepathy")
    with pytest.raises(ConfigError, match="unknown sort_by"):
        catalog.list(sort_by="vibes")  # type: ignore[arg-type]


def test_list_sorting(catalog: Catalog) -> None:
    by_name = catalog.list()
    assert [s.id for s in by_name] == sorted(s.id for s in by_name)

    by_input = catalog.list(sort_by="input_price")
    priced = [s for s in by_input if s.pricing is not None]
    assert [s.pricing.input for s in priced if s.pricing] == sorted(
        s.pricing.input for s in priced if s.pricing
    )
    assert all(s.pricing is None for s in by_input[len(priced) :])  # unpriced last

    by_output = catalog.list(sort_by="output_price", descending=True)
    outs = [s.pricing.output for s in by_output if s.pricing]
    assert outs == sorted(outs, reverse=True)
    assert by_output[-1].pricing is None

    by_quality = catalog.list(sort_by="quality")
    assert [s.quality for s in by_quality] == sorted((s.quality for s in by_quality), reverse=True)
    by_ctx = catalog.list(sort_by="context_window", descending=False)
    assert [s.context_window for s in by_ctx] == sorted(s.context_window for s in by_ctx)


# --- add / override / replace ------------------------------------------------------------------


def test_add_and_lookup(catalog: Catalog) -> None:
    before = catalog.version
    spec = catalog.add(entry())
    assert catalog.get("acme") == spec and spec.pricing is not None
    assert spec.pricing.input == Decimal("1.00")
    assert catalog.version == before + "+local"
    catalog.add(entry(id="acme-2", aliases=["acme2"]))
    assert catalog.version == before + "+local"  # marked once


def test_add_does_not_leak_into_other_catalogs(catalog: Catalog) -> None:
    copy = catalog.copy()
    catalog.add(entry())
    assert "acme" in catalog
    assert "acme" not in copy
    assert "acme" not in default_catalog()


def test_duplicates_need_replace(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="already in the catalog; pass replace=True"):
        catalog.add(entry(id="gpt-4o", aliases=[]))
    with pytest.raises(ConfigError, match="alias 'gpt-4' is already a name of 'openai/gpt-4.1'"):
        catalog.add(entry(aliases=["gpt-4"]))
    with pytest.raises(ConfigError, match="alias 'gpt-4o' is already a name of 'openai/gpt-4o'"):
        catalog.add(entry(aliases=["gpt-4o"]))
    with pytest.raises(ConfigError, match="id 'claude-3.5' is already an alias"):
        catalog.add(entry(id="claude-3.5", aliases=[]))
    assert "acme" not in catalog  # nothing changed


def test_replace_swaps_entry_and_moves_aliases(catalog: Catalog) -> None:
    n = len(catalog)
    new = catalog.add(entry(id="gpt-4o", aliases=["gpt-4o-2024-11-20"], input="2.00"), replace=True)
    assert len(catalog) == n
    assert catalog.get("gpt-4o") == new
    assert catalog.get("gpt-4o-2024-11-20") == new
    # an alias can be taken over with replace=True; the old owner loses it
    catalog.add(entry(aliases=["gpt-4"]), replace=True)
    assert catalog.get("gpt-4").id == "acme-1"
    assert "gpt-4" not in catalog.get("gpt-4.1").aliases
    # ... but another model's id never moves
    with pytest.raises(ConfigError, match="already a name of 'openai/o3'"):
        catalog.add(entry(id="acme-3", aliases=["o3"]), replace=True)


def test_override_price(catalog: Catalog) -> None:
    spec = catalog.override_price("claude-3.5", input="2.50", cache_write=None)
    assert spec.key == "anthropic/claude-3.5-sonnet"
    assert spec.pricing == Pricing(
        input=Decimal("2.50"), output=Decimal("15.00"), cached_input=Decimal("0.30")
    )
    assert catalog.get("claude-3.5-sonnet") == spec
    assert catalog.version.endswith("+local")
    assert default_catalog().get("claude-3.5-sonnet").pricing != spec.pricing
    # a model without a price gets one only if input and output are both given
    with pytest.raises(ConfigError, match=r"pricing|output: Field required"):
        catalog.override_price("llama-3.3-70b", input="0.5")
    priced = catalog.override_price("llama-3.3-70b", input="0.5", output="0.7")
    assert priced.pricing is not None and priced.pricing.output == Decimal("0.7")


def test_override_price_errors(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="unknown price field.*'inputs'"):
        catalog.override_price("gpt-4o", inputs="1")
    with pytest.raises(ConfigError, match="input: Input should be greater than or equal to 0"):
        catalog.override_price("gpt-4o", input="-1")
    with pytest.raises(UnknownModelError):
        catalog.override_price("gpt-9", input="1")


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"input": "-0.01"}, "pricing.input", "greater than or equal to 0"),
        ({"capabilities": ["chat", "telepathy"]}, "capabilities", "unknown capability 'telepathy'"),
        ({"provider": None}, "provider", "Field required"),
        ({"context_window": 0}, "context_window", "greater than 0"),
        ({"quality": 101}, "quality", "less than or equal to 100"),
        ({"output": None}, "pricing.output", "Field required"),
        ({"max_output_tokens": 10**6}, "(entry)", "exceeds context_window"),
        ({"aliases": "acme"}, "aliases", "list of names"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_entries_fail_with_field(
    catalog: Catalog, bad: dict[str, object], field: str, message: str
) -> None:
    data = entry(**bad)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        catalog.add(data)
    text = str(info.value)
    assert "openai/acme-1" in text or "?/acme-1" in text
    assert field in text and message in text


def test_capability_error_lists_vocabulary() -> None:
    with pytest.raises(ValueError, match="valid: analysis, chat, coding, completion"):
        ModelSpec(
            id="x",
            provider="openai",
            context_window=10,
            max_output_tokens=5,
            capabilities=frozenset({"mind_reading"}),
        )


def test_catalog_of_own_models() -> None:
    mine = Catalog([entry()], version="mine-1")
    assert len(mine) == 1 and mine.version == "mine-1"
    assert mine.get("acme").provider == "openai"
    with pytest.raises(ConfigError, match=r"models\[1\] \(openai/acme-1\)"):
        Catalog([entry(id="ok", aliases=[]), entry(input="x")])


# --- user files --------------------------------------------------------------------------------


def test_load_toml(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "my-models.toml"
    path.write_text(
        textwrap.dedent("""
        version = "acme-2026-12"

        [[models]]
        id = "acme-1"
        provider = "together"
        aliases = ["acme"]
        context_window = 32768
        max_output_tokens = 4096
        input = "0.20"
        output = "0.60"
        capabilities = ["chat", "coding"]

        [[models]]
        id = "gpt-4o"
        provider = "openai"
        context_window = 128000
        max_output_tokens = 16384
        input = "2.00"
        output = "8.00"

        [prices."claude-opus-4"]
        input = "12.00"
    """),
        encoding="utf-8",
    )
    assert catalog.load(path) == 2
    assert catalog.version == "2026-11-01+acme-2026-12"
    assert catalog.get("acme").provider == "together"
    gpt = catalog.get("gpt-4o")
    assert gpt.pricing is not None and gpt.pricing.input == Decimal("2.00")
    opus = catalog.get("claude-opus-4").pricing
    assert opus is not None and opus.input == Decimal("12.00") and opus.output == Decimal("75.00")


def test_load_json_and_from_file(tmp_path: Path) -> None:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps({"models": [entry()], "prices": {"acme": {"output": "3"}}}))
    only = Catalog.from_file(path)
    assert only.version == "extra.json"
    assert [s.key for s in only] == ["openai/acme-1"]
    assert only.get("acme").pricing == Pricing(input=Decimal("1.00"), output=Decimal(3))


def test_load_bad_file_changes_nothing(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {"models": [entry(), entry(id="acme-2", aliases=[], capabilities=["chat", "vision!"])]}
        )
    )
    with pytest.raises(ConfigError, match=r"bad.json: models\[1\] \(openai/acme-2\): capabilities"):
        catalog.load(path)
    assert "acme" not in catalog and catalog.version == "2026-11-01"

    for name, text, match in [
        ("typo.json", json.dumps({"model": []}), "unknown top-level key"),
        ("broken.json", "{", "cannot read catalog file"),
        ("broken.toml", "x = ", "cannot read catalog file"),
        ("models.yaml", "", "must end in .json or .toml"),
        ("prices.json", json.dumps({"prices": {"gpt-4o": {"input": "-2"}}}), "greater than"),
    ]:
        bad = tmp_path / name
        bad.write_text(text)
        with pytest.raises(ConfigError, match=match):
            catalog.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        catalog.load(tmp_path / "missing.json")


# --- concurrency -------------------------------------------------------------------------------


def test_concurrent_reads_and_writes() -> None:
    catalog = Catalog()  # not yet loaded: the threads race on the first use too

    def reader() -> None:
        for _ in range(200):
            assert catalog.get("gpt-4o").id == "gpt-4o"
            assert len(catalog.list(capability="vision")) > 5

    def writer(i: int) -> None:
        for j in range(20):
            catalog.add(entry(id=f"w{i}-{j}", aliases=[]))
            catalog.override_price("gpt-4o-mini", input=f"0.{i}{j}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(reader) for _ in range(4)]
        futures += [pool.submit(writer, i) for i in range(4)]
        for future in futures:
            future.result()  # re-raises any failure
    assert sum(1 for s in catalog if s.id.startswith("w")) == 80
