"""Embeddings: the response type, the OpenAI-shaped objects and the batching rules (no I/O).

``client.embed(inputs, model=...)`` splits ``inputs`` into batches every deployment of the model
group accepts (:func:`split_batches`: at most the smallest per-request input count and
estimated token count among them), sends each batch as one routed call (strategies, retries,
fallbacks, rate limits, budgets, tracker, ledger and telemetry as for chat), and reassembles the
vectors in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import Usage

if TYPE_CHECKING:
    from .security._rules import Policy

__all__ = [
    "GEMINI_TASK_TYPES",
    "CreateEmbeddingResponse",
    "EmbedTask",
    "EmbeddingData",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "ParsedEmbeddings",
    "estimate_tokens",
    "policy_token_cap",
    "split_batches",
]


class EmbeddingResponse(BaseModel):
    """The vectors of ``client.embed(...)``, one per input, in input order.

    ``usage.input_tokens`` is summed over the batches (estimated, and marked so, when a
    provider sends no counts, as Gemini does); ``cost`` is the exact price in USD when every
    batch's deployment has known prices. ``deployments`` names the deployment that served each
    batch, in order; ``batches`` is how many requests were sent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    vectors: list[list[float]]
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost: Decimal | None = None
    latency: float = 0.0
    deployments: list[str] = Field(default_factory=list)
    batches: int = 0
    cached: int = 0
    """How many inputs were served from the response cache (not sent, not billed)."""

    def __len__(self) -> int:
        return len(self.vectors)


@dataclass(slots=True)
class ParsedEmbeddings:
    """What an adapter extracts from one embeddings answer (vectors in input order)."""

    vectors: list[list[float]]
    usage: Usage | None  # None: the provider sent no counts (estimated by the client)
    model: str


def split_batches(
    inputs: Sequence[str], max_items: int, max_tokens: int | None = None
) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` slices of ``inputs`` in order, each at most ``max_items`` long and,
    when ``max_tokens`` is given, at most ``max_tokens`` estimated tokens (about four characters
    a token; a single longer input gets a batch of its own, and the provider decides)."""
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    out: list[tuple[int, int]] = []
    start, tokens = 0, 0
    for i, text in enumerate(inputs):
        cost = estimate_tokens(text)
        over = max_tokens is not None and tokens + cost > max_tokens and i > start
        if i - start >= max_items or over:
            out.append((start, i))
            start, tokens = i, 0
        tokens += cost
    if start < len(inputs):
        out.append((start, len(inputs)))
    return out


def estimate_tokens(text: str) -> int:
    """The estimated tokens of one input, as batches and policies count them before anything
    is sent: about four characters a token for ASCII text; for other text a token per three
    bytes of UTF-8 (a CJK character is about one token, not a quarter), so that a batch cut to
    a provider's tokens per request stays under it."""
    if text.isascii():
        return len(text) // 4 + 1
    return len(text.encode("utf-8", "surrogatepass")) // 3 + 1


# -- the OpenAI shape ---------------------------------------------------------------------------

_Loose = ConfigDict(extra="allow", defer_build=True)


class EmbeddingData(BaseModel):
    """``data[]`` of an OpenAI embeddings answer: ``embedding`` is the vector, or with
    ``encoding_format="base64"`` its little-endian float32s base64-encoded, as OpenAI sends it."""

    model_config = _Loose
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    """``usage`` of an OpenAI embeddings answer."""

    model_config = _Loose
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(BaseModel):
    """An OpenAI ``list`` of embeddings; ``multimodel`` holds the :class:`EmbeddingResponse`."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage

    @classmethod
    def from_response(
        cls, response: EmbeddingResponse, encoding_format: Literal["float", "base64"] = "float"
    ) -> CreateEmbeddingResponse:
        """Convert an :class:`EmbeddingResponse`; with ``encoding_format="base64"`` each
        vector becomes OpenAI's base64 string (float32s), whichever provider answered."""
        tokens = response.usage.input_tokens
        vectors: Sequence[list[float] | str] = response.vectors
        if encoding_format == "base64":
            from .providers._embeddings import vector_base64

            vectors = [vector_base64(v) for v in response.vectors]
        return cls(
            data=[EmbeddingData(index=i, embedding=v) for i, v in enumerate(vectors)],
            model=response.model,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
            multimodel=response,
        )


# Gemini's `TaskType` (ai.google.dev `models.embedContent`; google-ai-generativelanguage
# `TaskType` 0-8). TASK_TYPE_UNSPECIFIED lets the service pick.
GEMINI_TASK_TYPES = (
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
)


@dataclass(frozen=True, slots=True)
class EmbedTask:
    """Gemini's ``taskType`` for one embed call and, with ``RETRIEVAL_DOCUMENT``, a ``title``
    per input (``titles`` lines up with the inputs it goes with)."""

    task_type: str
    titles: tuple[str, ...] | None = None

    def part(self, indices: Sequence[int]) -> EmbedTask:
        """The task of the inputs at ``indices`` (their titles, in that order)."""
        if self.titles is None:
            return self
        return EmbedTask(self.task_type, tuple(self.titles[i] for i in indices))

    @property
    def params(self) -> list[str]:
        """The parameters set, as the caller named them (for warnings and errors)."""
        return ["task_type", "title"] if self.titles is not None else ["task_type"]


def embed_task(
    task_type: str | None, title: str | Sequence[str] | None, count: int
) -> EmbedTask | None:
    """Check ``task_type`` (one of :data:`GEMINI_TASK_TYPES`, any case) and ``title`` (one for
    every input, or a list with one per input; only with ``RETRIEVAL_DOCUMENT``, as Gemini
    documents it).

    Raises:
        InvalidRequestError: an unknown task type, or a title that does not fit.
    """
    from .errors import InvalidRequestError

    if task_type is None and title is None:
        return None
    if not isinstance(task_type, str) or task_type.upper() not in GEMINI_TASK_TYPES:
        if task_type is None:
            raise InvalidRequestError(
                "title applies only with task_type='RETRIEVAL_DOCUMENT' (Gemini)", field="title"
            )
        import difflib

        close = difflib.get_close_matches(str(task_type).upper(), GEMINI_TASK_TYPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidRequestError(
            f"task_type {task_type!r} is not one of Gemini's task types{hint}: "
            + ", ".join(GEMINI_TASK_TYPES),
            field="task_type",
        )
    kind = task_type.upper()
    if title is None:
        return EmbedTask(kind)
    if kind != "RETRIEVAL_DOCUMENT":
        raise InvalidRequestError(
            f"title applies only with task_type='RETRIEVAL_DOCUMENT' (Gemini), not {kind!r}",
            field="title",
        )
    titles = (title,) * count if isinstance(title, str) else tuple(title)
    if len(titles) != count or not all(isinstance(t, str) for t in titles):
        raise InvalidRequestError(
            f"title must be a string or a list of {count} strings, one per input", field="title"
        )
    return EmbedTask(kind, titles)


def cache_key(
    group: str,
    dimensions: int | None,
    text: str,
    namespace: str | None,
    task: tuple[str, str | None] | None = None,
) -> str:
    """The response-cache key of one input's vector (``task``: its Gemini task type and title,
    which change the vector)."""
    import hashlib
    import json

    material: list[Any] = [namespace, group, dimensions, text]
    if task is not None:  # keys without a task stay as they were
        material.append(list(task))
    blob = json.dumps(material, ensure_ascii=False)
    return "mm:emb:" + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def encode_vector(vector: Sequence[float]) -> bytes:
    """A vector as cache bytes (a version byte, then float64s: exact)."""
    from array import array

    return b"\x01" + array("d", vector).tobytes()


def decode_vector(data: bytes) -> list[float] | None:
    """The vector of :func:`encode_vector` bytes (``None`` when they are not one)."""
    from array import array

    if not data.startswith(b"\x01") or (len(data) - 1) % 8 or len(data) == 1:
        return None
    values = array("d")
    values.frombytes(data[1:])
    return values.tolist()


def as_inputs(value: Any) -> list[str]:
    """``input`` as a list of strings (one string is a list of one)."""
    from .errors import InvalidRequestError

    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        texts = list(value)
    else:
        raise InvalidRequestError(
            "embedding input must be a string or a list of strings", field="input"
        )
    for i, text in enumerate(texts):
        if not text:
            # OpenAI's API refuses an empty input (400) once other batches may have been sent
            # and billed: refused here, before anything is.
            raise InvalidRequestError(f"input[{i}] is an empty string", field=f"input[{i}]")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequestError(
                    f"input[{i}] is not valid Unicode text (it holds a lone surrogate such as "
                    "'\\ud800', which cannot be encoded as UTF-8 and sent); fix or re-decode it",
                    field=f"input[{i}]",
                ) from None
    return texts


def policy_token_cap(policy: Policy | None, texts: Sequence[str]) -> int | None:
    """The policy's ``max_input_tokens`` (``None``: no cap), after checking that every input
    fits it on its own: batches are then cut to it, so no request sent breaks it.

    Raises:
        PolicyViolation: an input's estimated tokens are over the cap.
    """
    if policy is None or policy.max_input_tokens is None:
        return None
    cap = policy.max_input_tokens
    for i, text in enumerate(texts):
        tokens = estimate_tokens(text)
        if tokens > cap:
            from .errors import PolicyViolation

            raise PolicyViolation(
                f"policy {policy.name!r} forbids this request: rule max_input_tokens: input[{i}] "
                f"is ~{tokens:,} tokens (estimated), over the limit of {cap:,}. To fix: shorten "
                "or split that input"
            )
    return cap
