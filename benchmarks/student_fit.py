"""Can a student loss fit the teacher's labels at all? A fresh student fitted to a recipe round's data.

A diagnostic for the driver recipe's student losses (``recipe.student.loss``): it takes the frames and the
teacher's action values that a recipe run saved (``student/data_<k>.npz``), fits a fresh student (the recipe's
PPO policy) to the first ``--states`` of them for ``--updates`` steps, and prints, on those same states, how often
its choice is within the tolerance of the teacher's best, how often it is crash-bound (regret above 1), its mean
regret and which actions it picks. A loss that cannot memorise 2,048 states in 300 steps will not learn a driver.

    python benchmarks/student_fit.py runs/highway-driver-<time>/student/data_00.npz --set recipe.student.loss=soft
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from drive.agents.algos import build_model
from drive.agents.dagger import distill_loss, policy_logits
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
    student = config.recipe.student
    policy = build_model(config, make_venv("highway", "pixels", 2, backend="batched"), device="cpu").policy
    with np.load(args.data) as data:
        frames = torch.from_numpy(data["frames"][: args.states])
        values = torch.from_numpy(data["values"][: args.states])
    generator = torch.Generator().manual_seed(0)
    policy.set_training_mode(True)
    start = time.perf_counter()
    for update in range(1, args.updates + 1):
        index = torch.randint(len(values), (student.batch_size,), generator=generator)
        loss, _ = distill_loss(policy_logits(policy, frames[index]), values[index], student)
        policy.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        policy.optimizer.step()
        if update % args.every == 0:
            with torch.no_grad():
                chosen = policy_logits(policy, frames[:1024]).argmax(-1)
            regret = values[:1024].max(-1).values - values[:1024].gather(1, chosen[:, None]).squeeze(1)
            picks = np.bincount(chosen.numpy(), minlength=5) / len(chosen)
            print(
                f"{update:5d} updates {time.perf_counter() - start:5.0f} s  loss {float(loss):6.3f}  "
                f"agreement {float((regret <= student.tolerance).float().mean()):.3f}  "
                f"crash-bound {float((regret > 1).float().mean()):.3f}  mean regret {float(regret.mean()):.3f}  "
                + " ".join(f"{name} {share:.2f}" for name, share in zip(ACTION_NAMES, picks, strict=True)),
                flush=True,
            )


if __name__ == "__main__":
    main()
