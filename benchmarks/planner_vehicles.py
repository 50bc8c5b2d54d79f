"""How much traffic the driver's teacher must simulate: a planner on the ego and its nearest vehicles
(``recipe.teacher.vehicles``) against one on all of them, on the same states.

    python benchmarks/planner_vehicles.py --keep 15 12 10 --envs 256
    python benchmarks/planner_vehicles.py --keep 15 --sight 51 22     # and only what the camera sees

For each ``keep``, one 30-step episode in each of ``--envs`` batched envs (the same traffic each time,
``venv.seed(7_000_000)``), driven by the pruned planner; at every state both planners value the five actions.
Prints the seconds per decision of each, how often they choose alike, the regret of the pruned planner's choice
under the full planner's values (mean, and the share above 1: crash-bound), and how the pruned planner drove
(return, crash rate, speed). ``--keep 0`` drives with the full planner itself. The teacher's other settings are
the driver recipe's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from drive.agents.dagger import DriveStats
from drive.agents.planner import Planner
from drive.config import resolve
from drive.envs import make_venv

TRAFFIC_SEED = 7_000_000


def compare(keep: int, n_envs: int, sight: tuple[float, float] = (0.0, 0.0)) -> dict:
    teacher = resolve("highway", recipe="driver").recipe.teacher
    venv = make_venv("highway", "kinematics", n_envs, backend="batched")
    full = Planner(venv.sim, teacher)
    limits = {"vehicles": keep, "sight_ahead": sight[0], "sight_behind": sight[1]}
    pruned = Planner(venv.sim, type(teacher)(**{**vars(teacher), **limits}))
    venv.seed(TRAFFIC_SEED)
    venv.reset()
    full.action_values(venv.sim), pruned.action_values(venv.sim)  # compile both models before timing
    venv.seed(TRAFFIC_SEED)
    venv.reset()
    seconds, alike, regrets, stats = [0.0, 0.0], [], [], DriveStats([], [], [])
    for _ in range(round(venv.sim.config.duration * venv.sim.config.policy_frequency)):
        values = []
        for i, planner in enumerate((full, pruned)):
            start = time.perf_counter()
            values.append(planner.action_values(venv.sim))
            seconds[i] += time.perf_counter() - start
        best, chosen = full.choose(values[0]), pruned.choose(values[1])
        alike.append((best == chosen).float().mean().item())
        regrets.append(values[0].max(-1).values - values[0].gather(1, chosen[:, None])[:, 0])
        _, _, _, infos = venv.step(chosen.numpy())
        stats.add_finished(infos)
    regret = torch.cat(regrets)
    steps = len(alike)
    return {
        "keep": keep or venv.sim.num_vehicles,
        "s_full": seconds[0] / steps,
        "s_pruned": seconds[1] / steps,
        "alike": float(np.mean(alike)),
        "regret": float(regret.mean()),
        "crash_bound": float((regret > 1).float().mean()),
        **stats.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=int, nargs="+", default=[15, 12, 10], help="vehicles kept, the ego included")
    parser.add_argument("--envs", type=int, default=256)
    parser.add_argument(
        "--sight",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("AHEAD", "BEHIND"),
        help="the pruned planner sees vehicles only this many metres ahead and behind (recipe.teacher.sight_*)",
    )
    args = parser.parse_args()
    columns = ("vehicles", "s per decision, all / kept", "same choice", "mean regret", "crash-bound", "return")
    print("| " + " | ".join((*columns, "crash rate", "speed")) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for keep in args.keep:
        r = compare(keep, args.envs, args.sight)
        print(
            f"| {r['keep']} | {r['s_full']:.2f} / {r['s_pruned']:.2f} | {r['alike']:.1%} | {r['regret']:.3f} | "
            f"{r['crash_bound']:.2%} | {r['mean_return']:.2f} | {r['crash_rate']:.1%} | {r['mean_speed']:.2f} |"
        )


if __name__ == "__main__":
    main()
