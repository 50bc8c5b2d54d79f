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

from drive.envs.batched.oracle import first_lane_decision_difference


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
