"""The highway-env scenarios we expose and the two observation presets.

A scenario is a highway-env environment id plus the config keys we set on top of its defaults.
The ``pixels`` preset is the grayscale top-down stack of highway-env's own CNN example
(``scripts/sb3_highway_dqn_cnn.py``); ``kinematics`` is highway-env's vehicle table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BACKENDS = ("highway-env", "batched", "envpool")
BATCHED_SCENARIOS = {"highway": "highway-fast"}  # scenario -> batched simulator variant
# scenario -> EnvPool task (the drive[envpool] extra, see envs/envpool_vec.py)
ENVPOOL_SCENARIOS = {
    "highway": "HighwayFast-v0",
    "merge": "Merge-v0",
    "roundabout": "Roundabout-v0",
    "intersection": "Intersection-v0",
    "racetrack": "Racetrack-v0",
    "parking": "Parking-v0",
}
ENVPOOL_OBS = ("kinematics", "pixels")
# The scenarios EnvPool draws the pixels preset for: its other tasks take no `scaling` and render at their own
# fixed scale (5.5 to 7.15 px/m), not the preset's 1.75.
ENVPOOL_PIXELS_SCENARIOS = ("highway",)

PIXELS = {
    "type": "GrayscaleObservation",
    "observation_shape": (128, 64),  # (W, H): highway-env's frames are (stack, W, H)
    "stack_size": 4,
    "weights": [0.2989, 0.5870, 0.1140],  # ITU-R 601 luma
    "scaling": 1.75,  # pixels per metre
}
KINEMATICS = {"type": "Kinematics"}
# The pixels preset's camera, which `env.config.observation` may change (the rest is the preset): the frame's size,
# its scale, and where the ego sits in it. At the preset's 1.75 px/m with the ego at 0.3 the frame shows 51 m ahead,
# less than a safe, fast driver needs (docs/driver.md, "the camera's reach").
CAMERA_KEYS = ("observation_shape", "scaling", "centering_position")

OBS_PRESETS = ("pixels", "kinematics")


@dataclass(frozen=True)
class Scenario:
    name: str
    highway_id: str  # the highway-env id we build on
    # None keeps the scenario's own vehicle-table observation from highway-env's default config.
    kinematics: dict[str, Any] | None = None
    default_algo: str = "dqn"
    extra_config: dict[str, Any] | None = None  # highway-env config keys we always set

    def observation_config(self, obs: str) -> dict[str, Any] | None:
        """The ``observation`` entry to put in the highway-env config, None to keep its default."""
        return dict(PIXELS) if obs == "pixels" else self.kinematics


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        # highway-fast-v0 is the variant highway-env's own SB3 scripts train on (5 Hz simulation).
        Scenario("highway", "highway-fast-v0"),
        Scenario("merge", "merge-v0"),
        Scenario("roundabout", "roundabout-v0"),
        # own table: 15 vehicles, heading features; see highway_fixes for the vehicle type
        Scenario(
            "intersection",
            "intersection-v0",
            extra_config={"other_vehicles_type": "drive.envs.highway_fixes.IntersectionIDMVehicle"},
        ),
        # racetrack's default observation is an occupancy grid; the preset asks for the vehicle table.
        Scenario("racetrack", "racetrack-v0", kinematics=dict(KINEMATICS), default_algo="ppo"),
        # parking's own table (KinematicsGoal, a Dict space) carries the goal it must reach.
        Scenario("parking", "parking-v0", default_algo="ppo"),
    )
}


def env_id(scenario: str, obs: str) -> str:
    """The Gymnasium id of a scenario in an observation preset, e.g. ``drive/highway-pixels-v0``."""
    return f"drive/{scenario}-{obs}-v0"
