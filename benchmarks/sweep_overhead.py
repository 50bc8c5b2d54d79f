"""What Ray costs: wall-clock of a 4-trial ``drive sweep`` against the same 4 runs with ``drive train-agent``,
one after the other, on this machine (run it with nothing else on the cores).

The 4 runs: PPO on the kinematics table, batched simulator, 2 learning rates x 2 seeds, the same budget each.
The sweep runs them as Ray trials, 1 core each (as many at once as the cores allow); the sequential runs use
torch's default threads. Both include each run's final evaluation on highway-env.

    python benchmarks/sweep_overhead.py [--timesteps 8192] [--out /tmp/sweep-overhead] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RATES = ("3e-4", "1e-3")
SEEDS = (0, 1)


def base(timesteps: int) -> list[str]:
    return [
        "--env", "highway", "--algo", "ppo", "--obs", "kinematics", "--backend", "batched", "--n-envs", "16",
        "--timesteps", str(timesteps), "--set", "train.eval_episodes=10", "--set", "algo.hyperparams.n_steps=64",
        "--set", "algo.hyperparams.batch_size=256", "--quiet",
    ]  # fmt: skip


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=Path("/tmp/sweep-overhead"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    drive = [sys.executable, "-m", "drive.cli"]
    sequential = 0.0
    for rate in RATES:
        for seed in SEEDS:
            run = [*drive, "train-agent", *base(args.timesteps), "--set", f"algo.hyperparams.learning_rate={rate}"]
            sequential += timed([*run, "--seed", str(seed), "--runs-dir", str(args.out / "sequential")])
    grid = f"algo.hyperparams.learning_rate={','.join(RATES)}"
    sweep = [*drive, "sweep", *base(args.timesteps), "--grid", grid, "--seeds", str(len(SEEDS))]
    swept = timed([*sweep, "--runs-dir", str(args.out / "sweep")])
    result = {
        "runs": len(RATES) * len(SEEDS),
        "timesteps": args.timesteps,
        "sequential_s": round(sequential, 1),
        "sweep_s": round(swept, 1),
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
