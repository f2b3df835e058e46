"""At-rest encryption: AES-256-GCM records, key providers, rotation and the ledger codec."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from multimodel.errors import ConfigError, MultimodelError
from multimodel.security import (
    DecryptionError,
    EncryptedContentCodec,
    Encryptor,
    EnvKeyProvider,
    StaticKeyProvider,
    generate_key,
    is_encrypted,
    key_id_for,
)

needs_crypto = pytest.mark.skipif(
    importlib.util.find_spec("cryptography") is None,
    reason="needs the crypto extra: pip install 'multimodel[crypto]'",
)

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
AD = b"ledger:contents:1"


def enc(keys: dict[str, bytes] | None = None, current: str = "k1") -> Encryptor:
    return Encryptor(StaticKeyProvider(keys or {"k1": K1}, current=current))


# --- the missing extra ---------------------------------------------------------------------


def test_missing_cryptography_is_a_config_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(ConfigError, match=r"pip install multimodel\[crypto\]"):
        Encryptor(StaticKeyProvider({"k1": K1}, current="k1"))


def test_import_does_no_io_and_does_not_import_cryptography() -> None:
    code = (
        "import builtins, os, sys\n"
        "real_open = builtins.open\n"
        "opened = []\n"
        "def spy(f, *a, **k):\n"
        "    opened.append(str(f)); return real_open(f, *a, **k)\n"
        "builtins.open = spy\n"
        "os.environ.pop('MULTIMODEL_ENCRYPTION_KEY', None)\n"
        "import multimodel.security\n"
        "assert not [f for f in opened if not f.endswith('.py')], opened\n"
        "assert not [m for m in sys.modules if m.startswith('cryptography')]\n"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


# --- round trips ---------------------------------------------------------------------------


@needs_crypto
@pytest.mark.parametrize("plaintext", ["hello", "", "héllo ✓ 日本", b"\x00\xff raw bytes"])
def test_round_trip(plaintext: str | bytes) -> None:
    e = enc()
    token = e.encrypt(plaintext, associated_data=AD)
    expected = plaintext.encode() if isinstance(plaintext, str) else plaintext
    assert e.decrypt(token, associated_data=AD) == expected
    assert e.decrypt(token.decode("ascii"), associated_data=AD) == expected  # str tokens too


@needs_crypto
def test_format_is_documented_ascii_envelope() -> None:
    token = enc().encrypt(b"abc", associated_data=AD)
    assert token.startswith(b"mm1:k1:")
    assert is_encrypted(token)
    assert is_encrypted(token.decode())
    assert not is_encrypted("plain text")
    assert not is_encrypted(None)
    body = token.split(b":", 2)[2]
    blob = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
    assert len(blob) == 12 + 3 + 16  # nonce || ciphertext || tag
    assert b"abc" not in token


@needs_crypto
def test_fresh_nonce_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    e = enc()
    a = e.encrypt("same text", associated_data=AD)
    b = e.encrypt("same text", associated_data=AD)
    assert a != b
    calls: list[int] = []
    real = os.urandom

    def spy(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", spy)
    e.encrypt("x", associated_data=AD)
    e.encrypt("x", associated_data=AD)
    assert calls == [12, 12]


@needs_crypto
def test_tampering_any_character_of_the_token_is_detected() -> None:
    e = enc()
    token = e.encrypt("attack at dawn", associated_data=AD).decode()
    for i, ch in enumerate(token):
        for sub in {"A", "b", "-", "0", ":"} - {ch}:
            forged = token[:i] + sub + token[i + 1 :]
            with pytest.raises(DecryptionError):
                e.decrypt(forged, associated_data=AD)


@needs_crypto
def test_flipping_any_bit_of_nonce_ciphertext_or_tag_is_detected() -> None:
    e = enc()
    token = e.encrypt("attack at dawn", associated_data=AD)
    header, body = token.rsplit(b":", 1)
    blob = bytearray(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            forged = bytearray(blob)
            forged[i] ^= bit
            forged_token = header + b":" + base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=")
            with pytest.raises(DecryptionError, match="failed authentication"):
                e.decrypt(forged_token, associated_data=AD)


@needs_crypto
@pytest.mark.parametrize(
    "token",
    [b"", b"mm1:", b"mm1:k1", b"mm1:k1:", b"mm1:k1:AAAA", b"mm2:k1:AAAA", b"mm1:k 1:AAAA",
     "mm1:k1:é", b"mm1:k1:" + b"!" * 60, b"garbage"],
)  # fmt: skip
def test_malformed_tokens_raise_decryption_error(token: bytes | str) -> None:
    with pytest.raises(DecryptionError):
        enc().decrypt(token, associated_data=AD)


@needs_crypto
def test_truncated_and_extended_tokens_fail() -> None:
    e = enc()
    token = e.encrypt("some longer text here", associated_data=AD)
    for cut in range(1, len(token)):
        with pytest.raises(DecryptionError):
            e.decrypt(token[:cut], associated_data=AD)
    with pytest.raises(DecryptionError):
        e.decrypt(token + b"AAAA", associated_data=AD)


@needs_crypto
def test_wrong_key_with_the_same_id_fails() -> None:
    token = enc({"k1": K1}).encrypt("secret", associated_data=AD)
    with pytest.raises(DecryptionError, match="different key"):
        enc({"k1": K2}).decrypt(token, associated_data=AD)


@needs_crypto
def test_wrong_associated_data_fails() -> None:
    e = enc()
    token = e.encrypt("row one", associated_data=b"ledger:contents:1")
    with pytest.raises(DecryptionError, match="associated data"):
        e.decrypt(token, associated_data=b"ledger:contents:2")
    with pytest.raises(DecryptionError):
        e.decrypt(token, associated_data=b"")


@needs_crypto
def test_header_key_id_is_authenticated() -> None:
    # Two keys that are *the same bytes* under two ids: swapping the id must still fail.
    e = enc({"k1": K1, "k2": K1})
    token = e.encrypt("x", associated_data=AD)
    forged = token.replace(b"mm1:k1:", b"mm1:k2:", 1)
    with pytest.raises(DecryptionError):
        e.decrypt(forged, associated_data=AD)


@needs_crypto
def test_unknown_key_id_fails_clearly() -> None:
    token = enc({"old": K1}, current="old").encrypt("x", associated_data=AD)
    with pytest.raises(DecryptionError, match="key id 'old'.*does not have"):
        enc({"new": K2}, current="new").decrypt(token, associated_data=AD)


@needs_crypto
def test_decryption_error_is_a_multimodel_error_and_leaks_nothing() -> None:
    token = enc().encrypt("top secret prompt", associated_data=AD)
    with pytest.raises(MultimodelError) as info:
        enc({"k1": K2}).decrypt(token, associated_data=AD)
    assert isinstance(info.value, DecryptionError)
    assert "top secret" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@needs_crypto
def test_associated_data_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="associated_data must be bytes"):
        enc().encrypt("x", associated_data="ledger:1")  # type: ignore[arg-type]


# --- rotation ------------------------------------------------------------------------------


@needs_crypto
def test_key_rotation_keeps_old_records_readable() -> None:
    old = enc({"2024": K1}, current="2024")
    old_token = old.encrypt("written last year", associated_data=AD)
    rotated = enc({"2024": K1, "2025": K2}, current="2025")
    new_token = rotated.encrypt("written this year", associated_data=AD)
    assert new_token.startswith(b"mm1:2025:")
    assert rotated.decrypt(old_token, associated_data=AD) == b"written last year"
    assert rotated.decrypt(new_token, associated_data=AD) == b"written this year"
    retired = enc({"2025": K2}, current="2025")
    with pytest.raises(DecryptionError, match="2024"):
        retired.decrypt(old_token, associated_data=AD)


def test_static_provider_validates_keys_and_ids() -> None:
    with pytest.raises(ConfigError, match="32"):
        StaticKeyProvider({"k1": b"short"}, current="k1")
    with pytest.raises(ConfigError, match="key id"):
        StaticKeyProvider({"bad:id": K1}, current="bad:id")
    with pytest.raises(ConfigError, match="current key id 'k2'"):
        StaticKeyProvider({"k1": K1}, current="k2")
    p = StaticKeyProvider({"k1": K1, "k2": K2}, current="k2")
    assert p.current() == ("k2", K2)
    assert p.get("k1") == K1
    with pytest.raises(KeyError):
        p.get("k3")
    assert K1.hex() not in repr(p) and "k1" in repr(p)


@needs_crypto
def test_custom_provider_with_a_bad_current_key_fails_at_construction() -> None:
    class Bad:
        def current(self) -> tuple[str, bytes]:
            return "k1", b"\x00" * 16

        def get(self, key_id: str) -> bytes:
            raise KeyError(key_id)

    with pytest.raises(ConfigError, match="16 bytes"):
        Encryptor(Bad())


# --- environment provider ------------------------------------------------------------------


def test_generate_key_is_base64_of_32_random_bytes() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert len(base64.b64decode(a, validate=True)) == 32


@pytest.mark.parametrize(
    "encode",
    [
        base64.b64encode,
        base64.urlsafe_b64encode,
        lambda k: base64.urlsafe_b64encode(k).rstrip(b"="),
        lambda k: b"  " + base64.b64encode(k) + b"\n",
    ],
)
def test_env_provider_reads_standard_and_urlsafe_base64(encode: Callable[[bytes], bytes]) -> None:
    key = bytes([0xFB, 0xFF] * 16)  # encodes with '+' '/' (or '-' '_')
    p = EnvKeyProvider(environ={"MULTIMODEL_ENCRYPTION_KEY": encode(key).decode()})
    key_id, got = p.current()
    assert got == key
    assert key_id == hashlib.sha256(key).hexdigest()[:8] == key_id_for(key)
    assert p.get(key_id) == key


def test_env_provider_default_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIMODEL_ENCRYPTION_KEY", base64.b64encode(K1).decode())
    assert EnvKeyProvider().current() == (key_id_for(K1), K1)
    other = EnvKeyProvider("OTHER_VAR", environ={"OTHER_VAR": base64.b64encode(K2).decode()})
    assert other.current()[1] == K2


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "MY_KEY is not set"),
        ("", "MY_KEY is empty"),
        ("   ", "MY_KEY is empty"),
        ("not base64 at all!!", "MY_KEY is not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "MY_KEY decodes to 16 bytes.*exactly 32"),
        (base64.b64encode(b"x" * 48).decode(), "MY_KEY decodes to 48 bytes"),
    ],
)
def test_env_provider_errors_name_the_variable_not_the_value(value: str | None, match: str) -> None:
    environ = {} if value is None else {"MY_KEY": value}
    with pytest.raises(ConfigError, match=match) as info:
        EnvKeyProvider("MY_KEY", environ=environ)
    if value and value.strip():
        assert value not in str(info.value)


def test_env_provider_previous_keys_for_rotation() -> None:
    environ = {
        "KEY": base64.b64encode(K2).decode(),
        "KEY_OLD": f"{base64.b64encode(K1).decode()}, {base64.urlsafe_b64encode(K2).decode()}",
    }
    p = EnvKeyProvider("KEY", previous_var="KEY_OLD", environ=environ)
    assert p.current() == (key_id_for(K2), K2)
    assert p.get(key_id_for(K1)) == K1
    with pytest.raises(ConfigError, match=r"KEY_OLD \(key #1\) decodes to 3 bytes"):
        EnvKeyProvider("KEY", previous_var="KEY_OLD", environ={**environ, "KEY_OLD": "YWJj"})
    assert EnvKeyProvider("KEY", previous_var="UNSET", environ=environ).current()[1] == K2


@needs_crypto
def test_env_rotation_end_to_end() -> None:
    old_env = {"K": base64.b64encode(K1).decode()}
    token = Encryptor(EnvKeyProvider("K", environ=old_env)).encrypt("x", associated_data=AD)
    new_env = {"K": base64.b64encode(K2).decode(), "K_PREV": old_env["K"]}
    e = Encryptor(EnvKeyProvider("K", previous_var="K_PREV", environ=new_env))
    assert e.decrypt(token, associated_data=AD) == b"x"
    assert e.encrypt("y", associated_data=AD).startswith(f"mm1:{key_id_for(K2)}:".encode())


# --- the ledger codec ----------------------------------------------------------------------


@needs_crypto
def test_codec_round_trip_and_binding() -> None:
    codec = EncryptedContentCodec(enc())
    stored = codec.encode("what is 2+2? ✓", 7, column="prompt")
    assert stored.isascii() and is_encrypted(stored)
    assert codec.decode(stored, 7, column="prompt") == "what is 2+2? ✓"
    with pytest.raises(DecryptionError):
        codec.decode(stored, 8, column="prompt")  # another row
    with pytest.raises(DecryptionError):
        codec.decode(stored, 7, column="response")  # swapped column
    assert codec.decode(codec.encode("x", 3), 3) == "x"  # default column


@needs_crypto
def test_codec_rows_keep_none_and_refuse_swaps() -> None:
    codec = EncryptedContentCodec(enc())
    prompt, response = codec.encode_row(12, "question", None)
    assert response is None and prompt is not None
    assert codec.decode_row(12, prompt, None) == ("question", None)
    p, r = codec.encode_row(12, "question", "answer")
    assert codec.decode_row(12, p, r) == ("question", "answer")
    with pytest.raises(DecryptionError):
        codec.decode_row(12, r, p)
    assert codec.encode_row(1, None, None) == (None, None)


@needs_crypto
def test_codec_plaintext_cells_are_refused_unless_allowed() -> None:
    e = enc()
    with pytest.raises(DecryptionError, match="not an encrypted record"):
        EncryptedContentCodec(e).decode("legacy plain prompt", 1)
    lenient = EncryptedContentCodec(e, allow_plaintext=True)
    assert lenient.decode("legacy plain prompt", 1) == "legacy plain prompt"
    assert lenient.decode(lenient.encode("new", 1), 1) == "new"
    with pytest.raises(TypeError, match="row_id"):
        lenient.encode("x", "1")  # type: ignore[arg-type]


@needs_crypto
def test_codec_namespace_separates_stores() -> None:
    e = enc()
    stored = EncryptedContentCodec(e, namespace="ledger-a").encode("x", 1)
    with pytest.raises(DecryptionError):
        EncryptedContentCodec(e, namespace="ledger-b").decode(stored, 1)


@needs_crypto
def test_codec_in_a_sqlite_contents_table_like_the_ledger(tmp_path: Path) -> None:
    """What the ledger hook does: encrypt with the row id SQLite assigns, decode on read."""
    codec = EncryptedContentCodec(enc())
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY, x)")
    conn.execute("CREATE TABLE contents (row_id INTEGER PRIMARY KEY, prompt TEXT, response TEXT)")
    for i in range(3):
        rid = conn.execute("INSERT INTO usage (x) VALUES (?)", (i,)).lastrowid
        assert rid is not None
        conn.execute(
            "INSERT INTO contents VALUES (?, ?, ?)", (rid, *codec.encode_row(rid, f"p{i}", f"r{i}"))
        )
    rows = conn.execute("SELECT row_id, prompt, response FROM contents").fetchall()
    assert all(is_encrypted(p) and is_encrypted(r) for _, p, r in rows)
    assert [codec.decode_row(rid, p, r) for rid, p, r in rows] == [
        ("p0", "r0"), ("p1", "r1"), ("p2", "r2")
    ]  # fmt: skip
    # moving row 1's cells onto row 2 is detected
    _, p1, r1 = rows[0]
    with pytest.raises(DecryptionError):
        codec.decode_row(2, p1, r1)
    conn.close()
