"""Rule-based baselines every learnt policy is compared with: random, and IDM/MOBIL.

The IDM/MOBIL driver uses highway-env's own ``IDMVehicle`` models to decide, then speaks the ego's
``DiscreteMetaAction`` language: MOBIL's lane choice becomes LANE_LEFT/LANE_RIGHT, and IDM's acceleration
over one policy period picks the nearest of the ego's target speeds (FASTER/IDLE/SLOWER).
"""

from __future__ import annotations

from contextlib import contextmanager

import gymnasium as gym
import numpy as np

from drive.errors import DriveError


class RandomPolicy:
    """Uniform random actions, seeded."""

    name = "random"
    values_label = ""

    def __init__(self, env: gym.Env, seed: int | None = None):
        self.action_space = env.action_space
        self.action_space.seed(seed)

    def act(self, obs) -> np.ndarray | int:
        return self.action_space.sample()

    def action_values(self, obs) -> np.ndarray | None:
        return None


class IDMPolicy:
    """highway-env's IDM (longitudinal) and MOBIL (lateral) models driving the ego."""

    name = "idm"
    values_label = ""

    def __init__(self, env: gym.Env, seed: int | None = None):
        from highway_env.envs.common.action import DiscreteMetaAction

        self.env = env.unwrapped
        if not isinstance(getattr(self.env, "action_type", None), DiscreteMetaAction):
            raise DriveError(
                "policy 'idm' needs highway-env's DiscreteMetaAction; valid envs: highway, merge, "
                "roundabout, intersection"
            )
        self.actions = self.env.action_type.actions_indexes

    def act(self, obs) -> int:
        from highway_env.vehicle.behavior import IDMVehicle

        ego = self.env.vehicle
        with _stand_in(self.env.road, ego, IDMVehicle.create_from(ego)) as idm:
            idm.target_speed = float(np.max(ego.target_speeds))
            lateral = self._lane_change(ego, idm)
            if lateral is not None:
                return self.actions[lateral]
            front, rear = self.env.road.neighbour_vehicles(idm, ego.lane_index)
            acceleration = idm.acceleration(ego_vehicle=idm, front_vehicle=front, rear_vehicle=rear)
        return self.actions[self._longitudinal(ego, acceleration)]

    def action_values(self, obs) -> np.ndarray | None:
        return None

    def _lane_change(self, ego, idm) -> str | None:
        if "LANE_LEFT" not in self.actions or ego.lane_index != ego.target_lane_index or abs(ego.speed) < 1:
            return None
        network = self.env.road.network
        for lane_index in network.side_lanes(ego.lane_index):
            if network.get_lane(lane_index).is_reachable_from(ego.position) and idm.mobil(lane_index):
                return "LANE_LEFT" if lane_index[2] < ego.lane_index[2] else "LANE_RIGHT"
        return None

    def _longitudinal(self, ego, acceleration: float) -> str:
        dt = 1.0 / self.env.config["policy_frequency"]
        wanted = ego.speed + acceleration * dt
        nearest = int(np.argmin(np.abs(ego.target_speeds - wanted)))
        if nearest > ego.speed_index and "FASTER" in self.actions:
            return "FASTER"
        if nearest < ego.speed_index and "SLOWER" in self.actions:
            return "SLOWER"
        return "IDLE"


@contextmanager
def _stand_in(road, ego, idm):
    """Put the IDM copy in the ego's place, so neighbour searches do not find the ego next to itself."""
    i = road.vehicles.index(ego)
    road.vehicles[i] = idm
    try:
        yield idm
    finally:
        road.vehicles[i] = ego


BASELINES = {"random": RandomPolicy, "idm": IDMPolicy}
