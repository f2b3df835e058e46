"""Learned quality from feedback vs an oracle that knows the hidden quality matrix.

    python benchmarks/feedback.py [--seeds 5] [--requests 5000]

Prints the markdown table of docs/performance.md's "Learned quality (feedback)" section: per
seed, the average quality and the cost as shares of the oracle's, the cumulative regret at
each fifth of the run, each task's main model after the warm-up; then the same with a drift
(the cheap model's quality on ``chat`` drops from 0.89 to 0.5 half-way) and the number of
``chat`` requests it took to move traffic off it. See ``multimodel.feedback_sim``.
"""

from __future__ import annotations

import argparse
import statistics

from multimodel.feedback_sim import FeedbackScenario, simulate_feedback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    n = args.requests
    print(f"## {n} requests, tasks chat / summary / code / math, cost 0.2 quality 0.8\n")
    print(
        "| seed | quality / oracle | cost / oracle | regret at 20/40/60/80/100 % | main model per task |"
    )
    print("|---|---|---|---|---|")
    qs, cs = [], []
    for seed in range(args.seeds):
        r = simulate_feedback(FeedbackScenario(seed=seed, requests=n))
        qs.append(r.quality_ratio)
        cs.append(r.cost_ratio)
        k = len(r.regret)
        marks = [r.regret[max(0, k * j // 5 - 1)] for j in range(1, 6)]
        main = ", ".join(
            f"{t}: {max(s, key=s.__getitem__)} {max(s.values()):.0%}" for t, s in r.share.items()
        )
        print(
            f"| {seed} | {r.quality_ratio:.1%} | {r.cost_ratio:.1%} | "
            f"{' / '.join(f'{m:.1f}' for m in marks)} | {main} |"
        )
    print(f"| mean | {statistics.fmean(qs):.1%} | {statistics.fmean(cs):.1%} | | |\n")
    print("## drift: gpt-4.1-nano on chat drops from 0.89 to 0.50 at request", n // 2, "\n")
    print("| seed | quality / oracle | cost / oracle | chat requests until nano <= 20 % |")
    print("|---|---|---|---|")
    for seed in range(args.seeds):
        r = simulate_feedback(
            FeedbackScenario(
                seed=seed, requests=n, drift_at=n // 2, drift={("gpt-4.1-nano", "chat"): 0.5}
            )
        )
        print(f"| {seed} | {r.quality_ratio:.1%} | {r.cost_ratio:.1%} | {r.recovery.get('chat')} |")
    busy(args.seeds, n)


def busy(seeds: int, n: int) -> None:
    """A busy router (1 ms apart, one answer in five scored): a Thompson draw per choice
    against draws shared by a batch (FeedbackPolicy.draw_reuse, the default 16)."""
    print("\n## busy: 1 ms between requests, 20 % of answers scored, half-life 2,000 requests\n")
    print("| draw_reuse | quality / oracle | cost / oracle | regret at 20/40/60/80/100 % |")
    print("|---|---|---|---|")
    for reuse in (1, 4, 8, 16):
        qs, cs, marks = [], [], [0.0] * 5
        for seed in range(seeds):
            r = simulate_feedback(
                FeedbackScenario(
                    seed=seed,
                    requests=n,
                    spacing=0.001,
                    half_life=2.0,
                    scored=0.2,
                    draw_reuse=reuse,
                )
            )
            qs.append(r.quality_ratio)
            cs.append(r.cost_ratio)
            k = len(r.regret)
            for j in range(5):
                marks[j] += r.regret[max(0, k * (j + 1) // 5 - 1)] / seeds
        print(
            f"| {reuse} | {statistics.fmean(qs):.1%} | {statistics.fmean(cs):.1%} | "
            f"{' / '.join(f'{m:.1f}' for m in marks)} |"
        )


if __name__ == "__main__":
    main()
