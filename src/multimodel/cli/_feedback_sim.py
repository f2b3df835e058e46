"""``multimodel simulate --feedback``: replay a feedback scenario (learned quality).

    multimodel simulate --feedback                        # the built-in matrix, 5,000 requests
    multimodel simulate --feedback --seed 3 --drift       # the cheap model drops half-way
    multimodel simulate --feedback my_matrix.json --json  # your hidden quality matrix

Runs :func:`multimodel.feedback_sim.simulate_feedback`: the real ``intelligent`` strategy with
feedback against an oracle that knows the hidden quality of each model for each task. A
scenario file (JSON or TOML) may set ``requests``, ``seed``, ``factors``, ``half_life``,
``warmup``, ``matrix`` (``{model: {task: probability of a good answer}}``, models from the
catalog), ``drift`` (same shape) and ``drift_at``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ._output import EXIT_OK, error, print_json, rich_available, table

__all__ = ["DEFAULT_DRIFT", "run_feedback"]

DEFAULT_DRIFT = {"gpt-4.1-nano": {"chat": 0.5}}
"""``--drift`` without a scenario file: the cheap model's quality on chat drops half-way."""
_FIELDS = {"requests", "seed", "factors", "half_life", "warmup", "matrix", "drift", "drift_at"}


def _pairs(value: Any, name: str) -> dict[tuple[str, str], float]:
    if not isinstance(value, Mapping):
        raise TypeError(f"`{name}` must be a table {{model: {{task: quality}}}}")
    out: dict[tuple[str, str], float] = {}
    for model, tasks in value.items():
        if not isinstance(tasks, Mapping):
            raise TypeError(f"`{name}.{model}` must be a table {{task: quality}}")
        for task, quality in tasks.items():
            q = float(quality)
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"`{name}.{model}.{task}` must be in [0, 1], got {quality!r}")
            out[(str(model), str(task))] = q
    return out


def _scenario(data: Mapping[str, Any], requests: int | None, seed: int | None, drift: bool) -> Any:
    from ..feedback_sim import FeedbackScenario

    unknown = set(data) - _FIELDS
    if unknown:
        raise ValueError(f"unknown key {min(unknown)!r} (valid: {', '.join(sorted(_FIELDS))})")
    kw: dict[str, Any] = {k: data[k] for k in ("factors", "half_life", "warmup") if k in data}
    kw["requests"] = int(requests if requests is not None else data.get("requests", 5000))
    kw["seed"] = int(seed if seed is not None else data.get("seed", 0))
    if "matrix" in data:
        kw["matrix"] = _pairs(data["matrix"], "matrix")
    changes = data.get("drift", DEFAULT_DRIFT if drift else None)
    if changes:
        kw["drift"] = _pairs(changes, "drift")
        kw["drift_at"] = int(data.get("drift_at", kw["requests"] // 2))
    return FeedbackScenario(**kw)


def run_feedback(
    path: str | None,
    data: Mapping[str, Any],
    *,
    requests: int | None,
    seed: int | None,
    drift: bool,
    as_json: bool,
    plain: bool,
) -> int:
    """Run one feedback scenario (``data``: the file's table, empty without a file) and print
    its table; returns the exit code (1: invalid scenario)."""
    from ..feedback_sim import simulate_feedback

    try:
        scenario = _scenario(data, requests, seed, drift)
        result = simulate_feedback(scenario)
    except (TypeError, ValueError, KeyError) as exc:
        return error("simulate", f"invalid feedback scenario: {exc}")
    k = len(result.regret)
    regret = [result.regret[max(0, k * j // 5 - 1)] for j in range(1, 6)] if k else []
    if as_json:
        print_json(
            {
                "scenario": {
                    "path": path,
                    "seed": scenario.seed,
                    "requests": scenario.requests,
                    "drift_at": scenario.drift_at,
                },
                "quality_vs_oracle": result.quality_ratio,
                "cost_vs_oracle": result.cost_ratio,
                "explored": result.explored,
                "regret_by_fifth": regret,
                "share": result.share,
                "oracle_choice": result.oracle_choice,
                "recovery": result.recovery,
            }
        )
        return EXIT_OK
    use_rich = not plain and sys.stdout.isatty() and rich_available()
    drifted = "" if scenario.drift_at is None else f", drift at request {scenario.drift_at}"
    print(
        f"{path or 'built-in matrix'}: {scenario.requests} requests, seed {scenario.seed}"
        f"{drifted}\n"
    )
    print(
        f"quality {result.quality_ratio:.1%} of the oracle's at {result.cost_ratio:.1%} of its "
        f"cost; {result.explored} exploration choices; cumulative regret by fifth: "
        + " / ".join(f"{r:.1f}" for r in regret)
        + "\n"
    )
    rows = []
    for task, shares in result.share.items():
        main = max(shares, key=shares.__getitem__) if shares else "-"
        rows.append(
            [
                task,
                result.oracle_choice.get(task, "-"),
                main,
                f"{100 * shares.get(main, 0.0):.0f}",
                "-" if task not in result.recovery else str(result.recovery[task] or "never"),
            ]
        )
    table(
        ["task", "oracle's choice", "main model", "share %", "requests to follow the drift"],
        rows,
        right=(3, 4),
        use_rich=use_rich,
        title="after the warm-up: each task's main model",
    )
    return EXIT_OK
