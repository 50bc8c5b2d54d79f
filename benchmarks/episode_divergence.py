"""Whole episodes from the same initial state: highway-env and the batched simulator (float32) side by side.

    python benchmarks/episode_divergence.py [--episodes 100] [--highway-episodes 20]

Each episode starts from highway-env's state after ``reset(seed)``, loaded into the batched simulator, and
both take the same ego actions (highway-env's IDM baseline, or seeded random ones). Reports how many policy
steps pass before the first lane-decision difference (any vehicle's lane or target lane, or the episode
ending in one backend only), and the largest position difference before it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from drive.agents.baselines import IDMPolicy
from drive.envs.batched.config import VARIANTS
from drive.envs.batched.highway_state import snapshot, stack_snapshots


def first_lane_decision_difference(
    variant: str, seed: int, policy: str = "idm", dtype=torch.float32
) -> tuple[int | None, int, float]:
    """Run one highway-env episode and the batched simulator side by side from highway-env's initial state,
    with the same ego actions (highway-env's IDM baseline, or seeded random ones).

    Returns the first policy step after which some vehicle's lane or target lane differs, or one backend's
    episode ends and the other's does not (None if neither happened), the episode's length in highway-env,
    and the largest position difference [m] of any vehicle seen before that step.
    """
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers highway-env's ids)

    from drive.envs.batched.simulator import BatchedHighway

    env = gym.make(VARIANTS[variant]).unwrapped
    env.reset(seed=seed)
    sim = BatchedHighway(1, variant, dtype=dtype, compile=False)
    sim.state = stack_snapshots([snapshot(env)], dtype=dtype)
    idm, rng = IDMPolicy(env), np.random.default_rng(seed)
    step, drift, done = 0, 0.0, False
    while not done:
        action = idm.act(None) if policy == "idm" else int(rng.integers(5))
        _, _, terminated, truncated, _ = env.step(action)
        _, _, our_terminated, our_truncated, _ = sim.step(torch.tensor([action]))
        step, done = step + 1, terminated or truncated
        ref, ours = stack_snapshots([snapshot(env)], dtype=torch.float64), sim.state
        same_end = bool(our_terminated[0] | our_truncated[0]) == done
        if not (same_end and torch.equal(ours.lane, ref.lane) and torch.equal(ours.target_lane, ref.target_lane)):
            return step, _episode_length(env, done, step), drift
        drift = max(drift, float((ours.position.double() - ref.position).norm(dim=-1).max()))
    env.close()
    return None, step, drift


def _episode_length(env, done: bool, step: int) -> int:
    """Finish highway-env's episode alone (IDLE actions) to learn its length."""
    while not done:
        _, _, terminated, truncated, _ = env.step(1)
        step, done = step + 1, terminated or truncated
    env.close()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="per policy, highway-fast-v0")
    parser.add_argument("--highway-episodes", type=int, default=20, help="per policy, highway-v0 (slower)")
    args = parser.parse_args()
    print(f"{'variant':14}{'policy':8}{'episodes':>9}{'no diff':>9}{'first diff (min/median)':>26}{'max drift':>11}")
    for variant, episodes in (("highway-fast", args.episodes), ("highway", args.highway_episodes)):
        for policy in ("idm", "random"):
            results = [first_lane_decision_difference(variant, seed, policy) for seed in range(episodes)]
            firsts = [r[0] for r in results if r[0] is not None]
            clean = len(results) - len(firsts)
            spread = (
                f"{min(firsts)} / {np.median(firsts):.0f} of {np.mean([r[1] for r in results]):.0f}" if firsts else "-"
            )
            drift = max(r[2] for r in results)
            print(f"{variant:14}{policy:8}{episodes:>9}{clean:>9}{spread:>26}{drift * 1000:>8.1f} mm", flush=True)


if __name__ == "__main__":
    main()
