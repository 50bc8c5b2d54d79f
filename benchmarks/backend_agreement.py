"""Statistical agreement of the two backends: the IDM and random baselines over N episodes on each.

    python benchmarks/backend_agreement.py --episodes 500 [--json FILE]

For mean return, crash rate and mean speed it prints each backend's mean with its 95% confidence interval
(normal approximation) and whether the two intervals overlap. highway-env episodes use seeds 0..N-1;
batched episodes are env i of one batch, seeded 10000 + i (its own random streams, not highway-env's).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from drive.agents.baselines import IDMPolicy, RandomPolicy
from drive.agents.evaluation import evaluate, evaluate_batched
from drive.agents.policies import PolicySource
from drive.envs import make_env, make_venv

FIELDS = ("episode_return", "crashed", "mean_speed")


def run_highway_env(policy: str, episodes: int):
    env = make_env("highway", "kinematics")
    actor = IDMPolicy(env) if policy == "idm" else RandomPolicy(env, seed=0)
    return evaluate(env, actor, episodes, seed=0, progress=True)


def run_batched(policy: str, episodes: int):
    venv = make_venv("highway", "kinematics", episodes, backend="batched")
    source = PolicySource(policy, "highway", "kinematics", {}, baseline=policy)
    return evaluate_batched(venv, source.make_batch(venv, seed=1), episodes, seed=10_000, progress=True)


def mean_ci(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(len(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--json", help="also write the rows as JSON records")
    args = parser.parse_args()
    rows = []
    for policy in ("idm", "random"):
        results = {}
        for backend, run in (("highway-env", run_highway_env), ("batched", run_batched)):
            start = time.perf_counter()
            results[backend] = (run(policy, args.episodes), time.perf_counter() - start)
        for field in FIELDS:
            (m1, h1), (m2, h2) = (mean_ci([getattr(r, field) for r in results[b][0]]) for b in results)
            rows.append(
                dict(policy=policy, metric=field, highway_env=[m1, h1], batched=[m2, h2], agree=abs(m1 - m2) <= h1 + h2)
            )
        print(f"{policy}: highway-env {results['highway-env'][1]:.0f} s, batched {results['batched'][1]:.1f} s")
    print(f"\n{args.episodes} episodes per backend; mean +- 95% CI half-width")
    print(f"{'policy':8}{'metric':16}{'highway-env':>20}{'batched':>20}  overlap")
    for r in rows:
        (m1, h1), (m2, h2) = r["highway_env"], r["batched"]
        overlap = "yes" if r["agree"] else "NO"
        print(f"{r['policy']:8}{r['metric']:16}{m1:12.3f} +- {h1:5.3f}{m2:12.3f} +- {h2:5.3f}  {overlap}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
