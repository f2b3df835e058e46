"""Feedback, stats and status: what the client learns from calls and tells its caller.

The :class:`FeedbackAndStatus` mixin of :class:`~multimodel._client._base.BaseClient`: scores
given with :meth:`~FeedbackAndStatus.feedback` (and those other processes stored in the ledger)
feed the learned quality per model and task; ``stats``, ``status`` and ``on`` show the live
numbers, the health of each deployment and its events, this process's and the fleet's
(``shared_state=``). No I/O but one SQLite read where a ledger is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .._core.clock import Clock
from .._core.dispatch import Router
from ..errors import InvalidRequestError, UnknownResponseError
from ..events import EventBus, ModelStatusEvent
from ..providers.base import Endpoint
from ..resilience.circuit import HealthBoard, Status
from ..tracking._recent import Recent
from ..tracking.outcome import Outcome
from ..tracking.quality import DEFAULT_TASK, TASK_TAG, ServedResponse, task_of_tags
from ..tracking.stats import Tracker
from ..types import ChatResponse

if TYPE_CHECKING:
    from ..tracking.ledger import UsageLedger
    from ..tracking.quality import QualityBook
    from ..tracking.snapshot import StatsSnapshot

__all__ = ["FeedbackAndStatus"]

logger = logging.getLogger(__name__)
SHARED_SCORES_KEPT = 100_000  # scores received through shared_state, kept to skip in the ledger


class FeedbackAndStatus:
    """Feedback, stats, health status and events (a mixin of ``BaseClient``, which sets these)."""

    _clock: Clock
    _router: Router
    _endpoints: list[Endpoint]
    _model_of: dict[str, str]
    _origin: str
    _feedback_seen: int
    _shared_scores: Recent[tuple[str, str, float, float], None]
    _shared: Any
    _feedback_flushes: bool
    tracker: Tracker
    quality: QualityBook
    ledger: UsageLedger | None
    events: EventBus
    health: HealthBoard

    def feedback(
        self, response_or_id: ChatResponse | str, score: float, *, tag: str | None = None
    ) -> None:
        """Score an answer: ``score`` in [0, 1] (thumbs up/down = 1/0, an eval score, a
        validator's pass/fail). The score updates the learned quality of the model that produced
        the answer (for a cached answer: the model that wrote it), for the request's task, or
        for ``tag`` when given; ``intelligent`` routes on these estimates.

        ``response_or_id`` is a :class:`ChatResponse`, its ``id`` (the answer's own id, e.g.
        ``chatcmpl-...``) or its ``request_id``. An id this client no longer remembers (another
        process served it, or it is old) is looked up in the ledger by request id, then by
        answer id (one or two indexed SQLite reads), when a ledger is configured.

        With ``shared_state``, the score also reaches the other processes' estimates: they
        read it with their next Redis round trip (their next call). :class:`Client` writes it
        at once (one round trip); :class:`AsyncClient` with its own next call, since a
        synchronous method must not block the event loop.

        Raises:
            InvalidRequestError: ``score`` is not a number in [0, 1], or ``tag`` is empty.
            UnknownResponseError: nobody remembers the id.
        """
        value: Any = score  # checked at run time: callers are not always typed
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidRequestError(
                f"score must be a number in [0, 1], got {score!r}", field="score"
            )
        given: Any = tag
        if given is not None and (not isinstance(given, str) or not given):
            raise InvalidRequestError("tag must be a non-empty string", field="tag")
        served = self._served(response_or_id)
        task = tag.removeprefix(TASK_TAG) if tag is not None else served.task
        self.quality.add(served.model, task or DEFAULT_TASK, float(score))
        shared = self._shared
        if shared is not None and self._feedback_flushes and shared.pending:
            shared.flush()  # other processes read it with their next round trip

    def _served(self, response_or_id: ChatResponse | str) -> ServedResponse:
        """Who served an answer: remembered here, else the ledger's row for its request id."""
        if isinstance(response_or_id, ChatResponse):
            # The request id first: unique per call, where some providers reuse answer ids.
            keys = [response_or_id.request_id, response_or_id.id]
        elif isinstance(response_or_id, str) and response_or_id:  # type: ignore[redundant-expr]
            keys = [response_or_id]
        else:
            raise InvalidRequestError(
                "feedback needs a ChatResponse, or its id or request_id as a string",
                field="response_or_id",
            )
        deployment = response_or_id.deployment if isinstance(response_or_id, ChatResponse) else None
        for key in keys:
            if key:
                found = self.quality.served(key)
                if found is not None and deployment in (None, found.deployment):
                    return found
        if self.ledger is not None:
            for key in keys:
                if key:
                    row = self.ledger.served_by(key)
                    if row is not None:
                        model, tags = row
                        return ServedResponse(model, task_of_tags(tags), "")
        if isinstance(response_or_id, ChatResponse):
            producer = self._model_of.get(response_or_id.deployment)
            if producer is not None:  # a response object carries who produced it
                return ServedResponse(producer, DEFAULT_TASK, response_or_id.deployment)
        shown = keys[0]
        raise UnknownResponseError(
            f"no response with id {shown!r} is known to this client"
            + (
                ""
                if self.ledger is not None
                else " (configure a ledger to give feedback later, or from another process, by id)"
            ),
            key=shown,
        )

    def _catalog_quality(self, model: str) -> float | None:
        for ep in self._endpoints:
            if ep.model == model and ep.spec is not None:
                return float(ep.spec.quality)
        return None

    def sync_feedback(self) -> int:
        """Replay into the estimates the scores other clients (other processes) stored in the
        ledger since the last call; returns how many. A client calls it when it starts (then
        with every stored score of the last 20 half-lives); call it to pick up others' scores
        while running. Without a ledger: 0. One SQLite read.
        """
        if self.ledger is None:
            return 0
        horizon = 20 * self.quality.policy.half_life
        since = self._clock.time() - horizon if horizon < 1e15 else 0.0
        try:
            rows = self.ledger.feedback_rows(
                since, after_id=self._feedback_seen, exclude_origin=self._origin
            )
        except Exception:  # a ledger that cannot be read must not stop the client
            logger.warning("could not read feedback from the ledger", exc_info=True)
            return 0
        if rows:
            self._feedback_seen = rows[-1][0]
        shared = self._shared_scores
        fresh = []
        for row in rows:
            score = row[1:]
            if not shared.pop(score):  # came through shared_state already: not counted twice
                fresh.append(score)
        return self.quality.replay(fresh)

    def stats(self) -> StatsSnapshot:
        """A typed snapshot of live stats per deployment, model, provider, user and tag, and
        the learned quality per model and task (``quality``)."""
        snapshot = self.tracker.snapshot()
        estimates = self.quality.estimates()
        if not estimates:
            return snapshot
        from ..tracking.snapshot import QualitySnapshot

        quality: dict[str, dict[str, QualitySnapshot]] = {}
        for e in estimates:
            quality.setdefault(e.model, {})[e.task] = QualitySnapshot(
                mean=e.mean, sd=e.sd, lower=e.lower, samples=e.samples, weight=e.weight
            )
        return snapshot.model_copy(update={"quality": quality})

    def on(self, event: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on ``"model_status_change"`` (a :class:`ModelStatusEvent`),
        ``"outcome"`` (every finished attempt) or ``"budget_alert"``; returns an unsubscribe
        function. With ``shared_state=``, status changes of other processes arrive too (pushed:
        see :meth:`_listen_to_fleet`)."""
        self._listen_to_fleet()
        return self.events.on(event, callback)

    def status(self) -> dict[str, Status]:
        """The health status of every deployment: ``healthy``, ``degraded`` or ``down``.

        With ``shared_state=``, a breaker another process opened (or closed with a successful
        probe) shows here within about a second, without a request of this client."""
        self._listen_to_fleet()
        return {ep.name: self.health.status(ep.name) for ep in self._endpoints}

    def _fleet_feedback(self, fields: dict[str, str]) -> None:
        """Another process's feedback score (``shared_state=``): into the estimates now, and
        remembered so that the same score read later from the ledger is not counted twice."""
        try:
            row = (fields["model"], fields["task"], float(fields["score"]), float(fields["at"]))
            self.quality.replay([row])
        except (KeyError, ValueError):
            logger.warning("ignored a malformed feedback event from the shared state")
            return
        self._shared_scores.put(row, None)

    if TYPE_CHECKING:  # each client defines it: a thread (sync) or a task of the loop (async)

        def _listen_to_fleet(self) -> None: ...

    def _fleet_status_changed(self, fields: dict[str, str]) -> None:
        """Another process announced a status change or a feedback score (``shared_state=``):
        an opened breaker is opened here too for what is left of its cooldown, a probe's
        success closes it; the change is announced to this client's listeners once, and never
        back to the fleet."""
        if fields.get("kind") == "feedback":
            self._fleet_feedback(fields)
            return
        ep = self._router.by_name.get(fields.get("deployment", ""))
        if ep is None:
            return
        reason = f"{fields.get('reason', '')} (in another process)"
        status = fields.get("status", "")
        now = self._clock.monotonic()
        token = _FROM_FLEET.set(True)
        try:
            # The board announces a change it adopts (through _status_changed); one it already
            # had (this process saw the open breaker at admission) is not news to announce.
            if status == "down" and _seconds(fields.get("open_for")) > 0:
                until = now + _seconds(fields.get("open_for"))
                self.health.adopt_open(ep.name, until, now, reason)
                return
            if status == "healthy" and fields.get("reason") == "probe succeeded":
                self.health.adopt_closed(ep.name, now, reason)
                return
        finally:
            _FROM_FLEET.reset(token)
        at = _seconds(fields.get("at")) or self._clock.time()
        self.events.emit(
            "model_status_change",
            ModelStatusEvent(
                deployment=ep.name,
                model=ep.model,
                provider=ep.provider,
                previous=fields.get("previous", ""),
                status=status,
                reason=reason,
                at=at,
            ),
        )

    def _status_changed(self, name: str, previous: Status, status: Status, reason: str) -> None:
        shared = self._router.shared
        if shared is not None and not _FROM_FLEET.get():
            # Tell the fleet; an opened or closed breaker applies to it. A change that came
            # from the fleet is not sent back (it would echo between processes).
            left = None
            if status == "down":
                left = max(self.health.open_until(name) - self._clock.monotonic(), 0.001)
                shared.opened(name, left)
            elif previous != "healthy" and reason == "probe succeeded":
                shared.closed(name)
            shared.announce(name, previous, status, reason, self._clock.time(), open_for=left)
        ep = self._router.by_name.get(name)
        self.events.emit(
            "model_status_change",
            ModelStatusEvent(
                deployment=name,
                model=ep.model if ep else "",
                provider=ep.provider if ep else "",
                previous=previous,
                status=status,
                reason=reason,
                at=self._clock.time(),
            ),
        )

    def _outcome_event(self, outcome: Outcome) -> None:
        events = self.events
        # Events.wants' first test without the call (once per answer; nobody listens, usually)
        if events._callbacks.get("outcome") or (events._subs and events.wants("outcome")):
            events.emit("outcome", outcome)


# Set while a status change of another process is applied here (see _fleet_status_changed).
_FROM_FLEET: ContextVar[bool] = ContextVar("multimodel_from_fleet", default=False)


def _seconds(value: str | None) -> float:
    """A number of seconds from an event field (0 when missing or malformed)."""
    try:
        return float(value or 0)
    except ValueError:
        return 0.0
