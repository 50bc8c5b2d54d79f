"""Whole episodes on both backends: the baselines' returns, crash rates and speeds agree within their
95% confidence intervals. CI runs 150 episodes per backend; ``-m slow`` runs the 500 the design asks for."""

import math

import numpy as np
import pytest

from drive.agents.baselines import IDMPolicy, RandomPolicy
from drive.agents.evaluation import evaluate, evaluate_batched
from drive.agents.policies import PolicySource
from drive.envs import make_env, make_venv


def _highway_env(policy: str, episodes: int):
    env = make_env("highway", "kinematics")
    actor = IDMPolicy(env) if policy == "idm" else RandomPolicy(env, seed=0)
    return evaluate(env, actor, episodes, seed=0)


def _batched(policy: str, episodes: int):
    venv = make_venv("highway", "kinematics", episodes, backend="batched")
    source = PolicySource(policy, "highway", "kinematics", {}, baseline=policy)
    return evaluate_batched(venv, source.make_batch(venv, seed=1), episodes, seed=10_000)


def _mean_ci(values):
    values = np.asarray(values, dtype=float)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean(), half


def _agree(a, b):
    (ma, ha), (mb, hb) = _mean_ci(a), _mean_ci(b)
    return abs(ma - mb) <= ha + hb  # the two 95% intervals overlap


def _compare(policy, episodes):
    ours, theirs = _batched(policy, episodes), _highway_env(policy, episodes)
    for field in ("episode_return", "crashed", "mean_speed"):
        a = [getattr(r, field) for r in ours]
        b = [getattr(r, field) for r in theirs]
        if field == "crashed" and (np.std(a) == 0 or np.std(b) == 0):
            assert abs(np.mean(a) - np.mean(b)) <= 0.03, (policy, field, np.mean(a), np.mean(b))
            continue
        assert _agree(a, b), (policy, field, _mean_ci(a), _mean_ci(b))


@pytest.mark.parametrize("policy", ["idm", "random"])
def test_baselines_agree_between_backends(policy):
    _compare(policy, 150)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["idm", "random"])
def test_baselines_agree_between_backends_over_500_episodes(policy):
    _compare(policy, 500)
