"""Key providers for :mod:`multimodel.security.crypto`: where 32-byte AES keys come from.

A key has an id, stored beside every record it seals, so that old records stay readable after
the current key changes (rotation). :class:`EnvKeyProvider` reads a base64 key from the
environment; :class:`StaticKeyProvider` takes keys in code; anything with ``current()`` and
``get(key_id)`` is a :class:`KeyProvider` (a KMS or vault client, say).

Example::

    from multimodel.security import EnvKeyProvider, StaticKeyProvider, generate_key

    generate_key()                          # 'q3V1...=': put it in MULTIMODEL_ENCRYPTION_KEY
    EnvKeyProvider().current()              # ('1f2e3d4c', b'...')
    StaticKeyProvider({"2024": old, "2025": new}, current="2025").get("2024")   # old
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping
from typing import Protocol

from ..errors import ConfigError

__all__ = [
    "DEFAULT_KEY_ENV",
    "KEY_BYTES",
    "KEY_ID_PATTERN",
    "EnvKeyProvider",
    "KeyProvider",
    "StaticKeyProvider",
    "generate_key",
    "key_id_for",
]

DEFAULT_KEY_ENV = "MULTIMODEL_ENCRYPTION_KEY"
"""The environment variable :class:`EnvKeyProvider` reads by default."""

KEY_BYTES = 32
"""AES-256 key length."""

KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
"""What a key id may look like (it is written into every record's header)."""


class KeyProvider(Protocol):
    """Where an :class:`Encryptor` gets its keys.

    ``current()`` returns ``(key id, 32-byte key)`` to encrypt new records with; ``get(key_id)``
    returns the key a stored record names, and raises :class:`LookupError` (e.g. ``KeyError``)
    when it does not know it. Keep retired keys available through ``get`` until every record
    sealed with them is re-encrypted or deleted.
    """

    def current(self) -> tuple[str, bytes]:
        """The key id and key new records are encrypted with."""
        ...

    def get(self, key_id: str) -> bytes:
        """The key with id ``key_id``; raises :class:`LookupError` when unknown."""
        ...


def generate_key() -> str:
    """A new random 32-byte key, base64-encoded (standard alphabet), for the environment.

    Example::

        $ python -c "from multimodel.security import generate_key; print(generate_key())"
        $ export MULTIMODEL_ENCRYPTION_KEY=...    # keep it in your secret store
    """
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id_for(key: bytes) -> str:
    """The key id :class:`EnvKeyProvider` derives: the first 8 hex digits of SHA-256(key).

    It identifies a key without revealing it (it is stored beside every record).
    """
    return hashlib.sha256(key).hexdigest()[:8]


def _check_key(key: object, what: str) -> bytes:
    if not isinstance(key, (bytes, bytearray)):
        raise ConfigError(f"{what} must be bytes, not {type(key).__name__}")
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{what} is {len(key)} bytes; AES-256 needs exactly {KEY_BYTES} "
            "(make one with multimodel.security.generate_key())"
        )
    return bytes(key)


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not KEY_ID_PATTERN.match(key_id):
        raise ConfigError(
            f"key id {key_id!r} is invalid: use 1-64 characters from A-Z a-z 0-9 _ . -"
        )
    return key_id


def _decode_key(text: str, source: str) -> bytes:
    """Decode a base64 key (standard or urlsafe alphabet, padding optional); never echo it."""
    compact = "".join(text.split()).translate(str.maketrans("-_", "+/"))
    if not compact:
        raise ConfigError(f"{source} is empty: set it to a base64-encoded {KEY_BYTES}-byte key")
    compact += "=" * (-len(compact) % 4)
    try:
        key = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{source} is not valid base64: set it to a base64-encoded {KEY_BYTES}-byte key "
            "(multimodel.security.generate_key() makes one)"
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{source} decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES} "
            "(multimodel.security.generate_key() makes one)"
        )
    return key


class StaticKeyProvider:
    """Keys given in code: ``{key id: 32-byte key}`` and which one is current.

    Example, rotating from ``"2024"`` to ``"2025"`` (old records stay readable)::

        keys = StaticKeyProvider({"2024": old_key, "2025": new_key}, current="2025")
    """

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        self._keys = {_check_key_id(k): _check_key(v, f"key {k!r}") for k, v in keys.items()}
        if current not in self._keys:
            raise ConfigError(
                f"current key id {current!r} is not among the keys "
                f"({', '.join(map(repr, sorted(self._keys))) or 'none'})"
            )
        self._current = current

    def current(self) -> tuple[str, bytes]:
        """See :meth:`KeyProvider.current`."""
        return self._current, self._keys[self._current]

    def get(self, key_id: str) -> bytes:
        """See :meth:`KeyProvider.get`; raises ``KeyError`` for an unknown id."""
        return self._keys[key_id]

    def __repr__(self) -> str:
        return f"StaticKeyProvider(key_ids={sorted(self._keys)!r}, current={self._current!r})"


class EnvKeyProvider:
    """The key from an environment variable (base64, standard or urlsafe, of 32 bytes).

    The key id is :func:`key_id_for` the key. For rotation, put retired keys in
    ``previous_var`` (comma-separated): they decrypt old records but never encrypt new ones.
    The environment is read once, here, so a missing or malformed key fails at start-up.

    Example::

        provider = EnvKeyProvider()                                  # MULTIMODEL_ENCRYPTION_KEY
        provider = EnvKeyProvider(previous_var="MULTIMODEL_ENCRYPTION_KEY_PREVIOUS")

    Raises:
        ConfigError: the variable is unset, empty, not base64 or not 32 bytes (the message
            names the variable, never the value).
    """

    def __init__(
        self,
        var: str = DEFAULT_KEY_ENV,
        *,
        previous_var: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.var = var
        text = env.get(var)
        if text is None:
            raise ConfigError(
                f"{var} is not set: set it to a base64-encoded {KEY_BYTES}-byte key, e.g. the "
                'output of `python -c "from multimodel.security import generate_key; '
                'print(generate_key())"`'
            )
        key = _decode_key(text, var)
        self._current = (key_id_for(key), key)
        self._keys = {self._current[0]: key}
        if previous_var is not None:
            for i, part in enumerate(p for p in env.get(previous_var, "").split(",") if p.strip()):
                old = _decode_key(part, f"{previous_var} (key #{i + 1})")
                self._keys.setdefault(key_id_for(old), old)

    def current(self) -> tuple[str, bytes]:
        """See :meth:`KeyProvider.current`."""
        return self._current

    def get(self, key_id: str) -> bytes:
        """See :meth:`KeyProvider.get`; raises ``KeyError`` for an unknown id."""
        return self._keys[key_id]

    def __repr__(self) -> str:
        return f"EnvKeyProvider(var={self.var!r}, key_ids={sorted(self._keys)!r})"
