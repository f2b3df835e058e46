"""Embedding options at the HTTP boundary, on both clients: ``encoding_format`` (OpenAI and Azure
are asked for base64 and decoded to floats; ``encoding_format="base64"`` gives OpenAI's base64
strings from every provider, Gemini included) and Gemini's ``task_type``/``title`` (sent to
Gemini, dropped with a warning or refused, per ``unsupported_params``, elsewhere)."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx
import pytest

import multimodel as mm
from multimodel import errors
from multimodel.providers import register_provider
from multimodel.providers.presets import ProviderPreset
from multimodel.testing import MockDeployment, MockProviderServer
from multimodel.testing._render import mock_embedding

KEY = "sk-test-embedding-options-0123456789"
GEMINI_KEY = "AIza-test-0123456789"
TEXTS = ["the cat sat", "on the mat", "a dog barked"]

pytestmark = pytest.mark.filterwarnings("ignore::multimodel.errors.PricingWarning")

# One provider name per test that expects the warning: it is given once per provider and
# parameter in a process.
for _name in ("opts-drop-sync", "opts-drop-asyncio", "opts-drop-trio"):
    register_provider(ProviderPreset(_name, "openai", None, ("OPTS_KEY",)))


def floats_of(text: str) -> list[float]:
    raw = base64.b64decode(text, validate=True)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def server_client(cls: Any, server: MockProviderServer, fmt: str, **kw: Any) -> Any:
    provider, key = ("gemini", GEMINI_KEY) if fmt == "gemini" else ("openai", KEY)
    return cls(
        deployments=[
            mm.Deployment(
                model="emb", provider=provider, api_key=key, base_url=server.base_url("d")
            )
        ],
        **kw,
    )


def mock_server(fmt: str) -> MockProviderServer:
    return MockProviderServer({"d": MockDeployment(format=fmt)})  # type: ignore[arg-type]


class Recorder:
    """A MockTransport handler answering OpenAI and Gemini embeddings requests; bodies kept.
    ``floats_only``: answer lists of floats whatever ``encoding_format`` asks (some servers
    do); ``bad``: answer a base64 string that is not one."""

    def __init__(self, *, floats_only: bool = False, bad: bool = False) -> None:
        self.floats_only = floats_only
        self.bad = bad
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if request.url.path.endswith(":batchEmbedContents"):
            items = [r["content"]["parts"][0]["text"] for r in body["requests"]]
            return httpx.Response(
                200, json={"embeddings": [{"values": mock_embedding(t)} for t in items]}
            )
        texts = body["input"]
        wants_base64 = body.get("encoding_format") == "base64" and not self.floats_only

        def encode(text: str) -> Any:
            vector = mock_embedding(text)
            if self.bad:
                return "not base64!"
            if wants_base64:
                return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            return vector

        data = [
            {"object": "embedding", "index": i, "embedding": encode(t)} for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": 3, "total_tokens": 3}
        return httpx.Response(
            200, json={"object": "list", "data": data, "model": "m", "usage": usage}
        )


def transport_client(cls: Any, recorder: Recorder, *deployments: mm.Deployment, **kw: Any) -> Any:
    return cls(
        deployments=list(deployments),
        transport=httpx.MockTransport(recorder),
        retry=mm.RetryPolicy(max_retries=0),
        **kw,
    )


def deployment(provider: str, host: str = "a.test", model: str = "emb") -> mm.Deployment:
    key = GEMINI_KEY if provider == "gemini" else KEY
    return mm.Deployment(
        model=model, provider=provider, api_key=key, base_url=f"https://{host}/v1", name=host
    )


# -- encoding_format ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "gemini"])
def test_every_provider_gives_floats_and_base64_alike(fmt: str) -> None:
    expected = [mock_embedding(t) for t in TEXTS]
    with mock_server(fmt) as server, server_client(mm.Client, server, fmt) as c:
        assert c.embed(TEXTS).vectors == expected
        default = c.embeddings.create(input=TEXTS, model="emb")
        floats = c.embeddings.create(input=TEXTS, model="emb", encoding_format="float")
        packed = c.embeddings.create(input=TEXTS, model="emb", encoding_format="base64")
        sent = [r.body for r in server.requests("d")]
    assert [d.embedding for d in default.data] == expected
    assert [d.embedding for d in floats.data] == expected
    assert all(isinstance(d.embedding, str) for d in packed.data)
    assert [floats_of(d.embedding) for d in packed.data] == expected
    assert packed.multimodel.vectors == expected
    if fmt == "openai":  # asked for base64 on the wire every time, decoded to floats
        assert {b["encoding_format"] for b in sent if b is not None} == {"base64"}


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["openai", "gemini"])
async def test_async_every_provider_gives_floats_and_base64_alike(fmt: str) -> None:
    expected = [mock_embedding(t) for t in TEXTS]
    with mock_server(fmt) as server:
        async with server_client(mm.AsyncClient, server, fmt) as c:
            assert (await c.embed(TEXTS)).vectors == expected
            default = await c.embeddings.create(input=TEXTS, model="emb")
            packed = await c.embeddings.create(input=TEXTS, model="emb", encoding_format="base64")
    assert [d.embedding for d in default.data] == expected
    assert [floats_of(d.embedding) for d in packed.data] == expected


def test_openai_and_azure_ask_for_base64_the_compatibles_for_floats() -> None:
    recorder = Recorder()
    azure = mm.Deployment(
        model="az", provider="azure", api_key=KEY, base_url="https://res.test",
        provider_model="embedder",
    )  # fmt: skip
    with transport_client(
        mm.Client, recorder, deployment("openai"), azure, deployment("together", "t.test", "tg")
    ) as c:
        for model in ("emb", "az", "tg"):
            assert c.embed(TEXTS, model=model).vectors == [mock_embedding(t) for t in TEXTS]
    assert [b["encoding_format"] for b in recorder.bodies] == ["base64", "base64", "float"]


def test_a_server_that_answers_floats_to_a_base64_request_still_works() -> None:
    recorder = Recorder(floats_only=True)
    with transport_client(mm.Client, recorder, deployment("openai")) as c:
        out = c.embeddings.create(input=TEXTS, model="emb", encoding_format="base64")
    assert recorder.bodies[0]["encoding_format"] == "base64"
    assert [floats_of(d.embedding) for d in out.data] == [mock_embedding(t) for t in TEXTS]


def test_a_bad_base64_vector_is_a_malformed_response() -> None:
    with transport_client(mm.Client, Recorder(bad=True), deployment("openai")) as c:
        with pytest.raises(errors.MalformedResponse, match="embedding 0 is malformed"):
            c.embed(TEXTS)


@pytest.mark.anyio
async def test_async_an_unknown_encoding_format_is_refused() -> None:
    recorder = Recorder()
    async with transport_client(mm.AsyncClient, recorder, deployment("openai")) as c:
        with pytest.raises(errors.InvalidRequestError, match="encoding_format"):
            await c.embeddings.create(input="x", model="emb", encoding_format="int8")
    assert recorder.bodies == []


# -- Gemini's task_type and title ---------------------------------------------------------------


def test_gemini_gets_the_task_type_and_titles() -> None:
    recorder = Recorder()
    with transport_client(mm.Client, recorder, deployment("gemini"), cache=True) as c:
        c.embed(["q"], task_type="retrieval_query")
        c.embed(["a", "b"], task_type="RETRIEVAL_DOCUMENT", title=["A", "B"])
        # cached per task type and title: only the new text, with its own title, is sent
        again = c.embed(["a", "c", "b"], task_type="RETRIEVAL_DOCUMENT", title=["A", "C", "B"])
        # the same text under another task type or title is another vector: sent
        c.embed(["a"], task_type="RETRIEVAL_DOCUMENT", title="Other")
        c.embeddings.create(input="q", model="emb", task_type="CLUSTERING")
    requests = [b["requests"] for b in recorder.bodies]
    assert requests[0][0]["taskType"] == "RETRIEVAL_QUERY" and "title" not in requests[0][0]
    assert [(r["taskType"], r["title"]) for r in requests[1]] == [
        ("RETRIEVAL_DOCUMENT", "A"),
        ("RETRIEVAL_DOCUMENT", "B"),
    ]
    assert again.cached == 2
    assert [(r["content"]["parts"][0]["text"], r["title"]) for r in requests[2]] == [("c", "C")]
    assert requests[3][0]["title"] == "Other"
    assert requests[4][0]["taskType"] == "CLUSTERING"
    assert len(requests) == 5


@pytest.mark.parametrize(
    ("kw", "field", "match"),
    [
        ({"task_type": "RETRIEVAL_DOCUMENTS"}, "task_type", "did you mean 'RETRIEVAL_DOCUMENT'"),
        ({"task_type": 3}, "task_type", "not one of Gemini's task types"),
        ({"title": "T"}, "title", "only with task_type='RETRIEVAL_DOCUMENT'"),
        ({"task_type": "CLUSTERING", "title": "T"}, "title", "not 'CLUSTERING'"),
        ({"task_type": "RETRIEVAL_DOCUMENT", "title": ["one"]}, "title", "list of 2 strings"),
    ],
)
def test_a_bad_task_type_or_title_is_refused_before_sending(
    kw: dict[str, Any], field: str, match: str
) -> None:
    recorder = Recorder()
    with transport_client(mm.Client, recorder, deployment("gemini")) as c:
        with pytest.raises(errors.InvalidRequestError, match=match) as info:
            c.embed(["a", "b"], **kw)
    assert info.value.field == field and recorder.bodies == []


def test_openai_drops_the_task_type_with_a_warning() -> None:
    recorder = Recorder()
    with transport_client(mm.Client, recorder, deployment("opts-drop-sync")) as c:
        with pytest.warns(
            errors.DroppedParameterWarning, match=r"'task_type', 'title'.*opts-drop-sync"
        ):
            out = c.embed(["a"], task_type="RETRIEVAL_DOCUMENT", title="T")
    assert out.vectors == [mock_embedding("a")]
    assert "task_type" not in recorder.bodies[0] and "title" not in recorder.bodies[0]


def test_unsupported_params_error_refuses_a_task_type_an_openai_deployment_could_get() -> None:
    recorder = Recorder()
    with transport_client(
        mm.Client, recorder, deployment("gemini", "g.test"), deployment("openai", "o.test", "oa"),
        fallbacks={"emb": ["oa"]}, unsupported_params="error",
    ) as c:  # fmt: skip
        # the Gemini group may fall back to the OpenAI one: refused, nothing sent
        with pytest.raises(errors.InvalidRequestError, match="openai.*'o.test'") as info:
            c.embed(["a"], model="emb", task_type="RETRIEVAL_QUERY")
        assert info.value.field == "task_type" and recorder.bodies == []
        assert len(c.embed(["a"], model="emb").vectors) == 1  # without one, the call goes through


@pytest.mark.anyio
async def test_async_task_type_on_every_path(anyio_backend: str) -> None:
    recorder = Recorder()
    async with transport_client(mm.AsyncClient, recorder, deployment("gemini")) as c:
        await c.embed(["a"], task_type="SEMANTIC_SIMILARITY")
        await c.embeddings.create(
            input=["a", "b"], model="emb", task_type="RETRIEVAL_DOCUMENT", title=["A", "B"]
        )
        with pytest.raises(errors.InvalidRequestError, match="task_type"):
            await c.embed(["a"], task_type="SIMILARITY")
    assert recorder.bodies[0]["requests"][0]["taskType"] == "SEMANTIC_SIMILARITY"
    assert [r["title"] for r in recorder.bodies[1]["requests"]] == ["A", "B"]
    assert len(recorder.bodies) == 2

    recorder = Recorder()
    name = f"opts-drop-{anyio_backend}"
    async with transport_client(mm.AsyncClient, recorder, deployment(name)) as c:
        with pytest.warns(errors.DroppedParameterWarning, match=name):
            await c.embed(["a"], task_type="CLUSTERING")
    assert "taskType" not in json.dumps(recorder.bodies)

    recorder = Recorder()
    async with transport_client(
        mm.AsyncClient, recorder, deployment("openai"), unsupported_params="error"
    ) as c:
        with pytest.raises(errors.InvalidRequestError, match="no equivalent on openai"):
            await c.embeddings.create(input="a", model="emb", task_type="CLUSTERING")
    assert recorder.bodies == []
