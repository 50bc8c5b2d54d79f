"""Episodes of a policy in one env: a record per episode and the summary over them.

The same code evaluates trained agents and baselines, during training and from ``drive evaluate``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class EpisodeRecord:
    episode_return: float
    crashed: bool
    mean_speed: float  # m/s, over policy steps
    distance: float  # m travelled by the ego
    lane_changes: int
    length: int  # policy steps
    seed: int


def run_episode(env: gym.Env, policy, seed: int, on_step=None) -> EpisodeRecord:
    """One episode; ``on_step(env, obs, action, policy)`` sees every decision, and the final state
    with ``action=None`` (for videos)."""
    obs, _ = env.reset(seed=seed)
    ego = env.unwrapped.vehicle
    position, lane = np.array(ego.position, dtype=float), ego.lane_index
    total, speeds, distance, lane_changes, crashed = 0.0, [], 0.0, 0, False
    done = False
    while not done:
        action = policy.act(obs)
        if on_step is not None:
            on_step(env, obs, action, policy)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        total += float(reward)
        speeds.append(float(info.get("speed", ego.speed)))
        ego = env.unwrapped.vehicle
        distance += float(np.linalg.norm(np.asarray(ego.position) - position))
        position = np.array(ego.position, dtype=float)
        lane_changes += _changed_lane(lane, ego.lane_index)
        lane = ego.lane_index
        crashed = crashed or bool(info.get("crashed", ego.crashed))
    if on_step is not None:
        on_step(env, obs, None, policy)
    return EpisodeRecord(total, crashed, float(np.mean(speeds)), distance, lane_changes, len(speeds), seed)


def _changed_lane(before, after) -> bool:
    """A lane change is a new lane id on the same road segment, not the road moving on to the next one."""
    return before is not None and after is not None and before[:2] == after[:2] and before[2] != after[2]


def evaluate(
    env: gym.Env, policy, episodes: int, seed: int = 0, progress: bool = False, on_step=None, desc: str = "evaluate"
):
    """``episodes`` records, episode ``i`` reset with ``seed + i``; ``desc`` names the progress bar."""
    seeds = range(seed, seed + episodes)
    return [run_episode(env, policy, s, on_step) for s in tqdm(seeds, desc=desc, unit="episode", disable=not progress)]


def summarize(records: list[EpisodeRecord]) -> dict:
    """Means over episodes; ``return_ci95`` is the normal-approximation 95% interval of the mean return."""
    returns = np.array([r.episode_return for r in records], dtype=float)
    n = len(returns)
    half = 1.96 * returns.std(ddof=1) / math.sqrt(n) if n > 1 else 0.0
    mean = float(returns.mean())
    return {
        "mean_return": mean,
        "return_ci95": [float(mean - half), float(mean + half)],
        "crash_rate": float(np.mean([r.crashed for r in records])),
        "mean_speed": float(np.mean([r.mean_speed for r in records])),
        "mean_distance": float(np.mean([r.distance for r in records])),
        "mean_lane_changes": float(np.mean([r.lane_changes for r in records])),
        "mean_length": float(np.mean([r.length for r in records])),
        "episodes": n,
    }


def records_as_dicts(records: list[EpisodeRecord]) -> list[dict]:
    return [asdict(r) for r in records]


def evaluate_batched(venv, act_batch, episodes: int, seed: int = 0, progress: bool = False) -> list[EpisodeRecord]:
    """``episodes`` records from the batched simulator: env ``i`` runs one episode seeded ``seed + i``.

    ``venv`` must hold exactly ``episodes`` envs; ``act_batch(obs)`` returns one action per env.
    """
    if venv.num_envs != episodes:
        raise ValueError(f"evaluate_batched needs one env per episode, got {venv.num_envs} for {episodes}")
    venv.seed(seed)
    obs = venv.reset()
    records: dict[int, EpisodeRecord] = {}
    with tqdm(total=episodes, desc="evaluate", unit="episode", disable=not progress) as bar:
        while len(records) < episodes:
            obs, _, dones, infos = venv.step(act_batch(obs))
            for i in np.flatnonzero(dones):
                if i not in records:
                    e = infos[i]["episode"]
                    records[i] = EpisodeRecord(
                        e["r"], e["crashed"], e["mean_speed"], e["distance"], e["lane_changes"], e["l"], seed + int(i)
                    )
                    bar.update(1)
    return [records[i] for i in range(episodes)]
