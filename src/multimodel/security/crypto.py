"""At-rest encryption for what multimodel writes to disk (AES-256-GCM, key rotation).

Needs the optional ``cryptography`` package: ``pip install multimodel[crypto]``. It is imported
only when an :class:`Encryptor` is made, so importing this module costs nothing.

Every record is sealed with AES-256-GCM under a fresh random 96-bit nonce and bound to its
place by *associated data* (e.g. ``b"ledger:contents:42:prompt"``): a record copied to another
row, altered, or read with another key fails with :class:`DecryptionError` instead of returning
garbage. The stored form is ASCII::

    mm1:<key id>:<base64url, unpadded, of nonce (12 bytes) || ciphertext || tag (16 bytes)>

The header (``mm1:<key id>:``) is authenticated too (it is prefixed to the associated data), so
the key id cannot be swapped. The key id tells :meth:`Encryptor.decrypt` which key to ask the
:class:`KeyProvider` for, so old records stay readable after the current key changes.

Example::

    from multimodel.security import EncryptedContentCodec, Encryptor, EnvKeyProvider

    enc = Encryptor(EnvKeyProvider())           # reads MULTIMODEL_ENCRYPTION_KEY
    token = enc.encrypt("secret prompt", associated_data=b"ledger:contents:7:prompt")
    enc.decrypt(token, associated_data=b"ledger:contents:7:prompt")   # b'secret prompt'

    codec = EncryptedContentCodec(enc)          # what the usage ledger plugs in
    stored = codec.encode("secret prompt", 7, column="prompt")
    codec.decode(stored, 7, column="prompt")    # 'secret prompt'

Keys come from a :class:`~multimodel.security.keys.KeyProvider` (see
:mod:`multimodel.security.keys`). Random nonces are safe for about 2**32 records per key;
rotate the key long before that.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError, DecryptionError
from .keys import (
    DEFAULT_KEY_ENV,
    KEY_ID_PATTERN,
    EnvKeyProvider,
    KeyProvider,
    StaticKeyProvider,
    _check_key,
    _check_key_id,
    generate_key,
    key_id_for,
)

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DEFAULT_KEY_ENV",
    "ContentCodec",
    "DecryptionError",
    "EncryptedContentCodec",
    "Encryptor",
    "EnvKeyProvider",
    "KeyProvider",
    "StaticKeyProvider",
    "generate_key",
    "is_encrypted",
    "key_id_for",
]

NONCE_BYTES = 12
TAG_BYTES = 16
PREFIX = b"mm1:"
_INSTALL_HINT = "install it with `pip install multimodel[crypto]`"


# --- encryption ------------------------------------------------------------------------------


def _aesgcm_class() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise ConfigError(
            f"encryption needs the optional 'cryptography' package: {_INSTALL_HINT}"
        ) from exc
    return AESGCM


def is_encrypted(value: str | bytes | None) -> bool:
    """Whether ``value`` looks like a record made by :meth:`Encryptor.encrypt`."""
    if isinstance(value, str):
        return value.startswith(PREFIX.decode())
    return isinstance(value, bytes) and value.startswith(PREFIX)


class Encryptor:
    """Seal and open records with AES-256-GCM under the keys of a :class:`KeyProvider`.

    Thread-safe. ``associated_data`` is required on both sides: it binds a record to where it
    is stored (``f"ledger:contents:{row_id}:prompt".encode()``), so a record moved elsewhere
    does not decrypt.

    Example::

        enc = Encryptor(StaticKeyProvider({"k1": key}, current="k1"))
        token = enc.encrypt(b"hello", associated_data=b"row:1")   # b'mm1:k1:...'
        assert enc.decrypt(token, associated_data=b"row:1") == b"hello"

    Raises:
        ConfigError: ``cryptography`` is not installed (``pip install multimodel[crypto]``),
            or the provider's current key is invalid.
    """

    def __init__(self, provider: KeyProvider) -> None:
        self._aesgcm = _aesgcm_class()
        self.provider = provider
        self._lock = threading.Lock()
        self._ciphers: dict[bytes, AESGCM] = {}
        self._cipher(self._current()[1])  # a bad current key fails here, not at first write

    def _current(self) -> tuple[str, bytes]:
        key_id, key = self.provider.current()
        return _check_key_id(key_id), _check_key(key, f"current key {key_id!r}")

    def _cipher(self, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key)
        if cipher is None:
            cipher = self._aesgcm(key)
            with self._lock:
                if len(self._ciphers) >= 64:
                    self._ciphers.clear()
                self._ciphers[key] = cipher
        return cipher

    def encrypt(self, plaintext: bytes | str, *, associated_data: bytes) -> bytes:
        """Seal ``plaintext`` (``str`` is UTF-8 encoded) under the current key and a fresh
        nonce; returns ``b"mm1:<key id>:<base64url>"`` (ASCII)."""
        data = plaintext.encode("utf-8") if isinstance(plaintext, str) else bytes(plaintext)
        ad = _check_ad(associated_data)
        key_id, key = self._current()
        header = PREFIX + key_id.encode("ascii") + b":"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(key).encrypt(nonce, data, header + ad)
        return header + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=")

    def decrypt(self, token: bytes | str, *, associated_data: bytes) -> bytes:
        """Open a record made by :meth:`encrypt` with the same ``associated_data``.

        Raises:
            DecryptionError: the record is malformed, altered, bound to other associated data,
                sealed under a different key, or names a key id the provider does not know.
        """
        ad = _check_ad(associated_data)
        raw = token.encode("ascii", "replace") if isinstance(token, str) else bytes(token)
        if not raw.startswith(PREFIX):
            raise DecryptionError("not an encrypted record (it does not start with 'mm1:')")
        key_part, sep, body = raw[len(PREFIX) :].partition(b":")
        key_id = key_part.decode("ascii", "replace")
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise DecryptionError("malformed encrypted record: bad key id header")
        try:
            blob = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise DecryptionError("malformed encrypted record: body is not base64url") from None
        if len(blob) < NONCE_BYTES + TAG_BYTES or base64.urlsafe_b64encode(blob).rstrip(
            b"="
        ) != body.rstrip(b"="):
            raise DecryptionError("malformed encrypted record: body is truncated or not canonical")
        try:
            key = self.provider.get(key_id)
        except LookupError:
            raise DecryptionError(
                f"record was encrypted with key id {key_id!r}, which the key provider does not "
                "have: keep retired keys available to decrypt old records"
            ) from None
        key = _check_key(key, f"key {key_id!r}")
        from cryptography.exceptions import InvalidTag

        try:
            return self._cipher(key).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], PREFIX + key_part + b":" + ad
            )
        except InvalidTag:
            raise DecryptionError(
                f"record failed authentication (key id {key_id!r}): it was altered, sealed "
                "under a different key, or belongs to other associated data (another row)"
            ) from None

    def __repr__(self) -> str:
        return f"Encryptor({self.provider!r})"


def _check_ad(associated_data: object) -> bytes:
    if not isinstance(associated_data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"associated_data must be bytes, not {type(associated_data).__name__} "
            "(e.g. f'ledger:contents:{row_id}'.encode())"
        )
    return bytes(associated_data)


# --- the usage ledger's content codec --------------------------------------------------------


class ContentCodec(Protocol):
    """How the usage ledger transforms ``contents`` cells on the way in and out."""

    def encode_row(
        self, row_id: int, prompt: str | None, response: str | None
    ) -> tuple[str | None, str | None]:
        """The ``(prompt, response)`` to store for usage row ``row_id``."""
        ...

    def decode_row(
        self, row_id: int, prompt: str | None, response: str | None
    ) -> tuple[str | None, str | None]:
        """The ``(prompt, response)`` read back from usage row ``row_id``."""
        ...


class EncryptedContentCodec:
    """Encrypt the usage ledger's stored prompts and responses, each bound to its row and column.

    A cell's associated data is ``f"{namespace}:{row_id}:{column}"`` (default namespace
    ``"ledger:contents"``), so a cell copied to another row, or a prompt swapped with its
    response, fails to decrypt. ``None`` stays ``None``.

    ``allow_plaintext=True`` lets :meth:`decode` return cells that are not encrypted as they
    are (rows written before encryption was turned on); by default they raise, so an attacker
    with write access to the file cannot plant unauthenticated content.

    Example::

        codec = EncryptedContentCodec(Encryptor(EnvKeyProvider()))
        stored = codec.encode("what is 2+2?", row_id=12, column="prompt")
        codec.decode(stored, row_id=12, column="prompt")        # 'what is 2+2?'
        codec.encode_row(12, "what is 2+2?", "4")               # ('mm1:…', 'mm1:…')
    """

    def __init__(
        self,
        encryptor: Encryptor,
        *,
        namespace: str = "ledger:contents",
        allow_plaintext: bool = False,
    ) -> None:
        self.encryptor = encryptor
        self.namespace = namespace
        self.allow_plaintext = allow_plaintext

    def _ad(self, row_id: int, column: str) -> bytes:
        if isinstance(row_id, bool) or not isinstance(row_id, int):
            raise TypeError(f"row_id must be an int, not {type(row_id).__name__}")
        return f"{self.namespace}:{row_id}:{column}".encode()

    def encode(self, text: str, row_id: int, *, column: str = "content") -> str:
        """The encrypted, storable (ASCII) form of ``text`` for ``row_id``'s ``column``."""
        return self.encryptor.encrypt(text, associated_data=self._ad(row_id, column)).decode(
            "ascii"
        )

    def decode(self, stored: str, row_id: int, *, column: str = "content") -> str:
        """The text :meth:`encode` sealed for the same ``row_id`` and ``column``.

        Raises:
            DecryptionError: see :meth:`Encryptor.decrypt`; also for a plaintext cell unless
                ``allow_plaintext``, and for a record that is not UTF-8.
        """
        if self.allow_plaintext and not is_encrypted(stored):
            return stored
        data = self.encryptor.decrypt(stored, associated_data=self._ad(row_id, column))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("decrypted record is not UTF-8 text") from None

    def encode_row(
        self, row_id: int, prompt: str | None, response: str | None
    ) -> tuple[str | None, str | None]:
        """Encode a ``contents`` row's ``prompt`` and ``response`` (``None`` stays ``None``)."""
        return (
            None if prompt is None else self.encode(prompt, row_id, column="prompt"),
            None if response is None else self.encode(response, row_id, column="response"),
        )

    def decode_row(
        self, row_id: int, prompt: str | None, response: str | None
    ) -> tuple[str | None, str | None]:
        """Decode what :meth:`encode_row` stored for ``row_id``."""
        return (
            None if prompt is None else self.decode(prompt, row_id, column="prompt"),
            None if response is None else self.decode(response, row_id, column="response"),
        )

    def __repr__(self) -> str:
        return f"EncryptedContentCodec({self.encryptor!r}, namespace={self.namespace!r})"
