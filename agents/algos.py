"""DQN and PPO from stable-baselines3, built from a ``RunConfig``."""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from drive.errors import DriveError
from drive.perception.encoders import ENCODERS

ALGOS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO}

# Set by drive itself, never through algo.hyperparams.
_RESERVED = {"policy", "env", "policy_kwargs", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model"}


def check_hyperparams(algo: str, hyperparams: dict[str, Any]) -> None:
    """Refuse keys the SB3 constructor does not take and values whose type differs from its default."""
    params = inspect.signature(ALGOS[algo].__init__).parameters
    valid = sorted(k for k in params if k not in _RESERVED and k != "self")
    for key, value in hyperparams.items():
        if key not in valid:
            raise DriveError(f"unknown {algo} hyperparameter {key!r}; valid: {', '.join(valid)}")
        default = params[key].default
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and (isinstance(default, float) or isinstance(value, int))
        else:
            ok = True  # schedules, tuples, dicts, None defaults: SB3 checks them itself
        if not ok:
            raise DriveError(f"{algo} hyperparameter {key!r} must be of type {type(default).__name__}, got {value!r}")


def check_action_space(algo: str, action_space: gym.Space, env_name: str) -> None:
    if algo == "dqn" and not isinstance(action_space, gym.spaces.Discrete):
        raise DriveError(f"algorithm 'dqn' needs discrete actions, but env {env_name!r} has {action_space}; valid: ppo")


def policy_setup(config, observation_space: gym.Space) -> tuple[str, dict[str, Any]]:
    """SB3 policy name and ``policy_kwargs`` for this observation space."""
    algo = config.algo
    net_arch: Any = list(algo.net_arch)
    if algo.name == "ppo" and net_arch:
        net_arch = {"pi": net_arch, "vf": list(net_arch)}
    kwargs: dict[str, Any] = {"net_arch": net_arch}
    if isinstance(observation_space, gym.spaces.Dict):
        return "MultiInputPolicy", kwargs
    if config.env.obs == "pixels":
        kwargs.update(
            features_extractor_class=ENCODERS[algo.encoder.name],
            features_extractor_kwargs={"features_dim": algo.encoder.features_dim},
            normalize_images=False,  # the encoder normalises frames itself
        )
        return "CnnPolicy", kwargs
    return "MlpPolicy", kwargs


def build_model(config, env: VecEnv, device: str = "auto") -> BaseAlgorithm:
    check_action_space(config.algo.name, env.action_space, config.env.name)
    check_hyperparams(config.algo.name, config.algo.hyperparams)
    policy, policy_kwargs = policy_setup(config, env.observation_space)
    return ALGOS[config.algo.name](
        policy,
        env,
        policy_kwargs=policy_kwargs,
        seed=config.train.seed,
        device=device,
        verbose=0,
        **config.algo.hyperparams,
    )
