"""Read highway-env states (``snapshot``) into the batched simulator's ``TrafficState`` (``stack_snapshots``): frame
stores record highway-env rollouts this way, and the agreement tests and benchmarks compare the two step by step."""

from __future__ import annotations

import numpy as np
import torch

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
