"""The :class:`Deployment` and :class:`ClientConfig` models (import them from ``multimodel``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from . import _options

if TYPE_CHECKING:
    from .._core.clock import Clock
    from ..cache import CachePolicy, ResponseCache
    from ..catalog import Catalog
    from ..resilience.budget import Budget
    from ..resilience.circuit import CircuitPolicy
    from ..resilience.hedge import HedgePolicy
    from ..resilience.retry import RetryBudget, RetryPolicy
    from ..resilience.shared import RedisState
    from ..security._rules import Policy
    from ..security.limits import InputLimits
    from ..security.policy import PolicySet
    from ..strategies.base import Strategy
    from ..tracking.ledger import UsageLedger
    from ..tracking.quality import FeedbackPolicy
    from ..tracking.telemetry import Telemetry
else:
    # At run time these names serve only as annotations of ClientConfig's object-valued
    # fields, whose "plain" validators below check and convert the values, importing each
    # class when a value needs it: importing the configuration loads none of them.
    Clock = CachePolicy = ResponseCache = Catalog = Budget = CircuitPolicy = HedgePolicy = Any
    RetryBudget = RetryPolicy = Policy = InputLimits = PolicySet = Strategy = Any
    UsageLedger = Telemetry = FeedbackPolicy = RedisState = Any

__all__ = ["ClientConfig", "Deployment", "describe"]

AUTO = "auto"  # model="auto": every deployment is a candidate (not a group)
STRUCTURED_OUTPUT_MODES = ("json_schema", "json_mode")  # Deployment.structured_output

# Where the options being validated came from (see ClientConfig._checked).
_ORIGIN: ContextVar[Callable[[str], str | None] | None] = ContextVar("_ORIGIN", default=None)


class Deployment(BaseModel):
    """One model on one provider account.

    Args:
        model: the model group name callers ask for (``client.query(..., model=...)``).
        provider: a provider preset (``openai``, ``anthropic``, ``gemini``, ``azure``, ``groq``,
            ``deepseek``, ``mistral``, ``xai``, ``together``, ``fireworks``, ``openrouter``,
            ``qwen``, ``meta``, ``ollama``, ``vllm``) or one registered at run time.
        name: unique name for this deployment (default ``"{provider}/{model}"``).
        provider_model: the model id the provider expects (default: ``model``). For Azure,
            the Azure deployment name.
        api_key: the key; default: the provider's environment variable.
        base_url: override the preset's base URL (required for Azure).
        api_version: ``anthropic-version`` or Azure ``api-version``.
        headers: extra HTTP headers for every request.
        extra_body: extra JSON fields for every request body.
        weight: relative share for weighted strategies.
        rpm, tpm: client-side request / token rate limits per minute.
        timeout: per-attempt timeout in seconds (default: the client's).
        tags: free-form labels (tracking and budgets can group by them).
        structured_output: how this deployment is sent a ``response_format`` schema, for
            providers of the OpenAI wire format: ``"json_schema"`` (natively, held to the
            schema) or ``"json_mode"`` (JSON mode, the schema in a system message). Default:
            the provider's documented support, per model where it differs by model (see
            :doc:`/concepts/structured-outputs`). Anthropic and Gemini deployments take none.

    .. versionadded:: 0.1
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    name: str | None = None
    provider_model: str | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tags: tuple[str, ...] = ()
    structured_output: Literal["json_schema", "json_mode"] | None = None

    if not TYPE_CHECKING:  # type checkers keep pydantic's typed __init__

        def __init__(self, **data: Any) -> None:
            # The same error as the same entry in a dict or a config file gives.
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise ConfigError(_describe_deployment(exc)) from None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, e.g. https://{value}")
        return value

    @field_validator("structured_output", mode="before")
    @classmethod
    def _structured_mode(cls, value: Any) -> Any:
        if value is None or value in STRUCTURED_OUTPUT_MODES:
            return value
        raise ValueError(_options.unknown_name("unknown mode", value, STRUCTURED_OUTPUT_MODES))

    def __repr_args__(self) -> Any:
        # Extra headers may carry credentials (gateway keys): their names, not their values.
        for name, value in super().__repr_args__():
            if name == "headers" and value:
                yield name, dict.fromkeys(value, "**********")
            else:
                yield name, value

    @property
    def display_name(self) -> str:
        """``name``, or the default ``"{provider}/{model}"``."""
        return self.name or f"{self.provider}/{self.model}"


class ClientConfig(BaseModel):
    """Every option of a client, checked; ``client.config`` is the one in effect.

    ``Client(config=...)`` takes one, a dict, or a TOML or JSON file with the same names;
    options passed to the client as keywords override it (see :func:`load_config`). Objects
    such as ``retry`` may be given as tables of their fields (``retry = {max_retries = 3}``).
    A wrong value raises :class:`~multimodel.errors.ConfigError` naming the option.

    Args:
        deployments: the deployments to route over, at least one (``Deployment``, or tables).
        strategy: how a model group picks a deployment: a strategy name (default ``"adaptive"``;
            ``"intelligent"`` for ``model="auto"``), a ``{name = ..., **params}`` table, or
            a ``Strategy``.
        strategies: a strategy per model group (or ``"auto"``), as for ``strategy``.
        timeout: seconds one attempt may take in all (> 0; default 60).
        max_retries: retries after the first attempt (>= 0; default 2); wins over ``retry``'s.
        deadline: seconds one whole call may take, retries and a stream's body included (> 0;
            default: twice ``timeout``, without the body of a stream that is delivering).
        stream_idle_timeout: seconds a started stream may go without content (default: timeout).
        max_connections: connections the client keeps open at most, in use or idle, every
            deployment together (default 100, as httpx's and aiohttp's; half of them are kept
            idle for reuse). A request beyond them waits for one within its time limit, then
            fails with ``PoolExhausted``. It sizes the client's own transport (its pool,
            ``transport="aiohttp"`` or ``"httpx"``); an ``http_client`` or a transport object
            keeps its own limits, so it cannot be combined with them.
        retry: back-off between attempts: a ``RetryPolicy`` or table (default ``RetryPolicy()``).
        circuit: when a failing deployment is set aside: a ``CircuitPolicy`` or table.
        fallbacks: model groups to try next when one fails, ``{"gpt-4o": ["claude-3.5"]}``.
        context_fallbacks: the group that takes a prompt too long for another, ``{"a": "b"}``.
        retry_budget: the share of calls that may be retried: a ``RetryBudget`` or table.
        budgets: spend limits: ``Budget`` objects or tables.
        hedge: backup attempts for slow calls: a ``HedgePolicy`` or table (default: none).
        cache: the response cache: ``True`` (in memory), a ``CachePolicy`` or table, or a
            ``ResponseCache``.
        policies: access policies: a ``Policy`` or ``PolicySet``, or a table of either.
        limits: input size limits: an ``InputLimits`` or table (default ``DEFAULT_LIMITS``).
        catalog: model prices and limits: a ``Catalog``, or a model file over the bundled ones.
        telemetry: OpenTelemetry metrics and spans: ``True`` (default), ``False``, a ``Telemetry``.
        ledger: usage ledger: a SQLite file path or a ``UsageLedger`` (default: none).
        shared_state: routing state shared by many processes: a Redis URL or a ``RedisState``
            (default: none, each client keeps its own).
        clock: the time source (tests pass a ``ManualClock``; code only).
        feedback: how ``client.feedback`` scores become learned quality estimates: a
            ``FeedbackPolicy`` or table (half-life, prior strength, exploration floor).
        task_classifier: gives a request without ``task=`` its task: ``"heuristic"`` (the
            built-in one: code, long, multilingual) or a callable ``(request) -> str | None``
            (code only; default: none).
        unsupported_params: what happens to a known OpenAI parameter (``logprobs``,
            ``service_tier`` ...) that a deployment's provider has no equivalent for:
            ``"drop"`` (default: not sent, one ``DroppedParameterWarning``) or ``"error"`` (the
            call is refused with ``InvalidRequestError`` before anything is sent, when any
            deployment it could reach, fallbacks included, cannot take the parameter).
        structured_retries: with a ``response_format``, how many times an answer that does
            not validate is sent back with its errors to the deployment that gave it, before
            the model group's fallbacks are asked (default 1; ``0``: straight to the
            fallbacks). A call's own ``structured_retries=`` wins.
        env: where API keys are read from (default ``os.environ``); never shown in a repr.

    Model groups named by ``strategies``, ``fallbacks`` and ``context_fallbacks`` must be
    served by a deployment (or be ``"auto"``).

    .. versionadded:: 0.1
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )

    deployments: list[Deployment] = Field(min_length=1)
    strategy: str | dict[str, Any] | Strategy | None = None
    strategies: dict[str, str | dict[str, Any] | Strategy] = Field(default_factory=dict)
    timeout: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    max_retries: int = Field(default=2, ge=0)
    deadline: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    stream_idle_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_connections: int = Field(default=100, ge=1)
    retry: RetryPolicy | None = None
    circuit: CircuitPolicy | None = None
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    context_fallbacks: dict[str, str] = Field(default_factory=dict)
    retry_budget: RetryBudget | None = None
    budgets: tuple[Budget, ...] = ()
    hedge: HedgePolicy | None = None
    cache: bool | CachePolicy | ResponseCache | None = None
    policies: Policy | PolicySet | None = None
    limits: InputLimits | None = None
    catalog: Catalog | str | os.PathLike[str] | None = None
    telemetry: bool | Telemetry = True
    ledger: UsageLedger | str | os.PathLike[str] | None = None
    shared_state: RedisState | None = None
    clock: Clock | None = None
    feedback: FeedbackPolicy | None = None
    task_classifier: Callable[[Any], str | None] | str | None = None
    unsupported_params: Literal["drop", "error"] = "drop"
    structured_retries: int = Field(default=1, ge=0)
    env: dict[str, str] | None = Field(default=None, repr=False, exclude=True)

    if not TYPE_CHECKING:  # type checkers keep pydantic's typed __init__

        def __init__(self, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise ConfigError(describe(exc, _ORIGIN.get())) from None

    @classmethod
    def _checked(
        cls, data: Mapping[str, Any], origin: Callable[[str], str | None] | None = None
    ) -> ClientConfig:
        """``ClientConfig(**data)``; ``origin`` tells an error where an option came from."""
        token = _ORIGIN.set(origin)
        try:
            return cls(**data)
        finally:
            _ORIGIN.reset(token)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ClientConfig:
        """Read a TOML (``.toml``) or JSON (``.json``) file.

        Raises:
            ConfigError: the file cannot be read or parsed, or an option is invalid.
        """
        from ._load import load_config

        return load_config(path)

    # -- validation ------------------------------------------------------------------------

    @field_validator("strategy", mode="plain")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        return _options.as_strategy("strategy", value)

    @field_validator("strategies", mode="plain")
    @classmethod
    def _strategies(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError("strategies: expected a table of {model group: strategy}")
        return {
            str(group): _options.as_strategy(f"strategies.{group}", spec)
            for group, spec in value.items()
        }

    @field_validator("retry", "circuit", "hedge", "retry_budget", "limits", mode="plain")
    @classmethod
    def _policy_object(cls, value: Any, info: ValidationInfo) -> Any:
        return _options.as_policy_object(str(info.field_name), value)

    _budgets = field_validator("budgets", mode="plain")(_options.as_budgets)
    _cache = field_validator("cache", mode="plain")(_options.as_cache)
    _policies = field_validator("policies", mode="plain")(_options.as_policies)
    _catalog = field_validator("catalog", mode="plain")(_options.as_catalog)
    _telemetry = field_validator("telemetry", mode="plain")(_options.as_telemetry)
    _ledger = field_validator("ledger", mode="plain")(_options.as_ledger)
    _shared_state = field_validator("shared_state", mode="plain")(_options.as_shared_state)
    _clock = field_validator("clock", mode="plain")(_options.as_clock)

    @field_validator("feedback", mode="plain")
    @classmethod
    def _feedback(cls, value: Any) -> Any:
        from ..tracking.quality import as_feedback_policy

        return as_feedback_policy(value)

    @field_validator("task_classifier", mode="plain")
    @classmethod
    def _task_classifier(cls, value: Any) -> Any:
        if (
            value is None
            or value == "heuristic"
            or (callable(value) and not isinstance(value, str))
        ):
            return value
        raise ConfigError(
            'task_classifier: expected "heuristic" or a callable (request) -> str | None, '
            f"got {value!r}"
        )

    @model_validator(mode="before")
    @classmethod
    def _one_max_retries(cls, data: Any) -> Any:
        """``max_retries`` and ``retry.max_retries`` agree: the first if given, else the second."""
        if not isinstance(data, Mapping) or data.get("retry") is None:
            return data
        data = dict(data)
        retry = _options.as_policy_object("retry", data["retry"])
        count = data.get("max_retries")
        if count is None:
            data["max_retries"] = retry.max_retries
        elif isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            retry = retry.replace(max_retries=count)
        data["retry"] = retry
        return data

    @model_validator(mode="after")
    def _groups_exist(self) -> ClientConfig:
        groups = {d.model for d in self.deployments}
        named = [("strategies", group) for group in self.strategies]
        for group, chain in self.fallbacks.items():
            named += [("fallbacks", name) for name in (group, *chain)]
        for group, target in self.context_fallbacks.items():
            named += [("context_fallbacks", group), ("context_fallbacks", target)]
        for option, group in named:
            if group not in groups and group != AUTO:
                raise ConfigError(
                    _options.unknown_name(
                        f"{option}: no deployment serves the model group",
                        group,
                        groups,
                        known="groups",
                    )
                )
        return self


OPTIONS = tuple(ClientConfig.model_fields)
"""Every option's name, in order."""


def describe(exc: ValidationError, origin: Callable[[str], str | None] | None = None) -> str:
    """One message for a failed validation: each problem with the option it concerns, and
    (``origin``) where that option came from, e.g. the config file's name."""
    parts = []
    for err in exc.errors()[:5]:
        loc = err["loc"]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError) and str(cause).startswith(_BAD_DEPLOYMENT):
            # A deployment entry: its own message, under its place in the list.
            where = ".".join(str(p) for p in loc)
            rest = str(cause).removeprefix(_BAD_DEPLOYMENT)
            text = f"{where}{': ' if rest.startswith('unknown field') else '.'}{rest}"
        elif isinstance(cause, ConfigError):
            text = str(cause)
        elif err["type"] == "extra_forbidden" and len(loc) == 1:
            text = _options.unknown_name("unknown option", loc[0], OPTIONS)
        elif err["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "deployments":
            text = _options.unknown_name(
                f"deployments.{loc[1]}: unknown field", loc[2], Deployment.model_fields
            )
        else:
            where = ".".join(str(p) for p in loc) or "config"
            text = f"{where}: {cause if cause is not None else err['msg']}"
        source = origin(str(loc[0])) if origin is not None and loc else None
        parts.append(f"{source}: {text}" if source else text)
    if exc.error_count() > 5:
        parts.append(f"and {exc.error_count() - 5} more")
    return "invalid configuration: " + "; ".join(parts)


_BAD_DEPLOYMENT = "invalid Deployment: "


def _describe_deployment(exc: ValidationError) -> str:
    """The message for a ``Deployment(...)`` built with invalid fields."""
    parts = []
    for err in exc.errors()[:5]:
        loc = err["loc"]
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            parts.append(_options.unknown_name("unknown field", loc[0], Deployment.model_fields))
            continue
        cause = (err.get("ctx") or {}).get("error")
        where = ".".join(str(p) for p in loc) or "deployment"
        parts.append(f"{where}: {cause if cause is not None else err['msg']}")
    return _BAD_DEPLOYMENT + "; ".join(parts)
