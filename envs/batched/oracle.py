"""Load highway-env states into the batched simulator, to compare the two step by step."""

from __future__ import annotations

import numpy as np
import torch

from drive.envs.batched.config import VARIANTS
from drive.envs.batched.state import TrafficState


def snapshot(env) -> dict[str, np.ndarray]:
    """The state of one highway-env highway env (``env.unwrapped``) as arrays, ego first."""
    env = env.unwrapped
    vehicles = env.road.vehicles
    ego = env.vehicle
    if vehicles[0] is not ego:
        raise ValueError("highway-env's ego is expected first in road.vehicles")
    return {
        "position": np.array([v.position for v in vehicles], dtype=np.float64),
        "heading": np.array([v.heading for v in vehicles], dtype=np.float64),
        "speed": np.array([v.speed for v in vehicles], dtype=np.float64),
        "lane": np.array([v.lane_index[2] for v in vehicles]),
        "target_lane": np.array([v.target_lane_index[2] for v in vehicles]),
        "target_speed": np.array([v.target_speed for v in vehicles], dtype=np.float64),
        "steering": np.array([v.action["steering"] for v in vehicles], dtype=np.float64),
        "acceleration": np.array([v.action["acceleration"] for v in vehicles], dtype=np.float64),
        "crashed": np.array([v.crashed for v in vehicles]),
        "impact": np.array([v.impact if v.impact is not None else (0.0, 0.0) for v in vehicles], dtype=np.float64),
        "has_impact": np.array([v.impact is not None for v in vehicles]),
        "delta": np.array([getattr(v, "DELTA", 4.0) for v in vehicles], dtype=np.float64),
        "timer": np.array([getattr(v, "timer", 0.0) for v in vehicles], dtype=np.float64),
        "speed_index": np.array(ego.speed_index),
        "time": np.array(env.time, dtype=np.float64),
        "steps": np.array(env.steps),
    }


def stack_snapshots(snapshots: list[dict], device="cpu", dtype=torch.float64) -> TrafficState:
    """Many snapshots (same vehicle count) as one TrafficState of len(snapshots) environments."""
    fields = {}
    for name in snapshots[0]:
        array = np.stack([s[name] for s in snapshots])
        tensor = torch.as_tensor(array, device=device)
        if tensor.is_floating_point():
            tensor = tensor.to(dtype)
        elif name in ("lane", "target_lane", "speed_index", "steps"):
            tensor = tensor.long()
        fields[name] = tensor
    return TrafficState(**fields)


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

    from drive.agents.baselines import IDMPolicy
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
