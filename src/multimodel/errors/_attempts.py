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
    are the last attempt's. Mixed failures are a plain ``AllAttemptsFailed``. Either way it is
    never ``retryable``: the retries are spent.
    """

    retryable = False

    def __new__(
        cls, model: str, errors: Sequence[BaseException] = (), *a: Any, **kw: Any
    ) -> AllAttemptsFailed:
        kinds = {type(e) for e in errors}
        made = cls
        if cls is AllAttemptsFailed and len(kinds) == 1:
            (kind,) = kinds
            if issubclass(kind, ProviderError) and not issubclass(kind, AllAttemptsFailed):
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
