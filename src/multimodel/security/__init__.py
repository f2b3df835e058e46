"""Security helpers: at-rest encryption, access policies and input limits.

Importing this package does no I/O and does not import ``cryptography``; that happens when an
:class:`Encryptor` is made (install it with ``pip install multimodel[crypto]``).

Example::

    from multimodel.security import InputLimits, Policy, check, check_request

    check_request(request, InputLimits(max_messages=100))
    allowed, excluded, request = check(Policy(name="cheap", max_cost_per_request="0.01"),
                                       request, candidates)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .crypto import (
        DEFAULT_KEY_ENV,
        ContentCodec,
        DecryptionError,
        EncryptedContentCodec,
        Encryptor,
        EnvKeyProvider,
        KeyProvider,
        StaticKeyProvider,
        generate_key,
        is_encrypted,
        key_id_for,
    )
    from .limits import (
        DEFAULT_LIMITS,
        InputLimits,
        check_batch,
        check_inputs,
        check_request,
        request_size,
    )
    from .policy import (
        Policy,
        PolicyResult,
        PolicySet,
        check,
        enforce_request,
        estimated_cost,
        filter_candidates,
        violation,
    )

_LAZY = {
    "ContentCodec": ".crypto",
    "DEFAULT_KEY_ENV": ".crypto",
    "DEFAULT_LIMITS": ".limits",
    "DecryptionError": ".crypto",
    "EncryptedContentCodec": ".crypto",
    "Encryptor": ".crypto",
    "EnvKeyProvider": ".crypto",
    "InputLimits": ".limits",
    "KeyProvider": ".crypto",
    "Policy": ".policy",
    "PolicyResult": ".policy",
    "PolicySet": ".policy",
    "StaticKeyProvider": ".crypto",
    "check": ".policy",
    "check_batch": ".limits",
    "check_inputs": ".limits",
    "check_request": ".limits",
    "enforce_request": ".policy",
    "estimated_cost": ".policy",
    "filter_candidates": ".policy",
    "generate_key": ".crypto",
    "is_encrypted": ".crypto",
    "key_id_for": ".crypto",
    "request_size": ".limits",
    "violation": ".policy",
}


__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_LIMITS",
    "ContentCodec",
    "DecryptionError",
    "EncryptedContentCodec",
    "Encryptor",
    "EnvKeyProvider",
    "InputLimits",
    "KeyProvider",
    "Policy",
    "PolicyResult",
    "PolicySet",
    "StaticKeyProvider",
    "check",
    "check_batch",
    "check_inputs",
    "check_request",
    "enforce_request",
    "estimated_cost",
    "filter_candidates",
    "generate_key",
    "is_encrypted",
    "key_id_for",
    "request_size",
    "violation",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
