"""Learned answer quality: a Beta posterior per (model, task), fed by feedback scores.

Every ``client.feedback(response, score)`` adds one score in ``[0, 1]`` (thumbs up/down = 1/0,
an eval score, a validator's pass/fail) to the estimate of the model that produced the answer,
for the request's task (``task=`` or a tag ``task:<name>``; ``"*"`` when none).

The model: a **Beta posterior with fractional updates**. A score ``s`` adds ``s`` to the
successes and ``1 - s`` to the failures, so binary and continuous scores share one estimate
(a continuous score is treated as the probability of a success; its mean is exact, its variance
is that of a Bernoulli with that mean, which overstates the noise of a precise eval score and
so explores a little more: a conservative choice, documented rather than hidden).

The prior is the catalog's quality (0-100) as a mean, worth ``prior_strength`` observations
(default 2: a weak prior that a few scores override)::

    alpha0 = n0 * q / 100,  beta0 = n0 * (1 - q / 100)

Forgetting: every score's weight halves each ``half_life`` seconds, so after ``T`` seconds
the posterior is exactly (the closed form the tests check)::

    alpha(T) = alpha0 + sum_i s_i * 2 ** (-(T - t_i) / h)
    beta(T)  = beta0  + sum_i (1 - s_i) * 2 ** (-(T - t_i) / h)

which is order-independent: late scores (``t_i`` earlier than others) and scores replayed
from the ledger at start-up land exactly where they would have. Old evidence fades back to the
prior, so a model whose quality drops is followed within about one half-life's worth of
scores.

Nothing here does I/O; the clock is injected. Sharing estimates between processes goes through
the ledger (every process appends its scores to the ``feedback`` table and replays the others'
with :meth:`QualityBook.replay`) and, with ``shared_state``, through the fleet's Redis event
stream (the client announces each score a listener of :meth:`QualityBook.add` sees, and replays
the others').
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._recent import Recent

__all__ = [
    "DEFAULT_TASK",
    "FeedbackPolicy",
    "QualityBook",
    "QualityEstimate",
    "ServedResponse",
    "beta_draw",
    "task_of_tags",
    "thompson_draw",
]

DEFAULT_TASK = "*"
"""The task of a request without one."""
DRAW_WINDOW = 0.1
"""Seconds a Thompson draw is reused for at most (see ``FeedbackPolicy.draw_reuse``): batches
are for busy routers, where the draws' cost shows; a quiet one draws afresh every time."""

TASK_TAG = "task:"
"""Prefix of the tag that carries a request's task (``task="code"`` adds ``task:code``)."""


def task_of_tags(tags: Iterable[str] | None) -> str:
    """The task a request's tags name (the first ``task:<name>`` tag), else :data:`DEFAULT_TASK`."""
    for tag in tags or ():
        if tag.startswith(TASK_TAG):
            return tag[len(TASK_TAG) :] or DEFAULT_TASK
    return DEFAULT_TASK


@dataclass(frozen=True)
class FeedbackPolicy:
    """How feedback becomes quality estimates (the client option ``feedback``).

    Args:
        half_life: seconds after which a score weighs half as much (> 0; ``math.inf``: never
            forget). Default one week.
        prior_strength: how many scores the catalog's quality is worth (> 0; default 2).
        remember: response ids kept in memory so that feedback can name them (>= 1): the last
            ``remember`` at least, up to twice as many (they are dropped in generations, see
            :mod:`multimodel.tracking._recent`); older ones are found in the ledger by their
            request id, when a ledger is configured.
        max_evidence: the most observations a posterior counts when sampled (>= 1): the
            **exploration floor**. However much feedback a model has, its sampled quality keeps
            a standard deviation of at least ``sqrt(m (1 - m) / (max_evidence + 1))``, so a
            model that got worse (or a cheaper one that got better) is still tried now and then.
        z: the lower bound used by hard constraints is ``mean - z * sd`` (default 1.64, about
            a one-sided 95 % bound under a normal approximation).
        draw_reuse: how many choices one Thompson draw of a model's quality serves (>= 1,
            default 16), within :data:`DRAW_WINDOW` seconds and while no score changes the
            task's evidence (batched Thompson sampling). Each choice still decides on a draw
            from the posterior, so the share each model gets is the same; consecutive choices
            are correlated, and a draw (the larger part of a learned choice's cost) is made
            once per batch instead of once per request. 1: a fresh draw for every choice.
            (Choices scored one candidate at a time, for long generations, erring fleets or
            unknown prices, always draw afresh.)

    .. versionadded:: 0.2
    """

    half_life: float = 7 * 86400.0
    prior_strength: float = 2.0
    remember: int = 100_000
    max_evidence: float = 200.0
    z: float = 1.64
    draw_reuse: int = 16

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if not self.half_life > 0:
            raise ConfigError("feedback.half_life must be > 0 seconds (math.inf: never forget)")
        if not (self.prior_strength > 0 and math.isfinite(self.prior_strength)):
            raise ConfigError("feedback.prior_strength must be a finite number > 0")
        if self.remember < 1:
            raise ConfigError("feedback.remember must be >= 1")
        if not self.max_evidence >= 1:
            raise ConfigError("feedback.max_evidence must be >= 1")
        if not self.z >= 0:
            raise ConfigError("feedback.z must be >= 0")
        reuse: object = self.draw_reuse  # checked as given: a bool is an int, a float is not
        if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 1:
            raise ConfigError("feedback.draw_reuse must be an integer >= 1 (1: a draw per choice)")


class QualityEstimate(NamedTuple):
    """One (model, task) estimate, on the 0-1 scale.

    Fields: ``model``, ``task``, ``mean``, ``sd`` (posterior standard deviation), ``lower``
    (``mean - z * sd``, clipped at 0), ``samples`` (scores received, undecayed), ``weight``
    (their decayed weight: the evidence left), ``alpha`` and ``beta``.
    """

    model: str
    task: str
    mean: float
    sd: float
    lower: float
    samples: int
    weight: float
    alpha: float
    beta: float


class ServedResponse(NamedTuple):
    """What feedback needs to know about an answer: who produced it, for which task."""

    model: str
    task: str
    deployment: str


class _Cell(NamedTuple):
    """One (model, task)'s evidence; immutable (a score replaces it), so a reader holding one
    holds a consistent snapshot of it (see :meth:`QualityBook.evidence`)."""

    a: float  # decayed successes at time ``t``
    b: float  # decayed failures at time ``t``
    t: float
    n: int


Evidence = tuple[float, float, "_Cell | None"]
"""A model's prior ``(alpha0, beta0)`` and its evidence for a task (``None``: no score)."""


@dataclass
class QualityBook:
    """Per-(model, task) Beta posteriors with forgetting; thread-safe; no I/O.

    ``prior(model)`` gives the catalog's quality (0-100) of a model, or ``None`` (50 then).
    """

    policy: FeedbackPolicy = field(default_factory=FeedbackPolicy)
    prior: Callable[[str], float | None] = lambda _: None
    clock: Callable[[], float] = lambda: 0.0
    version: int = 0
    """Bumped on every change; strategies use learned estimates once it is > 0."""

    def __post_init__(self) -> None:
        self._cells: dict[tuple[str, str], _Cell] = {}
        # Keyed by the id's hash, not the id: an id is a ~40-character string (~90 B) that, once
        # its response is dropped, only this map keeps alive; its 64-bit hash is a ~36 B int.
        # 200,000 remembered ids: 8.6 MiB instead of 20.7. Two distinct ids share a hash with
        # odds of 2**-64 (SipHash, seeded per process): feedback on one of two such remembered
        # ids would be counted for the other's deployment, at odds far below any other fault.
        self._served: Recent[int, ServedResponse] = Recent(self.policy.remember)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, str, float, float], None]] = []
        self._priors: dict[str, tuple[float, float]] = {}

    # -- responses -----------------------------------------------------------------------

    def remember(self, key: str | None, served: ServedResponse) -> None:
        """Keep who served ``key`` (a response id or request id) for later feedback."""
        if not key:
            return
        self._served.put(hash(key), served)

    def served(self, key: str) -> ServedResponse | None:
        """Who served ``key``, if it is still remembered."""
        return self._served.get(hash(key))

    def subscribe(self, listener: Callable[[str, str, float, float], None]) -> None:
        """Call ``listener(model, task, score, at)`` on every score added (not on replays)."""
        self._listeners.append(listener)

    # -- scores --------------------------------------------------------------------------

    def add(self, model: str, task: str, score: float, at: float | None = None) -> None:
        """Add one score in [0, 1] observed at ``at`` (default now) to (model, task)."""
        when = self.clock() if at is None else at  # one time for the estimate and every copy
        self._add(model, task, score, when)
        for listener in self._listeners:
            listener(model, task, score, when)

    def replay(self, rows: Iterable[tuple[str, str, float, float]]) -> int:
        """Add ``(model, task, score, at)`` rows (from the ledger, another process); returns
        how many. Listeners are not called: the rows are stored already."""
        count = 0
        for model, task, score, at in rows:
            self._add(model, task, float(score), float(at))
            count += 1
        return count

    def _add(self, model: str, task: str, score: float, at: float) -> None:
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {score!r}")
        h = self.policy.half_life
        with self._lock:
            cell = self._cells.get((model, task)) or _Cell(0.0, 0.0, at, 0)
            if at >= cell.t:  # move the cell's reference time forward, then add at weight 1
                decay = _decay(at - cell.t, h)
                cell = _Cell(cell.a * decay + score, cell.b * decay + 1.0 - score, at, cell.n + 1)
            else:  # a late score: weighted as it would have been, relative to the cell's time
                w = _decay(cell.t - at, h)
                cell = _Cell(cell.a + score * w, cell.b + (1.0 - score) * w, cell.t, cell.n + 1)
            self._cells[(model, task)] = cell
            self.version += 1

    # -- reading -------------------------------------------------------------------------

    def prior_params(self, model: str) -> tuple[float, float]:
        """``(alpha0, beta0)`` of a model: its catalog quality as a weak prior."""
        found = self._priors.get(model)
        if found is not None:
            return found
        q = self.prior(model)
        m = min(max((50.0 if q is None else float(q)) / 100.0, 0.01), 0.99)
        n0 = self.policy.prior_strength
        found = self._priors[model] = (n0 * m, n0 * (1.0 - m))
        return found

    def params(self, model: str, task: str, now: float | None = None) -> tuple[float, float, int]:
        """``(alpha, beta, samples)`` of (model, task) at ``now`` (default the clock)."""
        a0, b0 = self.prior_params(model)
        cell = self._cells.get((model, task))
        if cell is None:
            return a0, b0, 0
        t = self.clock() if now is None else now
        decay = _decay(t - cell.t, self.policy.half_life) if t > cell.t else 1.0
        return a0 + cell.a * decay, b0 + cell.b * decay, cell.n

    def posteriors(
        self, models: Sequence[str], task: str, now: float
    ) -> list[tuple[float, float, int]]:
        """:meth:`params` of several models for ``task`` at ``now``, in one loop (the router
        asks on every learned choice: one method call, not three per model)."""
        h = self.policy.half_life
        return [posterior(entry, now, h) for entry in self.evidence(models, task)]

    def evidence(self, models: Sequence[str], task: str) -> list[Evidence]:
        """Each model's prior and evidence for ``task`` as of now: a snapshot (the evidence
        is immutable) that :func:`posterior` turns into the posterior at any time. It changes
        only with :attr:`version`, so a router keeps it while the version is unchanged."""
        cells, priors = self._cells, self._priors
        out: list[Evidence] = []
        for model in models:
            a0, b0 = priors.get(model) or self.prior_params(model)
            out.append((a0, b0, cells.get((model, task))))
        return out

    def estimate(
        self, model: str, task: str = DEFAULT_TASK, now: float | None = None
    ) -> QualityEstimate:
        """The posterior of (model, task): mean, standard deviation, lower bound, counts."""
        a, b, n = self.params(model, task, now)
        a0, b0 = self.prior_params(model)
        mean, sd = beta_mean_sd(a, b)
        return QualityEstimate(
            model, task, mean, sd, max(0.0, mean - self.policy.z * sd), n, a + b - a0 - b0, a, b
        )

    def sample(self, model: str, task: str, rng: Any, now: float | None = None) -> float:
        """A Thompson draw of (model, task)'s quality, with the evidence capped at
        ``max_evidence`` (the exploration floor)."""
        a, b, _ = self.params(model, task, now)
        return self.draw(a, b, rng)

    def draw(self, a: float, b: float, rng: Any) -> float:
        """A draw from Beta(a, b) with the evidence capped at ``max_evidence``."""
        return thompson_draw([(a, b, None)], 0.0, 1.0, self.policy.max_evidence, rng.random, 0)

    def estimates(self, now: float | None = None) -> list[QualityEstimate]:
        """Every (model, task) with feedback, by model then task."""
        with self._lock:
            keys = sorted(self._cells)
        return [self.estimate(model, task, now) for model, task in keys]

    def has_feedback(self, models: Iterable[str]) -> bool:
        """Whether any of ``models`` received a score (for any task)."""
        wanted = set(models)
        return any(model in wanted for model, _ in self._cells)


def posterior(entry: Evidence, now: float, half_life: float) -> tuple[float, float, int]:
    """``(alpha, beta, samples)`` at ``now`` of a model's :meth:`QualityBook.evidence`."""
    a0, b0, cell = entry
    if cell is None:
        return a0, b0, 0
    elapsed = now - cell.t
    # 2 ** (-elapsed / h), as _decay (an infinite half-life gives 2 ** -0.0 == 1.0).
    decay = 2.0 ** (-elapsed / half_life) if elapsed > 0.0 else 1.0
    return a0 + cell.a * decay, b0 + cell.b * decay, cell.n


def thompson_draw(
    evidence: Sequence[Evidence],
    now: float,
    half_life: float,
    cap: float,
    random: Callable[[], float],
    slot: int,
) -> float:
    """A Thompson draw of the quality of the ``slot``-th model of :meth:`QualityBook.evidence`:
    its :func:`posterior` at ``now`` with the evidence capped at ``cap`` (``max_evidence``), in
    one call (the router draws on every learned choice: ``functools.partial`` of everything
    but ``slot``). The draw itself is :func:`beta_draw`'s, inline: a call is a tenth of it."""
    a, b, cell = evidence[slot]
    if cell is not None:  # posterior(), inline
        successes, failures, t, _ = cell  # one unpacking, not three attribute reads
        elapsed = now - t
        decay = 2.0 ** (-elapsed / half_life) if elapsed > 0.0 else 1.0
        a, b = a + successes * decay, b + failures * decay
    total = a + b
    if total > cap:
        a, b = a * cap / total, b * cap / total
    # Cheng's BB and BC (see beta_draw for the reference); a constant only one branch of the
    # rejection test reads is worked out the first time that branch is taken (the same value
    # either way: only the work is saved).
    lo, hi = (a, b) if a <= b else (b, a)
    alpha = lo + hi
    if lo > 1.0:  # BB
        beta = _sqrt((alpha - 2.0) / (2.0 * lo * hi - alpha))
        gamma = lo + 1.0 / beta
        while True:
            u1 = random()
            if not u1:  # log(0): draw again (probability 2**-53)
                continue
            u2 = random()
            v = beta * _log(u1 / (1.0 - u1))
            w = lo * _exp(v)  # v < 37 here: beta <= 1
            z = u1 * u1 * u2
            r = gamma * v - _LOG4
            s = lo + r - w
            if s + _BB_SQUEEZE >= 5.0 * z:
                break
            t = _log(z)
            if s > t or r + alpha * _log(alpha / (hi + w)) >= t:
                break
        return w / (hi + w) if a == lo else hi / (hi + w)
    # BC: the smaller parameter is at most 1
    beta = 1.0 / lo
    delta = k1 = k2 = 0.0  # worked out on first use (delta > 1: 0.0 means not yet)
    while True:
        u1 = random()
        if not u1:
            continue
        u2 = random()
        if u1 < 0.5:
            if not delta:
                delta = 1.0 + hi - lo
            if not k1:
                k1 = delta * (0.0138889 + 0.0416667 * lo) / (hi * beta - 0.777778)
            y = u1 * u2
            z = u1 * y
            if 0.25 * u2 + z - y >= k1:
                continue
        else:
            z = u1 * u1 * u2
            if z <= 0.25:
                v = beta * _log(u1 / (1.0 - u1))
                # hi * exp(v), capped at the largest float as R does (v reaches hundreds when
                # the smaller parameter is tiny and u1 is within 1e-6 of 1); inline: a call
                # per draw is a tenth of its cost.
                w = hi * _exp(v) if v <= _EXP_MAX else _FLOAT_MAX
                if w > _FLOAT_MAX:  # noqa: PLR1730  (min(w, _FLOAT_MAX) without the call)
                    w = _FLOAT_MAX
                break
            if not delta:
                delta = 1.0 + hi - lo
            if not k2:
                k2 = 0.25 + (0.5 + 0.25 / delta) * lo
            if z >= k2:
                continue
        v = beta * _log(u1 / (1.0 - u1))
        w = hi * _exp(v) if v <= _EXP_MAX else _FLOAT_MAX  # as above
        if w > _FLOAT_MAX:  # noqa: PLR1730
            w = _FLOAT_MAX
        if alpha * (_log(alpha / (lo + w)) + v) - _LOG4 >= _log(z):
            break
    return lo / (lo + w) if a == lo else w / (lo + w)


def beta_mean_sd(a: float, b: float) -> tuple[float, float]:
    """The mean and standard deviation of Beta(a, b)."""
    total = a + b
    mean = a / total
    return mean, math.sqrt(a * b / (total * total * (total + 1.0)))


_LOG4 = math.log(4.0)
_BB_SQUEEZE = 1.0 + math.log(5.0)
_EXP_MAX = 709.0  # math.exp overflows just above this
_FLOAT_MAX = sys.float_info.max
_log, _exp, _sqrt = math.log, math.exp, math.sqrt  # module globals: one lookup each


def beta_draw(a: float, b: float, random: Callable[[], float]) -> float:
    """One draw from Beta(a, b) (a, b > 0), with ``random`` the uniform source in [0, 1).

    Exact: R. C. H. Cheng's rejection algorithms BB (both parameters above 1) and BC (else),
    "Generating beta variates with nonintegral shape parameters", CACM 21(4), 1978 (as in R's
    ``rbeta``). They draw a Beta directly, about two uniforms, two logarithms and one
    exponential per variate; ``random.betavariate`` draws two gamma variates instead, which
    in pure Python costs about 1.6x as much (the router draws one per model per request).
    The algorithm lives in :func:`thompson_draw` (no evidence, no cap: the draw alone).
    The tests compare the draws with ``random.betavariate`` (Kolmogorov-Smirnov) and the
    moments with the closed form."""
    return thompson_draw(((a, b, None),), 0.0, 1.0, math.inf, random, 0)


def _decay(elapsed: float, half_life: float) -> float:
    if math.isinf(half_life):
        return 1.0
    return math.pow(2.0, -elapsed / half_life)


def as_feedback_policy(value: Any) -> FeedbackPolicy | None:
    """The ``feedback`` option: a policy, a table of its fields, or ``None``."""
    from ..errors import ConfigError

    if value is None or isinstance(value, FeedbackPolicy):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - set(FeedbackPolicy.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"feedback: unknown field {min(unknown)!r} (valid: "
                f"{', '.join(sorted(FeedbackPolicy.__dataclass_fields__))})"
            )
        return FeedbackPolicy(**value)
    raise ConfigError(f"feedback: expected a FeedbackPolicy or a table, got {type(value).__name__}")


_CODE_MARKERS = ("```", "def ", "class ", "import ", "function ", "#include", "SELECT ", "=> {")
LONG_CONTEXT_CHARS = 32_000
"""Prompts longer than this many characters (about 8,000 tokens) are classified ``long``."""


def heuristic_task(request: Any) -> str | None:
    """A small built-in task classifier (``task_classifier="heuristic"``). A heuristic, not a
    model: ``"code"`` when the prompt contains a code fence or common code keywords,
    ``"long"`` past :data:`LONG_CONTEXT_CHARS` characters, ``"multilingual"`` when most
    letters are not ASCII, else ``None`` (no task)."""
    texts = [m.text for m in getattr(request, "messages", ()) if getattr(m, "role", "") != "system"]
    text = "\n".join(texts)
    if any(marker in text for marker in _CODE_MARKERS):
        return "code"
    if len(text) > LONG_CONTEXT_CHARS:
        return "long"
    letters = [c for c in text[:2000] if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) * 2 > len(letters):
        return "multilingual"
    return None
