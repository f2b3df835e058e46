"""The optional aiohttp transport for AsyncClient (asyncio only: aiohttp does not run on trio)."""

from __future__ import annotations

import pytest

import multimodel as mm
from multimodel.testing import Behavior, MockDeployment
from multimodel.testing.fixtures import MockServerFactory


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_aiohttp_transport_query_and_stream(mock_server_factory: MockServerFactory) -> None:
    pytest.importorskip(
        "aiohttp", reason="needs the aiohttp extra: pip install 'multimodel[aiohttp]'"
    )
    server = mock_server_factory(
        {
            "a": MockDeployment(format="anthropic", behavior=Behavior(text="one two three")),
        }
    )
    deployment = mm.Deployment(
        model="m",
        provider="anthropic",
        api_key="sk-ant-test-0123456",
        base_url=server.base_url("a"),
    )
    async with mm.AsyncClient(deployments=[deployment], transport="aiohttp") as client:
        response = await client.query("hi")
        async with client.stream("hi") as stream:
            text = "".join([chunk.text async for chunk in stream])
    assert response.text == text == "one two three"
    assert stream.response is not None
    assert stream.response.usage == response.usage


def test_unknown_transport_name() -> None:
    with pytest.raises(mm.InvalidRequestError, match="aiohttp"):
        mm.AsyncClient(deployments=[{"model": "m", "provider": "ollama"}], transport="curl")  # type: ignore[arg-type]
