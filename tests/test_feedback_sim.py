"""The feedback workload: after a warm-up, intelligent sends each task mostly to its best-value
model, near the oracle's quality and cost, and follows a drift."""

from __future__ import annotations

from multimodel.feedback_sim import FeedbackScenario, simulate_feedback


def test_each_task_goes_mostly_to_its_best_value_model() -> None:
    r = simulate_feedback(FeedbackScenario(seed=11, requests=3000))
    assert r.oracle_choice == {
        "chat": "gpt-4.1-nano",
        "code": "gpt-4.1",
        "math": "gpt-4.1",
        "summary": "gpt-4.1-mini",
    }
    for task in ("chat", "code", "math"):
        share = r.share[task]
        assert max(share, key=share.__getitem__) == r.oracle_choice[task], (task, share)
        assert share[r.oracle_choice[task]] > 0.6, (task, share)
    assert r.quality_ratio > 0.93
    assert r.cost_ratio < 1.15
    assert r.regret == sorted(r.regret)  # cumulative
    assert simulate_feedback(FeedbackScenario(seed=11, requests=3000)).regret == r.regret


def test_a_drift_is_followed() -> None:
    r = simulate_feedback(
        FeedbackScenario(
            seed=2, requests=4000, drift_at=2000, drift={("gpt-4.1-nano", "chat"): 0.3}
        )
    )
    assert r.recovery["chat"] is not None and r.recovery["chat"] < 600
