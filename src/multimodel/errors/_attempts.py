"""The error that ends a call whose every attempt failed (:class:`AllAttemptsFailed`), and
the classes that make it also an instance of the attempts' common :class:`ProviderError` type.

Part of :mod:`multimodel.errors`, which re-exports every public name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._local import MultimodelError
from ._provider import ProviderError

__all__ = ["AllAttemptsFailed"]


class AllAttemptsFailed(MultimodelError):
    """Every attempt failed. ``errors`` holds each attempt's error in order; the last is chained.

    When every attempt failed with the same :class:`ProviderError` type (three 429s), the
    error raised is also an instance of that type, so ``except RateLimited`` (the OpenAI SDK's
    ``except RateLimitError``) catches it after the retries as it would a single failure; its
    ``status``, ``status_code``, ``response``, ``request_id``, ``body`` and ``retry_after``
    are the last attempt's. Failures of one family are an instance of the family: a 500 then
    a 503 (``Overloaded``) are a :class:`ServerError`, a timeout then a dropped connection a
    :class:`ProviderConnectionError`, as the SDK's last error would be. Other mixed failures
    are a plain ``AllAttemptsFailed``. Either way it is never ``retryable``: the retries are
    spent.
    """

    retryable = False

    def __new__(
        cls, model: str, errors: Sequence[BaseException] = (), *a: Any, **kw: Any
    ) -> AllAttemptsFailed:
        made = cls
        if cls is AllAttemptsFailed and errors:
            kind = _common_kind({type(e) for e in errors})
            if kind is not None:
                made = _alike_class(kind)
        return super().__new__(made)

    def __init__(self, model: str, errors: Sequence[BaseException], *, trace: Any = None) -> None:
        self.model = model
        self.errors = list(errors)
        parts = "; ".join(_short(e) for e in self.errors[-5:])
        message = f"all {len(self.errors)} attempt(s) for {model!r} failed: {parts}"
        if isinstance(self, ProviderError):
            last = self.errors[-1]
            assert isinstance(last, ProviderError)
            ProviderError.__init__(self, message)
            for name in _COPIED:
                if hasattr(last, name):
                    setattr(self, name, getattr(last, name))
            self.message = message
        else:
            super().__init__(message)
        self.trace = trace

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:
        return (AllAttemptsFailed, (self.model, self.errors), {"trace": self.trace})

    @property
    def last(self) -> BaseException | None:
        """The last attempt's error."""
        return self.errors[-1] if self.errors else None


_COPIED = (
    "provider",
    "deployment",
    "status",
    "request_id",
    "code",
    "body",
    "headers",
    "retry_after",
    "partial_text",
)


_ALIKE: dict[type[ProviderError], type[AllAttemptsFailed]] = {}


def _common_kind(kinds: set[type[BaseException]]) -> type[ProviderError] | None:
    """The most specific :class:`ProviderError` subclass every kind is (``ProviderError``
    itself says nothing the plain ``AllAttemptsFailed`` does not), or ``None``."""
    first = next(iter(kinds))
    for base in first.__mro__:
        if base is ProviderError or not issubclass(base, ProviderError):
            return None
        if issubclass(base, AllAttemptsFailed):
            continue
        if all(issubclass(k, base) for k in kinds):
            return base
    return None  # pragma: no cover - the loop reaches ProviderError or object first


def _alike_class(kind: type[ProviderError]) -> type[AllAttemptsFailed]:
    """``AllAttemptsFailed`` that is also a ``kind`` (one class per kind, made on first use)."""
    made = _ALIKE.get(kind)
    if made is None:
        made = type(
            f"AllAttemptsFailed[{kind.__name__}]",
            (AllAttemptsFailed, kind),
            {"__module__": "multimodel.errors", "__doc__": AllAttemptsFailed.__doc__},
        )
        _ALIKE[kind] = made
    return made


def _short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}"
