"""Gymnasium registration of every scenario x observation preset, idempotent and import-light."""

from __future__ import annotations

import gymnasium as gym

from drive.envs.scenarios import OBS_PRESETS, SCENARIOS, env_id


def register_envs() -> None:
    for scenario in SCENARIOS:
        for obs in OBS_PRESETS:
            if env_id(scenario, obs) in gym.registry:
                continue
            gym.register(
                id=env_id(scenario, obs),
                entry_point="drive.envs.factory:make_scenario_env",
                kwargs={"scenario": scenario, "obs": obs},
            )
