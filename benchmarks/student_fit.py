"""Can a student loss fit the teacher's labels at all? A fresh student fitted to a recipe round's data.

A diagnostic for the driver recipe's student losses (``recipe.student.loss``): it takes the frames and the
teacher's action values that a recipe run saved (``student/data_<k>.npz``), fits a fresh student (the recipe's
PPO policy, through the recipe's ``fit`` without the random shift) to the first ``--states`` of them for
``--updates`` steps, and prints, on those same states, how often its choice is within the tolerance of the
teacher's best, how often it is crash-bound (regret above 1), its mean regret and which actions it picks. A loss
that cannot memorise 2,048 states in 300 steps will not learn a driver.

    python benchmarks/student_fit.py runs/highway-driver-<time>/student/data_00.npz --set recipe.student.loss=soft
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from drive.agents.algos import build_model
from drive.agents.dagger import Dataset, fit, good_choice, student_actions
from drive.config import resolve
from drive.envs import make_venv
from drive.envs.batched.constants import ACTION_NAMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a recipe run's student/data_<k>.npz")
    parser.add_argument("--set", nargs="*", default=[], help="--set overrides of the driver recipe")
    parser.add_argument("--states", type=int, default=2048)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = resolve("highway", recipe="driver", sets=args.set)
    student = replace(config.recipe.student, shift=0)  # the labels as recorded: can the loss fit them at all
    policy = build_model(config, make_venv("highway", "pixels", 2, backend="batched"), device="cpu").policy
    with np.load(args.data) as data:
        frames, values = data["frames"][: args.states], data["values"][: args.states]
    dataset, generator = Dataset.empty(), torch.Generator().manual_seed(0)
    dataset.add(frames, values)
    start = time.perf_counter()
    for done in range(args.every, args.updates + 1, args.every):
        fitted = fit(policy, dataset, student, generator, updates=args.every)
        chosen = student_actions(policy, torch.from_numpy(frames[:1024]))
        scored = torch.from_numpy(values[:1024])
        regret = scored.max(-1).values - scored.gather(1, chosen[:, None]).squeeze(1)
        picks = np.bincount(chosen.numpy(), minlength=5) / len(chosen)
        print(
            f"{done:5d} updates {time.perf_counter() - start:5.0f} s  mean loss {fitted['loss']:6.3f}  "
            f"agreement {float(good_choice(scored, chosen, student.tolerance).float().mean()):.3f}  "
            f"crash-bound {float((regret > 1).float().mean()):.3f}  mean regret {float(regret.mean()):.3f}  "
            + " ".join(f"{name} {share:.2f}" for name, share in zip(ACTION_NAMES, picks, strict=True)),
            flush=True,
        )


if __name__ == "__main__":
    main()
