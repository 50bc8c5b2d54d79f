"""Training throughput (env steps per second) of ``drive train-agent`` on the highway-env backend.

For each algorithm and observation preset, builds the run exactly as ``drive train-agent --env highway``
does (same presets, envs and model), lets DQN fill its ``learning_starts`` untimed, then times
``model.learn`` over a fixed number of env steps. Evaluation and checkpoints are left out.

    python benchmarks/train_throughput.py [--steps 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from drive.agents.algos import build_model
from drive.agents.training import make_envs
from drive.config import resolve


def measure(algo: str, obs: str, steps: int, device: str) -> dict:
    config = resolve("highway", algo, obs, flags={"train": {"device": device}})
    train_env, eval_env = make_envs(config)
    eval_env.close()
    model = build_model(config, train_env, device=device)
    warmup = config.algo.hyperparams.get("learning_starts", 0) + 64
    model.learn(warmup)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    train_env.close()
    return {
        "what": f"train-{algo}",
        "backend": config.env.backend,
        "obs": obs,
        "n_envs": config.env.n_envs,
        "device": str(model.device),
        "steps": steps,
        "seconds": round(seconds, 2),
        "steps_per_s": round(steps / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1024)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"{'what':<10} {'obs':<11} {'n_envs':>6} {'device':>6} {'steps/s':>8}")
    for algo in ("dqn", "ppo"):
        for obs in ("pixels", "kinematics"):
            row = measure(algo, obs, args.steps, args.device)
            rows.append(row)
            print(f"{row['what']:<10} {obs:<11} {row['n_envs']:>6} {row['device']:>6} {row['steps_per_s']:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
