"""DQN and PPO from stable-baselines3, built from a ``RunConfig``."""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import gymnasium as gym
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from drive.errors import DriveError
from drive.perception.encoders import ENCODERS, EncoderEnsemble, FrameEncoder

ALGOS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "ppo": PPO}

# Set by drive itself, never through algo.hyperparams.
_RESERVED = {"policy", "env", "policy_kwargs", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model"}


def hyperparam_names(algo: str) -> list[str]:
    """What ``algo.hyperparams`` may set: the SB3 constructor's keywords that a config owns."""
    params = inspect.signature(ALGOS[algo].__init__).parameters
    return sorted(k for k in params if k not in _RESERVED and k != "self")


def check_hyperparam_name(algo: str, key: str) -> None:
    valid = hyperparam_names(algo)
    if key not in valid:
        raise DriveError(f"unknown {algo} hyperparameter {key!r}; valid: {', '.join(valid)}")


def check_hyperparams(algo: str, hyperparams: dict[str, Any]) -> None:
    """Refuse keys the SB3 constructor does not take and values whose type differs from its default."""
    params = inspect.signature(ALGOS[algo].__init__).parameters
    for key, value in hyperparams.items():
        check_hyperparam_name(algo, key)
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
        if algo.encoder.members > 1:  # each member holds its own MLP; the heads are linear on their features
            kwargs.update(
                features_extractor_class=EncoderEnsemble,
                features_extractor_kwargs={
                    "features_dim": algo.encoder.features_dim,
                    "members": algo.encoder.members,
                    "encoder": algo.encoder.name,
                    "hidden": tuple(algo.net_arch),
                },
                net_arch={"pi": [], "vf": []},
            )
        return "CnnPolicy", kwargs
    return "MlpPolicy", kwargs


def build_model(config, env: VecEnv, device: str = "auto") -> BaseAlgorithm:
    check_action_space(config.algo.name, env.action_space, config.env.name)
    check_hyperparams(config.algo.name, config.algo.hyperparams)
    pretrained = None
    if config.algo.encoder.pretrained:
        pretrained = load_pretrained(config.algo.encoder.pretrained, env.observation_space)
        config = adopt_encoder(config, pretrained[1])
    policy, policy_kwargs = policy_setup(config, env.observation_space)
    model = ALGOS[config.algo.name](
        policy,
        env,
        policy_kwargs=policy_kwargs,
        seed=config.train.seed,
        device=device,
        verbose=0,
        **config.algo.hyperparams,
    )
    if pretrained is not None:
        for encoder in frame_encoders(model):
            encoder.load_state_dict(pretrained[0].state_dict())
        apply_freeze(model, config)
    return model


def adopt_encoder(config, metadata: dict):
    """The config with the pretrained encoder's architecture, whatever the preset said."""
    encoder = replace(config.algo.encoder, name=metadata["encoder"], features_dim=metadata["features_dim"])
    return replace(config, algo=replace(config.algo, encoder=encoder))


def load_pretrained(path: str, observation_space: gym.Space):
    from drive.perception.checkpoint import check_fits, load_encoder

    encoder, metadata = load_encoder(path)
    check_fits(metadata, observation_space, repr(str(path)))
    return encoder, metadata


def frame_encoders(model: BaseAlgorithm) -> list:
    """Every CNN encoder in the model's policy (DQN: online and target; PPO: shared or actor and critic)."""
    return [m for m in model.policy.modules() if isinstance(m, FrameEncoder)]


def apply_freeze(model: BaseAlgorithm, config) -> None:
    """Frozen encoders get no gradients, so the optimizer leaves them as pretrained (also after a resume)."""
    if config.algo.encoder.freeze:
        for encoder in frame_encoders(model):
            encoder.requires_grad_(False)
