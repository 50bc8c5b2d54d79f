"""Where a pixel student crashes: the state one policy step before each crash, on the batched simulator.

    python benchmarks/student_crashes.py RUN/student/round_04.zip [--episodes 1024] [--seed 500000]

One episode per env (the episodes of ``drive evaluate --backend batched --seed S``), through the camera of the
checkpoint's run. For every crashed episode: the step, the last three actions, the ego's speed and lane, and the
nearest other vehicle before the last step (metres ahead and across, its speed). Crashes are then counted by kind:
``same lane`` (the nearest vehicle in the ego's lane), ``beside`` (in a neighbouring lane, less than 6 m along the
road), ``other``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

from drive.agents.policies import load_model, policy_source
from drive.envs import make_venv
from drive.envs.batched.constants import ACTION_NAMES


def crashes(checkpoint: str, episodes: int, seed: int) -> list[dict]:
    config = policy_source(checkpoint=checkpoint, algo="ppo").env_config
    venv = make_venv("highway", "pixels", episodes, backend="batched", config=config, seed=seed)
    model = load_model(checkpoint, "ppo", device="cpu")
    obs, finished, history, found = venv.reset(), np.zeros(episodes, bool), [], []
    while not finished.all():
        state = venv.sim.state
        before = state.position.clone(), state.speed.clone(), state.lane[:, 0].clone()
        actions, _ = model.predict(obs, deterministic=True)
        history.append(actions)
        obs, _, dones, infos = venv.step(actions)
        for i in np.flatnonzero(dones & ~finished):
            finished[i] = True
            if infos[i]["episode"]["crashed"]:
                found.append(_describe(i, before, history))
    return found


def _describe(i: int, before, history: list[np.ndarray]) -> dict:
    position, speed, lane = before
    relative = position[i, 1:] - position[i, 0]
    nearest = int(relative.norm(dim=-1).argmin())
    ahead, across = (float(v) for v in relative[nearest])
    kind = "same lane" if abs(across) < 2 else "beside" if abs(across) < 6 and abs(ahead) < 6 else "other"
    return {
        "step": len(history) - 1,
        "last_actions": [ACTION_NAMES[int(h[i])] for h in history[-3:]],
        "speed": float(speed[i, 0]),
        "lane": int(lane[i]),
        "other_ahead": ahead,
        "other_across": across,
        "other_speed": float(speed[i, 1 + nearest]),
        "kind": kind,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a pixel PPO student's .zip inside its run folder")
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=500_000)
    args = parser.parse_args()
    found = crashes(args.checkpoint, args.episodes, args.seed)
    for crash in found:
        print(json.dumps(crash))
    kinds = Counter(c["kind"] for c in found)
    fast = sum(c["speed"] >= 27.5 for c in found)
    print(f"{len(found)} crashes in {args.episodes} episodes: {dict(kinds)}; at 27.5 m/s or more: {fast}")


if __name__ == "__main__":
    main()
