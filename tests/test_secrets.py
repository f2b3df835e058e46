"""No API key appears in any repr, log record, exception text or trace produced by a scenario."""

from __future__ import annotations

import logging

import pytest

import multimodel as mm
from multimodel.testing.fake import FakeProvider, FakeReply

KEY = "sk-live-SUPERSECRET-abcdef0123456789"
ANT_KEY = "sk-ant-SUPERSECRET-0123456789"


def test_no_key_leaks_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []
    fake = FakeProvider()
    # A provider that echoes the key back in its error body, as OpenAI's 401 does.
    fake.script("a.test", [FakeReply(401, error_code="invalid_api_key")])
    fake.script(
        "b.test",
        [
            FakeReply(429, headers={"retry-after-ms": "1"}),
            FakeReply(500),
            FakeReply(200, text="fine"),
        ],
    )
    deployments = [
        mm.Deployment(
            model="m", provider="openai", name="a", base_url="https://a.test/v1", api_key=KEY
        ),
        mm.Deployment(
            model="m", provider="openai", name="b", base_url="https://b.test/v1", api_key=KEY
        ),
        mm.Deployment(
            model="c", provider="anthropic", api_key=ANT_KEY, base_url="https://c.test/v1"
        ),
    ]
    client = mm.Client(
        deployments=deployments,
        transport=fake,
        max_retries=4,
        strategy="round_robin",
        retry=mm.RetryPolicy(backoff_initial=0.001, backoff_max=0.001),
    )
    captured += [repr(client), str(client.deployments), repr(deployments), str(deployments)]
    captured += [repr(d.model_dump()) for d in deployments]
    captured.append(deployments[0].model_dump_json())
    response = client.query("hi", model="m")
    captured += [repr(response), response.model_dump_json(), repr(response.trace)]
    fake.script("a.test", [FakeReply(400)])
    fake.script("b.test", [FakeReply(400)])
    try:
        client.query("hi", model="m")
    except mm.MultimodelError as exc:
        captured += [str(exc), repr(exc), repr(getattr(exc, "trace", None)), repr(exc.__dict__)]
    try:
        mm.Client(deployments=[{"model": "m", "provider": "openai", "api_key": KEY, "weight": -1}])
    except mm.ConfigError as exc:
        captured += [str(exc), repr(exc)]
    # An error body echoing the key is redacted.
    err = mm.errors.AuthenticationError(f"Incorrect API key provided: {KEY}", provider="openai")
    captured += [str(err), repr(err)]
    captured += [r.getMessage() for r in caplog.records]
    captured.append(repr(client.stats()))
    blob = "\n".join(captured)
    assert "SUPERSECRET" not in blob
    # ... but the key did go to the provider, in the header and nowhere else in the request.
    sent = fake.requests[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert KEY.encode() not in sent.content
