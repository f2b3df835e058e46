"""The routing trace attached to every response and error, and the driver's actions."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, Protocol, overload

from ..providers.base import Endpoint

__all__ = [
    "AttemptRecord",
    "LazyScores",
    "Notes",
    "RoutingTrace",
    "ScoreTable",
    "Send",
    "Sleep",
    "new_trace",
]


class Send(NamedTuple):
    """Send one attempt to ``endpoint`` within ``timeout`` seconds."""

    endpoint: Endpoint
    attempt: int
    timeout: float
    started: float
    reservation: Any = None
    span: Any = None
    hold: Any = None  # the budget reservation
    load: int = 0  # attempts in flight on the deployment before this one (Tracker.started)


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next action."""

    seconds: float


class AttemptRecord(NamedTuple):
    """One attempt in a routing trace."""

    deployment: str
    outcome: str
    duration: float
    status: int | None = None
    detail: str | None = None


class _BuiltOnRead(Mapping[str, float]):
    """A read-only ``{deployment: figure}`` mapping whose dict is built by ``_table`` when
    first read."""

    __slots__ = ()

    @abstractmethod
    def _table(self) -> dict[str, float]:
        """The figures, built on the first read (each subclass computes them its own way)."""

    def __getitem__(self, name: str) -> float:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return repr(self._table())


class LazyScores(_BuiltOnRead):
    """A strategy's figure per candidate, computed only when read.

    Strategies scan large fleets with C-level list operations and keep the figures they ranked
    by (``values``, aligned with ``names``); ``transform`` turns one of them into the figure a
    reader expects (e.g. a log-space rank into seconds); ``values`` may also be a function
    returning them. Nothing is built per candidate unless
    someone reads the trace, so routing stays cheap on large fleets. The values are captured at
    decision time: reading later shows what the strategy saw.
    """

    __slots__ = ("_dict", "_names", "_transform", "_values")

    def __init__(
        self,
        names: Sequence[str],
        values: Sequence[float] | Callable[[], Sequence[float]],
        transform: Callable[[float], float] | None = None,
    ) -> None:
        self._names = names
        self._values = values
        self._transform = transform
        self._dict: dict[str, float] | None = None

    def _table(self) -> dict[str, float]:
        table = self._dict
        if table is None:
            values: Any = self._values
            if callable(values):  # computed only now, from what was captured at decision time
                values = values()
            if self._transform is not None:
                values = map(self._transform, values)
            table = self._dict = dict(zip(self._names, map(float, values), strict=True))
        return table

    def __len__(self) -> int:
        return len(self._names)  # without building: the trace asks on every decision


class ScoreTable(_BuiltOnRead):
    """The scores of a routing trace: every attempt's figures, merged when first read.

    A read-only mapping ``{deployment: figure}``; a later attempt's figure for the same
    deployment replaces the earlier one.
    """

    __slots__ = ("_dict", "_parts")

    def __init__(self, scores: Mapping[str, float] | None = None) -> None:
        self._parts: list[Mapping[str, float]] = [scores] if scores else []
        self._dict: dict[str, float] | None = None

    def add(self, scores: Mapping[str, float]) -> None:
        """Append one decision's figures (kept as given; merged on the first read)."""
        # Not tested for emptiness: an empty part merges to nothing, and a lazy mapping's
        # length is a Python call on every decision.
        self._parts.append(scores)
        self._dict = None

    def _table(self) -> dict[str, float]:
        table = self._dict
        if table is None:
            table = {}
            for part in self._parts:
                table.update(part)
            self._dict = table
        return table


class _Noted(Protocol):
    """Something that says why a choice was made, formatted when read (``note``)."""

    @property
    def note(self) -> str: ...


class Notes(MutableSequence[str]):
    """The notes of a routing trace: a list of strings that compares equal to one.

    A strategy's note can be *deferred* (:meth:`defer`): the object that knows the reason is
    kept and its ``note`` formatted only when the notes are first read, so a choice whose
    explanation takes several numbers (``intelligent``'s learned quality) costs nothing to
    explain unless someone reads the trace."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._items: list[str | _Noted] = list(items)

    def defer(self, source: _Noted) -> None:
        """Append ``source.note``, read when the notes are first read."""
        self._items.append(source)

    def _strings(self) -> list[str]:
        items = self._items
        for i, item in enumerate(items):
            if not isinstance(item, str):
                items[i] = item.note
        return items  # type: ignore[return-value]  # every item is a string now

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._strings()[index]

    @overload
    def __setitem__(self, index: int, value: str) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[str]) -> None: ...

    def __setitem__(self, index: int | slice, value: Any) -> None:
        self._strings()[index] = value

    def __delitem__(self, index: int | slice) -> None:
        del self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._strings())

    def insert(self, index: int, value: str) -> None:
        """Insert one note (a string) before ``index``."""
        self._items.insert(index, value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Notes):
            return self._strings() == other._strings()
        if isinstance(other, list):
            return self._strings() == other
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._strings())


@dataclass(slots=True)
class RoutingTrace:
    """What the router did for one call.

    Attributes:
        model: the model group asked for.
        strategy: the strategy's name.
        candidates: deployments considered (all groups of the fallback chain that were reached).
        excluded: ``{deployment: reason}`` for deployments skipped during the call (cooldown,
            rate limit, capability, context window, failed with a non-retryable error ...).
        scores: the strategy's figure per candidate it considered, when it reports them
            (``choose_scored``): ``intelligent`` a score (higher wins); ``adaptive`` the cost
            of its two samples, ``response_time`` expected seconds, ``least_connections``
            requests in flight (lower wins). A read-only mapping built on first read.
        attempts: each attempt in order, with its outcome and duration.
        sleeps: each wait, in seconds (back-off, Retry-After, waiting for a recovery).
        models: the model groups used, in order (fallback chains).
        feedback_to: a weak reference to the client that made the call (what
            ``ChatResponse.feedback`` scores through), or ``None``; not compared or dumped.
        notes: why the strategy chose as it did when its scores do not say it, e.g.
            ``"probing c: its last attempt failed (1 in a row, 2.0 s ago)"``: a list of
            strings (:class:`Notes`, formatted when first read).
    """

    model: str
    strategy: str
    candidates: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    scores: ScoreTable = field(default_factory=ScoreTable)
    attempts: list[AttemptRecord] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    notes: Notes = field(default_factory=Notes)
    feedback_to: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain-data copy (how responses serialize their trace)."""
        return {
            "model": self.model,
            "strategy": self.strategy,
            "candidates": list(self.candidates),
            "excluded": dict(self.excluded),
            "scores": dict(self.scores),
            "attempts": [a._asdict() for a in self.attempts],
            "sleeps": list(self.sleeps),
            "models": list(self.models),
            "notes": list(self.notes),
        }

    def __getstate__(self) -> dict[str, Any]:
        # Pickled as plain data: lazy figures and notes built, the client reference dropped.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["scores"] = ScoreTable(dict(self.scores))
        state["notes"] = Notes(list(self.notes))
        state["feedback_to"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def deployments(self) -> list[str]:
        """The deployments attempted, in order."""
        return [a.deployment for a in self.attempts]

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(0, len(self.attempts) - 1)


_new_object = object.__new__


def new_trace(model: str, strategy: str = "", candidates: list[str] | None = None) -> RoutingTrace:
    """An empty trace for a call of ``model``: what ``RoutingTrace(model=model, strategy="",
    candidates=[])`` builds, without the dataclass ``__init__``'s default-factory checks (one
    trace per call).

    With ``candidates``: the trace of a call that has entered ``model``'s group already, with
    ``strategy`` and those candidates (``models`` is ``[model]``): a plan built from its
    group's template fills it in one step."""
    trace: RoutingTrace = _new_object(RoutingTrace)
    trace.model = model
    trace.strategy = strategy
    if candidates is None:
        trace.candidates = []
        trace.models = []
    else:
        trace.candidates = candidates
        trace.models = [model]
    trace.excluded = {}
    # The score table and the notes likewise, without their __init__ calls.
    scores: ScoreTable = _new_object(ScoreTable)
    scores._parts = []
    scores._dict = None
    trace.scores = scores
    trace.attempts = []
    trace.sleeps = []
    notes: Notes = _new_object(Notes)
    notes._items = []
    trace.notes = notes
    trace.feedback_to = None
    return trace
