"""client.feedback: scores reach the learned quality of the model that answered, late and from
another process through the ledger, and `intelligent` shifts traffic on them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import multimodel as mm
from multimodel.testing.fake import FakeProvider

KEY = "sk-test-feedback-0123456789"
STRONG, CHEAP = "openai/gpt-4.1", "openai/gpt-4o-mini"


def deployments() -> list[mm.Deployment]:
    return [
        mm.Deployment(model="gpt-4.1", provider="openai", api_key=KEY),
        mm.Deployment(model="gpt-4o-mini", provider="openai", api_key=KEY),
    ]


def make(**kw: Any) -> mm.Client:
    kw.setdefault("transport", FakeProvider())
    kw.setdefault("strategies", {"auto": {"name": "intelligent", "seed": 7}})
    return mm.Client(deployments=deployments(), **kw)


def test_feedback_updates_the_model_that_answered_for_the_task() -> None:
    c = make()
    r = c.query("hi", model="gpt-4o-mini", task="summary")
    c.feedback(r, 1.0)
    c.feedback(r.request_id or "", 0.0)
    est = c.quality.estimate("gpt-4o-mini", "summary")
    assert est.samples == 2
    c.feedback(r, 1, tag="code")
    assert c.quality.estimate("gpt-4o-mini", "code").samples == 1


def test_score_and_id_are_checked() -> None:
    c = make()
    r = c.query("hi", model="gpt-4o-mini")
    for bad in (-0.1, 1.01, float("nan"), "1", True):
        with pytest.raises(mm.InvalidRequestError):
            c.feedback(r, bad)  # type: ignore[arg-type]
    with pytest.raises(mm.UnknownResponseError) as info:
        c.feedback("req_never_seen", 1.0)
    assert info.value.key == "req_never_seen"
    assert isinstance(info.value, LookupError)


def test_a_cached_answer_is_attributed_to_the_model_that_wrote_it() -> None:
    c = make(cache=True)
    first = c.query("same question", model="gpt-4o-mini", temperature=0)
    hit = c.query("same question", model="gpt-4o-mini", temperature=0)
    assert hit.trace.strategy == "cache"
    c.feedback(hit, 0.0)
    assert c.quality.estimate("gpt-4o-mini").samples == 1
    assert first.deployment == CHEAP


def test_late_feedback_from_another_process_goes_through_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    a = make(ledger=path)
    r = a.query("hi", model="gpt-4o-mini", task="code")
    assert a.ledger is not None
    a.ledger.flush()
    # Another client (another process) on the same file knows nothing of this answer ...
    b = make(ledger=path)
    b.feedback(r.request_id or "", 0.25)
    est = b.quality.estimate("gpt-4o-mini", "code")
    assert est.samples == 1
    assert b.ledger is not None
    b.ledger.flush()
    # The first client picks up the other's score when it syncs, once; never its own.
    a.feedback(r, 1.0)
    a.ledger.flush()
    assert a.sync_feedback() == 1
    assert a.sync_feedback() == 0
    assert a.quality.estimate("gpt-4o-mini", "code").samples == 2
    a.close()
    b.close()
    # ... and a client started later loads the stored scores.
    c = make(ledger=path)
    assert c.quality.estimate("gpt-4o-mini", "code").samples == 2
    c.close()


@pytest.mark.parametrize("streamed", [False, True])
def test_feedback_by_the_answers_own_id_from_another_process(
    tmp_path: Path, streamed: bool
) -> None:
    path = tmp_path / "usage.db"
    a = make(ledger=path)
    if streamed:
        with a.stream("hi", model="gpt-4o-mini", task="code") as s:
            for _ in s:
                pass
        assert s.response is not None
        answer_id = s.response.id
    else:
        answer_id = a.query("hi", model="gpt-4o-mini", task="code").id
    assert answer_id.startswith("chatcmpl-")
    assert a.ledger is not None
    a.ledger.flush()
    b = make(ledger=path)  # knows nothing of the answer but its id (e.g. from a log)
    b.feedback(answer_id, 0.0)
    assert b.quality.estimate("gpt-4o-mini", "code").samples == 1
    a.close()
    b.close()


@pytest.mark.anyio
async def test_feedback_by_the_answers_own_id_on_the_async_client(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    async with mm.AsyncClient(
        deployments=deployments(), transport=FakeProvider(), ledger=path
    ) as a:
        async with a.stream("hi", model="gpt-4o-mini", task="math") as s:
            async for _ in s:
                pass
        assert s.response is not None and a.ledger is not None
        a.ledger.flush()
        async with mm.AsyncClient(
            deployments=deployments(), transport=FakeProvider(), ledger=path
        ) as b:
            b.feedback(s.response.id, 1.0)
            assert b.quality.estimate("gpt-4o-mini", "math").samples == 1


def test_task_classifier_heuristic_and_callable() -> None:
    fake = FakeProvider()
    c = make(transport=fake, task_classifier="heuristic")
    r = c.query("```py\nprint(1)\n```", model="gpt-4o-mini")
    c.feedback(r, 1.0)
    assert c.quality.estimate("gpt-4o-mini", "code").samples == 1
    c2 = make(task_classifier=lambda request: "mine")
    r2 = c2.query("hi", model="gpt-4o-mini")
    c2.feedback(r2, 1.0)
    assert c2.quality.estimate("gpt-4o-mini", "mine").samples == 1
    with pytest.raises(mm.ConfigError, match="task_classifier"):
        make(task_classifier="nope")
    with pytest.raises(mm.InvalidRequestError, match="task"):
        c.query("hi", model="gpt-4o-mini", task="")


def test_intelligent_shifts_traffic_on_feedback_and_says_so_in_the_trace() -> None:
    clock = mm.ManualClock()
    c = make(
        clock=clock,
        strategies={
            "auto": {
                "name": "intelligent",
                "seed": 3,
                "factors": {"cost": 0.5, "performance": 0.0, "quality": 0.5},
            }
        },
    )
    # Without feedback, the cheap model wins on cost for this weighting.
    before = Counter(c.query("hi", model="auto", task="math").deployment for _ in range(20))
    assert before[CHEAP] > 15
    # The cheap model fails this task; the strong one passes.
    for _ in range(60):
        r = c.query("hi", model="auto", task="math")
        c.feedback(r, 1.0 if r.deployment == STRONG else 0.0)
        if r.deployment == CHEAP:
            c.feedback(c.query("hi", model="gpt-4.1", task="math"), 1.0)
    after = Counter(c.query("hi", model="auto", task="math").deployment for _ in range(50))
    assert after[STRONG] > 40, after
    r = c.query("hi", model="auto", task="math")
    assert any("learned quality for task 'math'" in n for n in r.trace.notes)
    # Another task is unaffected: its estimates are still the catalog's prior.
    other = Counter(c.query("hi", model="auto", task="chat").deployment for _ in range(30))
    assert other[CHEAP] > 15


def test_min_quality_applies_to_the_lower_bound() -> None:
    c = make(strategies={"auto": {"name": "intelligent", "min_quality": 60, "seed": 1}})
    r = c.query("hi", model="gpt-4o-mini", task="t")
    for _ in range(30):
        c.feedback(r, 0.0)
    r = c.query("hi", model="auto", task="t")
    assert r.deployment == STRONG
    assert "quality" in r.trace.excluded[CHEAP]


@pytest.mark.anyio
async def test_async_client_feedback() -> None:
    async with mm.AsyncClient(deployments=deployments(), transport=FakeProvider()) as c:
        r = await c.query("hi", model="gpt-4o-mini", task="x")
        c.feedback(r, 0.5)
        assert c.quality.estimate("gpt-4o-mini", "x").samples == 1
        with pytest.raises(mm.UnknownResponseError):
            c.feedback("nope", 0.5)


def test_stats_and_report_show_quality_per_model_and_task(tmp_path: Path) -> None:
    from multimodel.cli.report import render_text
    from multimodel.reports import build_report

    path = tmp_path / "usage.db"
    c = make(ledger=path)
    for score in (1.0, 0.0, 1.0):
        c.feedback(c.query("hi", model="gpt-4o-mini", task="code"), score)
    q = c.stats().quality["gpt-4o-mini"]["code"]
    assert q.samples == 3 and 0 < q.lower < q.mean < 1
    assert c.ledger is not None
    c.ledger.flush()
    report = build_report(c.ledger)
    assert [(r.model, r.task, r.scores) for r in report.quality] == [("gpt-4o-mini", "code", 3)]
    assert report.quality[0].mean_score == pytest.approx(2 / 3)
    assert "Learned quality" in render_text(report)
    c.close()


class SlowStrong(FakeProvider):
    """The strong model answers in 5 s of the client's (manual) clock, the cheap one at once."""

    def __init__(self, clock: mm.ManualClock) -> None:
        super().__init__()
        self.clock = clock

    def _handle(self, request: Any) -> Any:
        if b'"gpt-4.1"' in request.content:
            self.clock.advance(5.0)
        return super()._handle(request)


P95_ROUTE = {"name": "intelligent", "seed": 1, "factors": {"cost": 0.0, "quality": 1.0}}


def test_max_p95_excludes_the_deployment_measured_slow() -> None:
    for cap, expected in ((None, STRONG), (2.0, CHEAP)):
        clock = mm.ManualClock()
        route = dict(P95_ROUTE) if cap is None else {**P95_ROUTE, "max_p95": cap}
        c = make(clock=clock, transport=SlowStrong(clock), strategies={"auto": route})
        for _ in range(20):
            c.query("hi", model="gpt-4.1")
            c.query("hi", model="gpt-4o-mini")
        r = c.query("hi", model="auto")
        assert r.deployment == expected  # quality alone prefers the strong model
        if cap is not None:
            assert "max_p95 2 s" in r.trace.excluded[STRONG]


@pytest.mark.anyio
async def test_max_p95_on_the_async_client() -> None:
    clock = mm.ManualClock()
    async with mm.AsyncClient(
        deployments=deployments(),
        transport=SlowStrong(clock),
        clock=clock,
        strategies={"auto": {**P95_ROUTE, "max_p95": 2.0}},
    ) as c:
        for _ in range(20):
            await c.query("hi", model="gpt-4.1")
            await c.query("hi", model="gpt-4o-mini")
        r = await c.query("hi", model="auto")
        assert r.deployment == CHEAP and "max_p95" in r.trace.excluded[STRONG]


def test_response_feedback_scores_through_the_client_that_made_it() -> None:
    import gc
    import pickle

    c = make()
    r = c.query("hi", model="gpt-4o-mini", task="t")
    r.feedback(0.0)
    r.feedback(1.0, tag="other")
    assert c.quality.estimate("gpt-4o-mini", "t").samples == 1
    assert c.quality.estimate("gpt-4o-mini", "other").samples == 1
    with c.stream("hi", model="gpt-4o-mini", task="s") as s:
        for _ in s:
            pass
    assert s.response is not None
    s.response.feedback(1.0)
    assert c.quality.estimate("gpt-4o-mini", "s").samples == 1
    with pytest.raises(mm.InvalidRequestError, match="score"):
        r.feedback(2.0)
    # Not in dumps or equality; a pickled copy is plain data with no client.
    assert "feedback_to" not in r.model_dump_json()
    copy = pickle.loads(pickle.dumps(r))
    assert copy == r
    with pytest.raises(mm.UnknownResponseError, match="no client"):
        copy.feedback(1.0)
    with pytest.raises(mm.UnknownResponseError, match="no client"):
        mm.ChatResponse.model_validate(r.model_dump()).feedback(1.0)
    # Held weakly: the client goes away with its last reference.
    c.close()
    del c, s
    gc.collect()
    with pytest.raises(mm.UnknownResponseError, match="client is gone"):
        r.feedback(1.0)


@pytest.mark.anyio
async def test_response_feedback_on_the_async_client() -> None:
    async with mm.AsyncClient(deployments=deployments(), transport=FakeProvider()) as c:
        r = await c.query("hi", model="gpt-4o-mini", task="x")
        r.feedback(0.5)
        async with c.stream("hi", model="gpt-4o-mini", task="y") as s:
            async for _ in s:
                pass
        assert s.response is not None
        s.response.feedback(1.0)
        assert c.quality.estimate("gpt-4o-mini", "x").samples == 1
        assert c.quality.estimate("gpt-4o-mini", "y").samples == 1
