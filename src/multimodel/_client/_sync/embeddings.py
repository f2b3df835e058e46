"""Generated from ``_async/embeddings.py`` by ``.ci/unasync.py``: do not edit.

Edit ``_async/embeddings.py``, then run ``nox -s generate`` (or ``python .ci/unasync.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from ..._core.dispatch import Sleep
from ..._core.router import AUTO
from ..._transports.send import send_http
from ...embeddings import (
    CreateEmbeddingResponse,
    EmbeddingResponse,
    EmbedTask,
    ParsedEmbeddings,
    as_inputs,
    cache_key,
    decode_vector,
    embed_task,
    encode_vector,
    estimate_tokens,
    policy_token_cap,
    split_batches,
)
from ...errors import InvalidRequestError, MultimodelError, ProviderError, UnknownModelError
from ...security.limits import check_inputs
from ...types import ChatRequest, Message, Usage
from .._base import DEFAULT_DEADLINE_FACTOR, _timeout_extension, call_timeout
from .._primitives import gather, sleep, time_limit

if TYPE_CHECKING:
    from ..._core.dispatch import Send
    from ...security._rules import Policy
    from .client import Client

__all__ = ["Embeddings", "embed"]

_CONCURRENCY = 4  # batches in flight at once


def _limits(client: Client, group: str) -> tuple[int, int | None]:
    """The largest batch every deployment of ``group`` (and of its fallbacks) accepts."""
    groups = {group, *client._router.fallbacks.get(group, ())}
    items: int | None = None
    tokens: int | None = None
    for endpoint in client.deployments:
        if endpoint.model not in groups:
            continue
        limits = client._adapters[endpoint.name].embedding_limits
        if limits is None or endpoint.option("embeddings", True) is False:
            raise InvalidRequestError(
                f"deployment {endpoint.name!r} of model {endpoint.model!r} offers no embeddings "
                f"({endpoint.provider})",
                field="model",
            )
        size = int(endpoint.option("embedding_batch_size", limits[0]) or limits[0])
        items = size if items is None else min(items, size)
        if limits[1] is not None:
            tokens = limits[1] if tokens is None else min(tokens, limits[1])
    assert items is not None  # a configured group has deployments
    return max(1, items), tokens


def _task_of(task: EmbedTask | None, index: int) -> tuple[str, str | None] | None:
    """The task type and title of input ``index`` (part of its cache key)."""
    if task is None:
        return None
    return task.task_type, None if task.titles is None else task.titles[index]


def _refuse_task(client: Client, group: str, task: EmbedTask) -> None:
    """``unsupported_params="error"``: refuse a task type (and title) that a deployment the
    call could reach cannot carry, before anything is sent.

    Raises:
        InvalidRequestError: naming the parameter, the provider and the deployment.
    """
    for endpoint, adapter in client._reachable(group):
        if not adapter.embedding_task_types:
            listed = ", ".join(map(repr, task.params))
            raise InvalidRequestError(
                f"{listed} (Gemini's taskType/title) {'has' if len(task.params) == 1 else 'have'}"
                f" no equivalent on {endpoint.provider} (deployment {endpoint.name!r}, model "
                f"group {endpoint.model!r}), which this call may reach, and the client has "
                f'unsupported_params="error": remove {listed}, or use unsupported_params="drop"',
                field=task.params[0],
            )


def embed(
    client: Client,
    inputs: str | Sequence[str],
    model: str | None,
    dimensions: int | None,
    timeout: float | None,
    use_cache: bool | None = None,
    user: str | None = None,
    policy: str | None = None,
    task_type: str | None = None,
    title: str | Sequence[str] | None = None,
) -> EmbeddingResponse:
    """Embed ``inputs`` in batches, each one routed call; the vectors come back in order.

    The client's input limits and the caller's policy are checked before anything is sent
    (the policy also filters the deployments of every batch, as for chat). With a response
    cache (and ``use_cache`` not ``False``), each input's vector is looked up first; only the
    misses are sent, and their vectors are stored."""
    client._check_open()
    if timeout is not None:
        timeout = call_timeout(timeout)
    texts = as_inputs(inputs)
    if not texts:
        raise InvalidRequestError("no inputs to embed", field="input")
    # Checked against its annotation too: a caller's "3" or True would otherwise fail inside.
    given: object = dimensions
    if given is not None and (not isinstance(given, int) or isinstance(given, bool) or given < 1):
        raise InvalidRequestError(
            f"dimensions must be a whole number of at least 1, got {dimensions!r}",
            field="dimensions",
        )
    group = client._resolve_model(model)
    if group == AUTO or group not in client._router.groups:
        raise UnknownModelError(group, list(client._router.groups))
    task = embed_task(task_type, title, len(texts))
    if task is not None and client._refuse_params:
        _refuse_task(client, group, task)
    check_inputs(texts, client.limits)
    resolved = client._policy_of(user, policy)
    max_items, max_tokens = _limits(client, group)
    cap = policy_token_cap(resolved, texts)
    if cap is not None:
        max_tokens = cap if max_tokens is None else min(max_tokens, cap)
    clock = client._clock
    started = clock.monotonic()
    # The client's `deadline` bounds the whole call: each batch gets what is left of it when
    # it starts. Without one, each batch gets the default (twice the timeout) from its own
    # start: a large input's many batches (waiting for rate limits, say) may take longer.
    deadline = client._deadline
    default = DEFAULT_DEADLINE_FACTOR * (timeout or client._timeout)
    cache = client.cache if use_cache is not False else None
    vectors: list[list[float] | None] = [None] * len(texts)
    keys: list[str] = []
    if cache is not None:
        namespace = cache.policy.namespace
        keys = [
            cache_key(group, dimensions, t, namespace, _task_of(task, i))
            for i, t in enumerate(texts)
        ]
        for i, data in enumerate(cache.get_bytes_many(keys)):
            vectors[i] = decode_vector(data) if data is not None else None
    todo = [i for i, v in enumerate(vectors) if v is None]
    sent = [texts[i] for i in todo]
    batches = split_batches(sent, max_items, max_tokens)

    failed: list[MultimodelError] = []

    def one(bounds: tuple[int, int]) -> tuple[ParsedEmbeddings, str, Decimal | None] | Any:
        if failed:  # the call has failed: a batch not yet sent would be billed for nothing
            return None
        try:
            texts = sent[bounds[0] : bounds[1]]
            part = None if task is None else task.part(todo[bounds[0] : bounds[1]])
            left = default if deadline is None else deadline - (clock.monotonic() - started)
            return _batch(
                client, group, texts, dimensions, timeout, user, resolved, part, left
            )
        except MultimodelError as exc:
            failed.append(exc)
            return exc

    results = gather(one, batches, _CONCURRENCY)
    if cache is not None:
        # The answered batches' vectors, stored even when another batch failed the call: they
        # were billed, and a call asked again sends only what is still missing.
        answered: list[tuple[str, bytes]] = []
        for bounds, result in zip(batches, results, strict=True):
            if isinstance(result, tuple):
                for offset, vector in enumerate(result[0].vectors):
                    index = todo[bounds[0] + offset]
                    answered.append((keys[index], encode_vector(vector)))
        cache.set_bytes_many(answered)
    if failed:
        raise failed[0]
    deployments: list[str] = []
    tokens = 0
    estimated = False
    cost: Decimal | None = Decimal(0)
    model_name = group
    position = 0
    for parsed, deployment, batch_cost in results:
        for vector in parsed.vectors:
            index = todo[position]
            vectors[index] = vector
            position += 1
        deployments.append(deployment)
        assert parsed.usage is not None
        tokens += parsed.usage.input_tokens
        estimated = estimated or parsed.usage.estimated
        cost = None if cost is None or batch_cost is None else cost + batch_cost
        model_name = parsed.model
    return EmbeddingResponse(
        vectors=[v for v in vectors if v is not None],
        model=model_name,
        usage=Usage(input_tokens=tokens, estimated=estimated),
        cost=cost,
        latency=client._clock.monotonic() - started,
        deployments=deployments,
        batches=len(batches),
        cached=len(texts) - len(todo),
    )


def _batch(
    client: Client,
    group: str,
    texts: Sequence[str],
    dimensions: int | None,
    timeout: float | None,
    user: str | None,
    policy: Policy | None,
    task: EmbedTask | None,
    left: float,
) -> tuple[ParsedEmbeddings, str, Decimal | None]:
    """One batch as one routed call, within ``left`` seconds (what is left of the call's
    deadline)."""
    # The plan routes, limits and accounts a ChatRequest: one whose prompt is the batch's text,
    # so that token estimates (rate limits, budgets, policies) match what is sent.
    request = ChatRequest(
        model=group,
        messages=[Message(role="user", content="\n".join(texts) or " ")],
        max_tokens=1,
        user=user,
    )
    plan = client._router.plan(
        request,
        timeout=timeout or client._timeout,
        deadline=left,
        policy=policy,
        operation="embeddings",
    )
    while True:
        action = plan.next_action()
        if isinstance(action, Sleep):
            sleep(action.seconds)
            continue
        try:
            parsed, headers = _attempt(client, action, texts, dimensions, task)
        except ProviderError as exc:
            plan.failed(action, exc)
            continue
        except BaseException:
            plan.cancelled(action)
            raise
        if parsed.usage is None:
            parsed.usage = Usage(input_tokens=sum(map(estimate_tokens, texts)), estimated=True)
        outcome = plan.succeeded(
            action,
            usage=parsed.usage,
            headers=headers,
            response_model=parsed.model,
            request_id=client._request_id(headers),
        )
        return parsed, action.endpoint.name, outcome.cost


def _attempt(
    client: Client,
    send: Send,
    texts: Sequence[str],
    dimensions: int | None,
    task: EmbedTask | None,
) -> tuple[ParsedEmbeddings, httpx.Headers]:
    endpoint = send.endpoint
    adapter = client._adapters[endpoint.name]
    http_request = adapter.build_embedding_request(
        texts, endpoint, dimensions=dimensions, task=task
    )
    http_request.extensions["timeout"] = _timeout_extension(send.timeout)
    try:
        with time_limit(send.timeout):
            http_response = send_http(client._http, http_request)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise client._transport_error(exc, endpoint) from exc
    if http_response.status_code >= 300:  # 3xx: not followed, see error_from_status
        raise adapter.map_error(http_response, endpoint)
    parsed = adapter.parse_embedding_response(http_response, endpoint, len(texts))
    return parsed, http_response.headers


class Embeddings:
    """``client.embeddings``: the OpenAI-shaped surface."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        *,
        input: str | Sequence[str],
        model: str,
        dimensions: int | None = None,
        encoding_format: str | None = None,
        timeout: float | None = None,
        cache: bool | None = None,
        task_type: str | None = None,
        title: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> CreateEmbeddingResponse:
        """Create embeddings, OpenAI-style; ``multimodel`` on the answer holds the
        :class:`~multimodel.embeddings.EmbeddingResponse`.

        ``encoding_format="base64"`` gives each ``data[i].embedding`` as OpenAI's base64 string
        of little-endian float32s, from every provider (Gemini's vectors are encoded here);
        the default gives lists of floats. On the wire, OpenAI and Azure deployments are asked
        for base64 either way (smaller, faster to decode) and ``multimodel.vectors`` are floats.

        ``user``, ``policy``, ``task_type`` and ``title`` are as for ``embed``.

        Raises:
            InvalidRequestError: ``encoding_format`` other than ``"float"`` or ``"base64"``, or
                an unknown keyword.
        """
        if encoding_format not in (None, "float", "base64"):
            raise InvalidRequestError(
                f"encoding_format must be 'float' or 'base64', not {encoding_format!r}",
                field="encoding_format",
            )
        user = kwargs.pop("user", None)
        policy = kwargs.pop("policy", None)
        if kwargs:
            name = min(kwargs)
            raise InvalidRequestError(f"unknown parameter {name!r}", field=name)
        response = self._client.embed(
            input,
            model=model,
            dimensions=dimensions,
            timeout=timeout,
            cache=cache,
            user=user,
            policy=policy,
            task_type=task_type,
            title=title,
        )
        return CreateEmbeddingResponse.from_response(
            response, "base64" if encoding_format == "base64" else "float"
        )
