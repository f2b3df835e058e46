"""Prompts and answers reach the ledger only when the user opts in (and the policy allows),
encrypted at rest when a codec is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import multimodel as mm
from multimodel.security import EncryptedContentCodec, Encryptor, Policy, StaticKeyProvider
from multimodel.testing.fake import FakeProvider, FakeReply
from multimodel.tracking import UsageLedger

KEY = "sk-test-ledger-0123456789"
SECRET_PROMPT = "my medical history is private"


def client(ledger: UsageLedger, **kw: Any) -> mm.Client:
    return mm.Client(
        deployments=[mm.Deployment(model="m", provider="openai", api_key=KEY)],
        transport=FakeProvider(FakeReply(text="the answer")),
        ledger=ledger,
        **kw,
    )


def rows(ledger: UsageLedger) -> list[tuple[str | None, str | None] | None]:
    ledger.flush()
    return [ledger.content(r.id) for r in ledger.requests(since="1h")]


def test_not_stored_by_default(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path / "l.sqlite3")
    with client(ledger) as c:
        c.query(SECRET_PROMPT)
    assert rows(ledger) == [None]
    ledger.close()
    assert SECRET_PROMPT.encode() not in (tmp_path / "l.sqlite3").read_bytes()


def test_stored_when_opted_in(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path / "l.sqlite3", store_content=True)
    with client(ledger) as c:
        c.query(SECRET_PROMPT)
        with c.stream("streamed prompt") as s:
            list(s)
    contents = rows(ledger)
    ledger.close()
    assert len(contents) == 2
    assert any(
        SECRET_PROMPT in (row[0] or "") and "the answer" in (row[1] or "")
        for row in contents
        if row
    )


def test_policy_can_forbid_logging_prompts(tmp_path: Path) -> None:
    ledger = UsageLedger(tmp_path / "l.sqlite3", store_content=True)
    with client(ledger, policies=Policy(name="no-logs", log_prompts=False)) as c:
        c.query(SECRET_PROMPT)
    assert rows(ledger) == [None]
    ledger.close()


def test_encrypted_at_rest(tmp_path: Path) -> None:
    pytest.importorskip(
        "cryptography", reason="needs the crypto extra: pip install 'multimodel[crypto]'"
    )
    codec = EncryptedContentCodec(Encryptor(StaticKeyProvider({"k1": b"\x01" * 32}, "k1")))
    ledger = UsageLedger(tmp_path / "l.sqlite3", store_content=True, content_codec=codec)
    with client(ledger) as c:
        c.query(SECRET_PROMPT)
    ((prompt, answer),) = [r for r in rows(ledger) if r]
    assert SECRET_PROMPT in (prompt or "")  # decrypted on read
    assert "the answer" in (answer or "")
    ledger.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET_PROMPT.encode() not in raw
