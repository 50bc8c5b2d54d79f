"""Build one scenario env, or a stable-baselines3 vec env of N copies."""

from __future__ import annotations

import os
import warnings
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from drive.envs.scenarios import (
    BACKENDS,
    BATCHED_SCENARIOS,
    CAMERA_KEYS,
    ENVPOOL_OBS,
    ENVPOOL_PIXELS_SCENARIOS,
    ENVPOOL_SCENARIOS,
    OBS_PRESETS,
    SCENARIOS,
    env_id,
)
from drive.errors import DriveError, EngineWarning, check_choice

VEC_ENV_CLASSES = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}


def highway_config(scenario: str, obs: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config dict handed to highway-env: the preset's observation plus user overrides.

    Unknown keys are refused: highway-env's ``configure`` would silently accept them. ``observation`` may only
    move the pixels preset's camera (``CAMERA_KEYS``).
    """
    check_choice("env", scenario, SCENARIOS)
    check_choice("observation preset", obs, OBS_PRESETS)
    spec = SCENARIOS[scenario]
    defaults = _env_class(spec.highway_id).default_config()
    config: dict[str, Any] = dict(spec.extra_config or {})
    observation = spec.observation_config(obs)
    if observation is not None:
        config["observation"] = observation
    for key, value in (overrides or {}).items():
        if key not in defaults:
            raise DriveError(f"unknown {scenario} env config key {key!r}; valid: {', '.join(sorted(defaults))}")
        if key == "observation" and obs == "pixels":
            config["observation"] = {**config["observation"], **check_camera(value)}
        elif key == "observation":
            raise DriveError(
                f"env config key 'observation' is set by the {obs} preset; choose --obs instead (with --obs pixels it"
                f" may set the camera: {', '.join(CAMERA_KEYS)})"
            )
        elif key == "action":
            raise DriveError(f"env config key {key!r} is set by the preset; choose --obs instead")
        else:
            config[key] = check_config_value(key, value, defaults[key])
    return config


def check_camera(camera: Any) -> dict[str, Any]:
    """The pixels preset's camera keys a user set, each checked: a frame of at least 16 x 16 px (the encoders
    halve it three times), a scale above 0 px/m, the ego's place as two fractions of the frame."""
    if not isinstance(camera, dict) or not set(camera) <= set(CAMERA_KEYS):
        got = sorted(camera) if isinstance(camera, dict) else camera
        raise DriveError(
            f"env config key 'observation' takes the pixels camera only, got {got!r}; valid keys: "
            f"{', '.join(CAMERA_KEYS)}"
        )
    checks = {
        "observation_shape": (lambda v: _pair(v, int) and min(v) >= 16, "two integers of at least 16, [W, H]"),
        "scaling": (lambda v: _number(v) and v > 0, "a number of pixels per metre above 0"),
        "centering_position": (
            lambda v: _pair(v, int | float) and all(0 <= c <= 1 for c in v),
            "two numbers from 0 to 1, [along, across]",
        ),
    }
    for key, value in camera.items():
        valid, allowed = checks[key]
        if not valid(value):
            raise DriveError(f"env config key 'observation.{key}' must be {allowed}, got {value!r}")
    # GrayscaleObservation adds the shape to a tuple; a config read back from YAML or JSON holds lists.
    return {k: tuple(v) if k == "observation_shape" else v for k, v in camera.items()}


def without_camera(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The user's env config keys but the pixels camera (``observation``): the road and traffic alone, for an env
    that draws no pixels or takes its camera elsewhere."""
    return {key: value for key, value in (overrides or {}).items() if key != "observation"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pair(value: Any, kind: type) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
    )


# highway-env config keys that must be positive (or, for counts of other vehicles, at least 0): highway-env
# itself would divide by zero, loop forever or build an empty road on anything else.
POSITIVE = {"lanes_count", "policy_frequency", "simulation_frequency", "duration", "vehicles_density", "ego_spacing"}
NON_NEGATIVE = {"vehicles_count", "controlled_vehicles"}
WHOLE = {"lanes_count", "vehicles_count", "controlled_vehicles", "policy_frequency", "simulation_frequency"}


def check_config_value(key: str, value: Any, default: Any) -> Any:
    """A number where highway-env's default is one (an integer for counts and frequencies), in range."""
    if isinstance(default, bool) or not isinstance(default, int | float):
        return value
    whole = key in WHOLE
    kind = "an integer" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise DriveError(f"env config key {key!r} must be {kind}, got {value!r}")
    if key in POSITIVE and value <= 0:
        raise DriveError(f"env config key {key!r} must be above 0, got {value!r}")
    if key in NON_NEGATIVE and value < 0:
        raise DriveError(f"env config key {key!r} must be at least 0, got {value!r}")
    return value


def make_scenario_env(
    scenario: str, obs: str, config: dict[str, Any] | None = None, render_mode: str | None = None
) -> gym.Env:
    """Gymnasium entry point of ``drive/<scenario>-<obs>-v0``: the highway-env env itself, configured."""
    _headless_pygame(render_mode)
    full = highway_config(scenario, obs, config)
    return _env_class(SCENARIOS[scenario].highway_id)(config=full, render_mode=render_mode)


def _headless_pygame(render_mode: str | None) -> None:
    """Let highway-env's pygame renderer draw without a screen or a sound card, quietly.

    SDL's "offscreen" driver draws normally; its "dummy" driver would make highway-env's viewer draw nothing.
    """
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    no_screen = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if render_mode != "human" and no_screen and os.name == "posix" and os.uname().sysname == "Linux":
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def make_env(
    scenario: str, obs: str = "pixels", config: dict[str, Any] | None = None, render_mode: str | None = None
) -> gym.Env:
    """One env through ``gym.make`` (with Gymnasium's checker and order enforcing)."""
    highway_config(scenario, obs, config)  # validate before Gymnasium wraps errors in warnings
    return gym.make(env_id(scenario, obs), config=config, render_mode=render_mode)


def make_venv(
    scenario: str,
    obs: str = "pixels",
    n_envs: int = 1,
    *,
    seed: int | None = None,
    backend: str = "highway-env",
    vec_env: str = "dummy",
    config: dict[str, Any] | None = None,
    render_mode: str | None = None,
    device: str = "cpu",
) -> VecEnv:
    """N copies of a scenario as a stable-baselines3 VecEnv: highway-env envs wrapped in ``Monitor``, the
    batched simulator (one process, one device, ``device``) or an EnvPool pool (the ``drive[envpool]`` extra)."""
    check_choice("backend", backend, BACKENDS)
    check_choice("vec env", vec_env, VEC_ENV_CLASSES)
    if n_envs < 1:
        raise DriveError(f"n_envs must be at least 1, got {n_envs}")
    full = highway_config(scenario, obs, config)
    if backend == "batched":
        return make_batched_vec_env(scenario, n_envs, full, seed=seed or 0, device=device)
    if backend == "envpool":
        return make_envpool_vec_env(scenario, obs, n_envs, config, seed=seed, render_mode=render_mode)
    return sb3_make_vec_env(
        f"drive:{env_id(scenario, obs)}",  # the module prefix registers our ids in subprocess workers too
        n_envs=n_envs,
        seed=seed,
        vec_env_cls=VEC_ENV_CLASSES[vec_env],
        env_kwargs={"config": config, "render_mode": render_mode},
    )


def make_batched_vec_env(scenario: str, n_envs: int, full_config: dict, seed: int = 0, device: str = "cpu"):
    """The batched simulator for a scenario it covers, as an SB3 VecEnv."""
    if scenario not in BATCHED_SCENARIOS:
        raise DriveError(f"backend 'batched' does not simulate env {scenario!r}; valid: {', '.join(BATCHED_SCENARIOS)}")
    from drive.envs.batched.vec_env import BatchedVecEnv

    return BatchedVecEnv(n_envs, BATCHED_SCENARIOS[scenario], full_config, device=resolve_device(device), seed=seed)


def make_envpool_vec_env(
    scenario: str, obs: str, n_envs: int, overrides: dict | None, seed: int | None = None, render_mode=None
):
    """EnvPool's port of a scenario, as an SB3 VecEnv; ``overrides`` are the user's config keys (checked by
    ``highway_config``), which EnvPool must also know."""
    if scenario not in ENVPOOL_SCENARIOS:
        raise DriveError(f"backend 'envpool' does not simulate env {scenario!r}; valid: {', '.join(ENVPOOL_SCENARIOS)}")
    if obs not in ENVPOOL_OBS:
        raise DriveError(f"backend 'envpool' has no observation preset {obs!r}; valid: {', '.join(ENVPOOL_OBS)}")
    if obs == "pixels" and scenario not in ENVPOOL_PIXELS_SCENARIOS:
        raise DriveError(
            f"backend 'envpool' cannot draw the pixels preset on env {scenario!r} (EnvPool renders it at its own"
            f" scale); valid: --obs kinematics, or pixels on env {', '.join(ENVPOOL_PIXELS_SCENARIOS)}"
        )
    from drive.envs.envpool_caveats import caveat
    from drive.envs.envpool_vec import EnvPoolVecEnv, envpool_kwargs, import_envpool

    highway_keys = _env_class(SCENARIOS[scenario].highway_id).default_config()
    # the camera goes in `pixels`, the render settings
    kwargs = envpool_kwargs(scenario, without_camera(overrides), highway_keys, import_envpool())
    pixels = highway_config(scenario, obs, overrides)["observation"] if obs == "pixels" else None
    if (warning := caveat(scenario)) is not None:
        warnings.warn(EngineWarning(warning), stacklevel=3)
    return EnvPoolVecEnv(scenario, n_envs, kwargs, seed=seed, render_mode=render_mode, pixels=pixels)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when torch sees a GPU, else cpu."""
    import torch

    from drive.config import check_device

    if check_device(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _env_class(highway_id: str) -> type[gym.Env]:
    import highway_env  # noqa: F401  (registers highway-env's ids)

    return load_env_creator(gym.spec(highway_id).entry_point)
