"""Redaction of secrets: anything that looks like an API key, and a deployment's own secrets
by value, in error messages and (nested) error bodies.

Part of :mod:`multimodel.errors`, which re-exports :func:`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["redact"]

# Bodies sometimes echo request headers or keys back ("Incorrect API key provided: sk-abc...").
_SECRET_PATTERNS = re.compile(
    r"(?i)("
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"  # OpenAI / Anthropic style keys
    r"|AIza[0-9A-Za-z_\-]{10,}"  # Google API keys
    r"|(?:bearer)\s+[A-Za-z0-9._\-]{8,}"
    r"|(?:x-api-key|api-key|x-goog-api-key|authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?:bearer\s+)?[^\s\"',}]+"
    r")"
)


_MIN_SECRET_CHARS = 4
"""Shorter secrets are not redacted by value (they would blank out ordinary words)."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace anything that looks like an API key, and each of ``secrets`` wherever it occurs
    (literally: a secret may hold any character), with ``[REDACTED]``.

    Give longer secrets first when one may contain another.
    """
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS and secret in text:
            text = text.replace(secret, "[REDACTED]")
    return _SECRET_PATTERNS.sub("[REDACTED]", text)


def _redact_optional(text: str | None, secrets: tuple[str, ...]) -> str | None:
    return redact(text, secrets) if isinstance(text, str) else text


def _redact_body(body: Any, secrets: tuple[str, ...] = (), depth: int = 0) -> Any:
    """A copy of a decoded error body with every string (keys too) redacted: bodies can echo
    keys and request headers, at any depth. Beyond 20 levels the rest is dropped."""
    if isinstance(body, str):
        return redact(body, secrets)
    if depth > 20:
        return None
    if isinstance(body, dict):
        return {
            (redact(k, secrets) if isinstance(k, str) else k): _redact_body(v, secrets, depth + 1)
            for k, v in body.items()
        }
    if isinstance(body, list | tuple):
        return [_redact_body(v, secrets, depth + 1) for v in body]
    return body
