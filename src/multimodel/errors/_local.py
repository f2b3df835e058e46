"""The root of the error tree and the errors raised without a provider failing: bad
configuration, refused requests, unknown models, exhausted candidates, budgets, policies,
closed clients, structured-output mismatches; and the library's warnings.

Part of :mod:`multimodel.errors`, which re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._core.suggest import close_matches

__all__ = [
    "BudgetExceeded",
    "ClientClosed",
    "ConfigError",
    "DecryptionError",
    "DroppedParameterWarning",
    "InvalidRequestError",
    "MissingAPIKeyError",
    "MultimodelError",
    "NoDeploymentAvailable",
    "PolicyViolation",
    "PoolExhausted",
    "PricingWarning",
    "SharedStateUnavailable",
    "StructuredOutputError",
    "UnknownModelError",
    "UnknownResponseError",
]


class MultimodelError(Exception):
    """Base class of every error raised by multimodel.

    Attributes:
        trace: the routing trace of the call that failed, when routing got that far.
    """

    trace: Any = None


class ConfigError(MultimodelError, ValueError):
    """The client, a deployment or a config file is invalid. The message says what to change."""


class MissingAPIKeyError(ConfigError):
    """A deployment has no API key.

    Attributes:
        env_var: the environment variable that would provide the key.
    """

    def __init__(self, deployment: str, provider: str, env_var: str | None) -> None:
        self.deployment = deployment
        self.provider = provider
        self.env_var = env_var
        hint = f"set the {env_var} environment variable or " if env_var else ""
        super().__init__(
            f"deployment {deployment!r} ({provider}) has no API key: {hint}pass api_key=... "
            "to its Deployment"
        )


class InvalidRequestError(MultimodelError, ValueError):
    """A request was refused before anything was sent.

    Attributes:
        field: the offending field (dotted path), when one is to blame.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class UnknownModelError(MultimodelError, LookupError):
    """No configured deployment serves the requested model.

    Attributes:
        model: the name asked for.
        suggestions: configured model names close to it.
    """

    def __init__(self, model: str, known: Iterable[str]) -> None:
        known = sorted(set(known))
        self.model = model
        self.suggestions = close_matches(model, known, n=3, cutoff=0.5)
        hint = (
            f"; did you mean {', '.join(map(repr, self.suggestions))}?"
            if self.suggestions
            else (f"; configured models: {', '.join(known)}" if known else "")
        )
        super().__init__(f"no deployment serves model {model!r}{hint}")


class NoDeploymentAvailable(MultimodelError):
    """Every candidate deployment was excluded before sending.

    Attributes:
        model: the model group.
        exclusions: ``{deployment name: reason}`` for each candidate.
        retry_at: the earliest monotonic time a candidate may become available, if known.
    """

    def __init__(
        self,
        model: str,
        exclusions: dict[str, str],
        *,
        retry_at: float | None = None,
        trace: Any = None,
    ) -> None:
        self.model = model
        self.exclusions = dict(exclusions)
        self.retry_at = retry_at
        self.trace = trace
        why = "; ".join(f"{name}: {reason}" for name, reason in exclusions.items()) or "none"
        super().__init__(f"no deployment of {model!r} is available ({why})")


class BudgetExceeded(MultimodelError):
    """A hard spend limit covers every candidate; nothing was sent."""


class PolicyViolation(MultimodelError):
    """The caller's policy forbids this request; nothing was sent."""


class DecryptionError(MultimodelError):
    """A record could not be decrypted: altered, malformed, bound to other associated data,
    sealed under another key, or its key id is unknown. No plaintext is ever returned."""


class PoolExhausted(MultimodelError):
    """No connection of the client's own pool came free within the attempt's time limit.

    The limit is local (the client's ``max_connections`` option, shared by every deployment,
    or the limits of the ``http_client`` it was given),
    so this never counts against a deployment: no failure is recorded, no breaker opens, no
    cooldown starts, and the call is not retried elsewhere. Too many requests in flight, or
    streams left open (use ``with client.stream(...)``), exhaust it.
    """


class SharedStateUnavailable(MultimodelError):
    """The shared state (Redis) did not answer within its ``op_timeout`` and the client was
    built with ``RedisState(..., on_unavailable="fail")``; nothing was sent.

    .. versionadded:: 0.2
    """


class ClientClosed(MultimodelError, RuntimeError):
    """The client was closed; build a new one (or call before ``close()``)."""


class UnknownResponseError(MultimodelError, LookupError):
    """Feedback named a response id or request id that this client does not remember and its
    ledger (if any) has no row for; ``key`` is the id given.

    .. versionadded:: 0.2
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class StructuredOutputError(MultimodelError):
    """The model's answer does not fit the requested ``response_format`` (not JSON, or JSON
    that fails validation), after the structured-output retries, if any.

    Attributes:
        raw_text: the answer's text as the model produced it.
        errors: the validation errors: pydantic's ``errors()`` list for a model, or
            ``{"loc", "msg"}`` dicts for a JSON-schema dict.
        response: the :class:`~multimodel.types.ChatResponse` that failed (usage, cost and
            deployment included), when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        raw_text: str = "",
        errors: Sequence[Any] = (),
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.errors = list(errors)
        self.response = response


class DroppedParameterWarning(UserWarning):
    """An OpenAI parameter (``frequency_penalty``, ``logprobs`` ...) has no equivalent on the
    provider that serves the call, so it was not sent there (warned once per provider and
    parameter). ``extra_body`` sends a provider's own fields."""


class PricingWarning(UserWarning):
    """A model's price is unknown, so its cost is reported as ``None`` (warned once per model)."""
