import gymnasium as gym
import highway_env  # noqa: F401
import numpy as np
import pytest

from drive.agents.baselines import IDMPolicy
from drive.envs.batched.config import VARIANTS
from drive.envs.batched.highway_state import snapshot


def collect_transitions(variant: str, episodes: int, observation: dict | None = None, config: dict | None = None):
    """(state, action, next state, reward, next observation, reward terms) along highway-env episodes;
    even episodes driven by the IDM baseline, odd ones by random actions."""
    config = {**(config or {}), **({"observation": observation} if observation else {})}
    env = gym.make(VARIANTS[variant], config=config).unwrapped
    rng = np.random.default_rng(0)
    out = []
    for episode in range(episodes):
        env.reset(seed=episode)
        idm = IDMPolicy(env)
        done = False
        while not done:
            action = idm.act(None) if episode % 2 == 0 else int(rng.integers(5))
            before = snapshot(env)
            obs, reward, terminated, truncated, info = env.step(action)
            out.append((before, action, snapshot(env), reward, obs, info["rewards"]))
            done = terminated or truncated
    return out


@pytest.fixture(scope="session")
def fast_transitions():
    return collect_transitions("highway-fast", 40)


@pytest.fixture(scope="session")
def highway_transitions():
    return collect_transitions("highway", 10)
