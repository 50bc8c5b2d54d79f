"""The highway config keys the batched simulator reads, from highway-env's own config dict.

Every key of highway-env's highway config is either honoured, a rendering setting with no effect on the
simulation, or refused when set to anything but highway-env's default (one clear line naming the key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drive.errors import DriveError

VARIANTS = {"highway": "highway-v0", "highway-fast": "highway-fast-v0"}

# Drawn by highway-env's viewer only (the human/rgb render), not by the simulation or the observations.
# (``scaling`` and ``centering_position`` are not here: GrayscaleObservation falls back on them.)
RENDER_ONLY = {
    "screen_width",
    "screen_height",
    "show_trajectories",
    "render_agent",
    "offscreen_rendering",
    "real_time_rendering",
}
# Keys whose only supported value is highway-env's default.
FIXED = {
    "action": {"type": "DiscreteMetaAction"},
    "other_vehicles_type": "highway_env.vehicle.behavior.IDMVehicle",
    "controlled_vehicles": 1,
    "manual_control": False,
    "neighbour_vehicles_connected_lanes": False,  # a straight road has no connected lanes anyway
}
OBSERVATION_TYPES = ("Kinematics", "GrayscaleObservation")


@dataclass(frozen=True)
class BatchedConfig:
    simulation_frequency: int
    policy_frequency: int
    lanes_count: int
    vehicles_count: int
    initial_lane_id: int | None
    duration: float
    ego_spacing: float
    vehicles_density: float
    collision_reward: float
    right_lane_reward: float
    high_speed_reward: float
    lane_change_reward: float
    reward_speed_range: tuple[float, float]
    normalize_reward: bool
    offroad_terminal: bool
    others_check_collisions: bool  # highway-fast-v0 checks collisions of the ego only
    observation: dict
    scaling: float  # the viewer's pixels per metre, and GrayscaleObservation's when its own is unset
    centering_position: tuple[float, float]  # where the ego is drawn, as a share of the frame (x, y)

    @property
    def frames_per_action(self) -> int:
        return int(self.simulation_frequency // self.policy_frequency)

    @property
    def dt(self) -> float:
        return 1.0 / self.simulation_frequency


def highway_defaults(variant: str) -> dict[str, Any]:
    from highway_env.envs.highway_env import HighwayEnv, HighwayEnvFast

    if variant not in VARIANTS:
        raise DriveError(f"unknown batched scenario {variant!r}; valid: {', '.join(VARIANTS)}")
    return (HighwayEnvFast if variant == "highway-fast" else HighwayEnv).default_config()


def batched_config(variant: str = "highway-fast", overrides: dict[str, Any] | None = None) -> BatchedConfig:
    """highway-env's config for ``highway-v0``/``highway-fast-v0`` with ``overrides``, checked key by key."""
    config = highway_defaults(variant)
    for key, value in (overrides or {}).items():
        if key not in config:
            raise DriveError(f"unknown highway config key {key!r}; valid: {', '.join(sorted(config))}")
        config[key] = value
    for key, default in FIXED.items():
        if config[key] != default:
            raise DriveError(
                f"the batched simulator supports {key}={default!r} only, got {config[key]!r}; "
                "use --backend highway-env for other values"
            )
    observation = dict(config["observation"])
    if observation.get("type") not in OBSERVATION_TYPES:
        raise DriveError(
            f"unknown batched observation type {observation.get('type')!r}; valid: {', '.join(OBSERVATION_TYPES)}"
        )
    if config["simulation_frequency"] % config["policy_frequency"]:
        raise DriveError("simulation_frequency must be a multiple of policy_frequency in the batched simulator")
    return BatchedConfig(
        simulation_frequency=int(config["simulation_frequency"]),
        policy_frequency=int(config["policy_frequency"]),
        lanes_count=int(config["lanes_count"]),
        vehicles_count=int(config["vehicles_count"]),
        initial_lane_id=config["initial_lane_id"],
        duration=float(config["duration"]),
        ego_spacing=float(config["ego_spacing"]),
        vehicles_density=float(config["vehicles_density"]),
        collision_reward=float(config["collision_reward"]),
        right_lane_reward=float(config["right_lane_reward"]),
        high_speed_reward=float(config["high_speed_reward"]),
        lane_change_reward=float(config["lane_change_reward"]),
        reward_speed_range=tuple(map(float, config["reward_speed_range"])),
        normalize_reward=bool(config["normalize_reward"]),
        offroad_terminal=bool(config["offroad_terminal"]),
        others_check_collisions=variant != "highway-fast",
        observation=observation,
        scaling=float(config["scaling"]),
        centering_position=tuple(map(float, config["centering_position"])),
    )
