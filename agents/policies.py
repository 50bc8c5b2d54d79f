"""One way to ask any policy for an action: trained SB3 agents and the rule-based baselines.

A policy has ``act(obs)`` and ``action_values(obs)`` (Q-values for DQN, action probabilities or means
for PPO, None for baselines), so evaluation and ``drive watch`` treat them all alike.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from drive.agents.algos import ALGOS
from drive.agents.baselines import BASELINES
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm

from drive.errors import DriveError, check_choice


class AgentPolicy:
    """A trained stable-baselines3 model, acting greedily."""

    def __init__(self, model: BaseAlgorithm, name: str = "agent"):
        self.model = model
        self.name = name

    def act(self, obs):
        action, _ = self.model.predict(obs, deterministic=True)
        return int(action) if isinstance(self.model.action_space, gym.spaces.Discrete) else action

    @th.no_grad()
    def action_values(self, obs) -> np.ndarray:
        obs_tensor, _ = self.model.policy.obs_to_tensor(obs)
        if isinstance(self.model, DQN):
            values = self.model.q_net(obs_tensor)
        else:
            dist = self.model.policy.get_distribution(obs_tensor).distribution
            values = dist.probs if hasattr(dist, "probs") else dist.mean
        return values[0].cpu().numpy()


def load_model(checkpoint: str | Path, algo: str, device: str = "auto") -> BaseAlgorithm:
    """Load an SB3 zip, turning a missing or unreadable file into one clear line."""
    path = Path(checkpoint)
    if not path.is_file():
        raise DriveError(f"checkpoint {str(path)!r} does not exist")
    check_choice("algorithm", algo, ALGOS)
    try:
        return ALGOS[algo].load(path, device=device)
    except (zipfile.BadZipFile, KeyError, ValueError, RuntimeError, EOFError, OSError) as err:
        raise DriveError(
            f"checkpoint {str(path)!r} is not a readable {algo} model ({type(err).__name__})"
        ) from None


def check_spaces(model: BaseAlgorithm, env: gym.Env, where: str) -> None:
    """Refuse a model whose observation or action space differs from the env's."""
    for kind in ("observation_space", "action_space"):
        trained, given = getattr(model, kind), getattr(env, kind)
        if trained != given:
            raise DriveError(
                f"{where} was trained on {kind.split('_')[0]}s {trained}, but the env gives {given}; "
                "use the env and --obs preset it was trained on"
            )


def make_policy(env: gym.Env, *, policy: str | None = None, model: BaseAlgorithm | None = None, seed=None):
    """A baseline by name, or a trained model."""
    if model is not None:
        return AgentPolicy(model)
    check_choice("policy", policy, BASELINES)
    return BASELINES[policy](env, seed=seed)
