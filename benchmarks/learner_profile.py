"""Where PPO's time goes when it learns from pixels on the batched simulator: rollouts against updates.

Builds PPO as ``drive bench``'s ``train-ppo`` row does (the ``ppo-pixels`` preset, the batched backend), wraps
SB3's ``collect_rollouts`` and ``train`` with timers, and learns for a few rollouts after an untimed one. Each
variant prints env steps per second overall and for each phase:

    python benchmarks/learner_profile.py                                  # nature and compact, 64 envs
    python benchmarks/learner_profile.py --encoder compact --compile      # torch.compile the policy's encoder
    python benchmarks/learner_profile.py --n-envs 256 --threads 1

Run it with nothing else on the machine: torch's threads wait for a busy core.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from drive.agents.algos import build_model
from drive.config import resolve
from drive.cores import use_threads
from drive.envs import make_venv


def timed(method, seconds: list[float]):
    """``method`` wrapped so that each call adds its wall-clock to ``seconds``."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = method(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
        return out

    return wrapper


def profile(encoder: str, n_envs: int, rollouts: int, compile_encoder: bool) -> dict:
    sets = [f"algo.encoder.name={encoder}", f"algo.encoder.features_dim={512 if encoder == 'nature' else 256}"]
    config = resolve("highway", "ppo", "pixels", flags={"env": {"backend": "batched", "n_envs": n_envs}}, sets=sets)
    venv = make_venv("highway", "pixels", n_envs, backend="batched", seed=0)
    model = build_model(config, venv, device="cpu")
    if compile_encoder:
        model.policy.features_extractor = torch.compile(model.policy.features_extractor)
    per_rollout = model.n_steps * n_envs
    model.learn(per_rollout)  # untimed: allocation, oneDNN's kernel choice, compilation
    rollout, update = [], []
    model.collect_rollouts = timed(model.collect_rollouts, rollout)
    model.train = timed(model.train, update)
    start = time.perf_counter()
    model.learn(rollouts * per_rollout, reset_num_timesteps=False)
    total = time.perf_counter() - start
    steps = rollouts * per_rollout
    return {
        "encoder": encoder + (" (compiled)" if compile_encoder else ""),
        "n_envs": n_envs,
        "threads": torch.get_num_threads(),
        "steps_per_s": round(steps / total, 1),
        "rollout_steps_per_s": round(steps / sum(rollout), 1),
        "update_steps_per_s": round(steps / sum(update), 1),
        "update_share": round(sum(update) / total, 3),
        "epochs": model.n_epochs,
        "batch_size": model.batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", nargs="+", default=["nature", "compact"], choices=["nature", "compact", "resnet"])
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--rollouts", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the free cores)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the policy's encoder")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    use_threads(args.threads)
    rows = []
    print(f"{'encoder':<20} {'envs':>5} {'threads':>7} {'steps/s':>8} {'rollout':>9} {'update':>8} {'update %':>8}")
    for encoder in args.encoder:
        row = profile(encoder, args.n_envs, args.rollouts, args.compile)
        rows.append(row)
        print(
            f"{row['encoder']:<20} {row['n_envs']:>5} {row['threads']:>7} {row['steps_per_s']:>8} "
            f"{row['rollout_steps_per_s']:>9} {row['update_steps_per_s']:>8} {100 * row['update_share']:>7.0f}%"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
