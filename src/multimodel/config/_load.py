"""Reading configuration files, merging a configuration with a client's keywords, and resolving
deployments into endpoints."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..errors import ConfigError, MissingAPIKeyError
from ..providers.base import Endpoint
from ..providers.registry import get_preset
from ._models import OPTIONS, ClientConfig, Deployment
from ._options import unknown_name

__all__ = ["client_config", "load_config", "read_config_file", "resolve_endpoints"]

ConfigSource = ClientConfig | Mapping[str, Any] | str | os.PathLike[str]
"""What ``config=`` accepts: a configuration, a dict, or a TOML or JSON file path."""

FILE_FORMATS = (".toml", ".json")


def read_config_file(path: Path) -> dict[str, Any]:
    """The options of a TOML (``.toml``) or JSON (``.json``) file, not yet validated.

    Raises:
        ConfigError: another extension, an unreadable file, or a file that does not parse.
    """
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise ConfigError(
            f"config file {str(path)!r}: unsupported extension {suffix or '(none)'!r}; "
            f"use {' or '.join(FILE_FORMATS)}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    try:
        data = json.loads(raw) if suffix == ".json" else _toml(path).loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        kind = suffix[1:].upper()
        raise ConfigError(f"{str(path)!r} is not valid {kind}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{str(path)!r}: the top level must be an object of options, not {type(data).__name__}"
        )
    return data


def _toml(path: Path) -> Any:
    module = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - Python 3.10 without tomli
        raise ConfigError(
            f"{str(path)!r}: reading TOML on Python 3.10 needs `tomli` (pip install tomli); "
            "or write the configuration as JSON, or pass a dict"
        ) from None


def _raw(source: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[dict[str, Any], str | None]:
    """A source's options, unvalidated, and the file they came from (if any)."""
    if isinstance(source, Mapping):
        return dict(source), None
    if not isinstance(source, str | os.PathLike):
        raise ConfigError(
            f"config must be a ClientConfig, a dict or a file path, not {type(source).__name__}"
        )
    path = Path(source)
    return read_config_file(path), str(path)


def load_config(source: ConfigSource) -> ClientConfig:
    """Build a :class:`ClientConfig` from a dict, or a TOML (``.toml``) or JSON (``.json``) file.

    A file holds the same options as :class:`ClientConfig` (and the client's keywords). TOML
    needs Python 3.11+ (or ``tomli`` on 3.10); JSON works everywhere.

    Raises:
        ConfigError: the file is missing, has another extension or does not parse, or an option
            is invalid (the message names the option and, for an unknown name, the closest
            valid one).
    """
    if isinstance(source, ClientConfig):
        return source
    data, path = _raw(source)
    return ClientConfig._checked(data, (lambda option: path) if path else None)


def client_config(
    deployments: Sequence[Deployment | Mapping[str, Any]] | None,
    config: ConfigSource | None,
    options: Mapping[str, Any],
    unknown: Mapping[str, Any],
    *,
    extra: Sequence[str] = (),
) -> ClientConfig:
    """The configuration a client runs with: ``config``, overridden by the keywords given.

    ``options`` are the client's option keywords (``None``: not given, keep the config's);
    ``deployments``, when given, replace the config's. ``unknown`` are keywords the client
    does not have (``extra`` names its other, non-option keywords, for suggestions).

    Raises:
        ConfigError: an unknown keyword, an invalid option, or no deployment at all.
    """
    if unknown:
        name = min(unknown)
        raise ConfigError(unknown_name("unknown option", name, {"config", *OPTIONS, *extra}))
    given = {k: v for k, v in options.items() if v is not None}
    if deployments is not None:
        given["deployments"] = list(deployments)
    if isinstance(config, ClientConfig) and not given:
        return config
    base: dict[str, Any] = {}
    path: str | None = None
    if isinstance(config, ClientConfig):
        base = {name: getattr(config, name) for name in config.model_fields_set}
    elif config is not None:
        base, path = _raw(config)
    if "retry" in given and "max_retries" not in given:
        base.pop("max_retries", None)  # a new retry policy brings its own count
    merged = {**base, **given}
    if not merged.get("deployments"):
        where = f"{path} has no deployments; " if path else ""
        raise ConfigError(
            f"{where}a client needs at least one deployment, e.g. "
            "Client(deployments=[Deployment(model='gpt-4o-mini', provider='openai')])"
        )
    return ClientConfig._checked(
        merged, (lambda option: None if option in given else path) if path else None
    )


def resolve_endpoints(
    deployments: Sequence[Deployment], env: Mapping[str, str] | None = None
) -> list[Endpoint]:
    """Resolve presets, keys and names into :class:`Endpoint` objects, one per deployment.

    Raises:
        MissingAPIKeyError: a provider that needs a key has none (names the variable to set).
        ConfigError: unknown provider, duplicate name, a missing required ``base_url``, or a
            ``structured_output`` on a deployment that is not of the OpenAI wire format.
    """
    env = os.environ if env is None else env
    endpoints: list[Endpoint] = []
    seen: dict[str, int] = {}
    for dep in deployments:
        preset = get_preset(dep.provider)
        name = dep.display_name
        if name in seen:
            if dep.name is not None:
                raise ConfigError(f"two deployments are named {name!r}; names must be unique")
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        seen.setdefault(name, 1)
        key = dep.api_key
        if key is not None and not key.get_secret_value().strip():
            key = None  # `api_key = ""` (an unset template value) is no key, as an empty env var
        if key is None:
            for var in preset.env_vars:
                value = env.get(var)
                if value:
                    key = SecretStr(value)
                    break
        if key is None and preset.key_required:
            raise MissingAPIKeyError(
                name, dep.provider, preset.env_vars[0] if preset.env_vars else None
            )
        base_url = dep.base_url or preset.base_url
        if base_url is None:
            raise ConfigError(
                f"deployment {name!r} ({dep.provider}) needs base_url, e.g. "
                "https://YOUR-RESOURCE.openai.azure.com"
            )
        options = dict(preset.options)
        if dep.structured_output is not None:
            if preset.adapter != "openai":
                raise ConfigError(
                    f"deployment {name!r}: structured_output applies to the OpenAI wire format; "
                    f"{dep.provider} ({preset.adapter}) enforces a schema its own way: remove it"
                )
            options["structured_output"] = dep.structured_output
        endpoints.append(
            Endpoint(
                name=name,
                model=dep.model,
                wire_model=dep.provider_model or dep.model,
                provider=dep.provider,
                base_url=base_url,
                api_key=key,
                auth=preset.auth,
                api_version=dep.api_version or preset.api_version,
                headers=tuple(dep.headers.items()),
                extra_body=tuple(dep.extra_body.items()),
                options=tuple(options.items()),
                adapter=preset.adapter,
                weight=dep.weight,
                rpm=dep.rpm,
                tpm=dep.tpm,
                timeout=dep.timeout,
                tags=dep.tags,
            )
        )
    return endpoints
