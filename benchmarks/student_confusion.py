"""Where a driver run's student departs from its teacher: on the states a DAgger round saved (its frames and the
teacher's action values), the student's choice against the teacher's best, and what each departure costs.

    python benchmarks/student_confusion.py RUN --round 4 --states 6000

Prints each policy's action frequencies, the confusion matrix (rows: the teacher's best action, columns: the
student's choice) and, per departure, the regret: the teacher's value of its best action minus that of the
student's (discounted return, the planner's units; a crash costs ``crash_penalty``). The states are the round's
own training states, so this is what the student could not fit, not what it fails to generalise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from drive.agents.dagger import policy_logits
from drive.agents.policies import load_model
from drive.agents.recipe import read_round_data

NAMES = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a --recipe driver run folder")
    parser.add_argument("--round", type=int, default=4, help="whose student, on whose saved states")
    parser.add_argument("--states", type=int, default=6000, help="the first N states of the round")
    parser.add_argument("--model", type=Path, default=None, help="another student (default: the round's own)")
    args = parser.parse_args()
    frames, values, _ = read_round_data(args.run, args.round)
    frames, values = frames[: args.states], values[: args.states]
    model = load_model(args.model or args.run / "student" / f"round_{args.round:02d}.zip", "ppo", device="cpu")
    with torch.inference_mode():
        chosen = np.concatenate(
            [policy_logits(model.policy, torch.as_tensor(frames[i : i + 500])).argmax(-1).numpy()
             for i in range(0, len(frames), 500)]
        )  # fmt: skip
    best = values.argmax(1)
    regret = values[np.arange(len(best)), best] - values[np.arange(len(best)), chosen]
    print(f"{len(best)} states of round {args.round}; action frequencies (teacher / student):")
    for a, name in enumerate(NAMES):
        print(f"  {name:10s} {np.mean(best == a):.3f} / {np.mean(chosen == a):.3f}")
    print("confusion (rows: teacher's best, columns: student's choice):")
    confusion = np.zeros((5, 5), dtype=int)
    np.add.at(confusion, (best, chosen), 1)
    print("            " + " ".join(f"{n[:6]:>7s}" for n in NAMES))
    for a, name in enumerate(NAMES):
        print(f"  {name:10s}" + " ".join(f"{c:7d}" for c in confusion[a]))
    print("departures with at least 1 % of the states: share, mean and median regret")
    for a in range(5):
        for b in range(5):
            hit = (best == a) & (chosen == b)
            if a != b and hit.mean() >= 0.01:
                print(
                    f"  {NAMES[a]:>10s} -> {NAMES[b]:10s} {hit.mean():.3f}  {regret[hit].mean():.3f}  "
                    f"{np.median(regret[hit]):.3f}"
                )
    crash_like = np.mean(regret > 5)
    print(f"mean regret {regret.mean():.3f}; share of states with regret above 5 (crash-like): {crash_like:.3f}")


if __name__ == "__main__":
    main()
