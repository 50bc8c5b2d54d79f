"""One way to ask any policy for an action: trained SB3 agents and the rule-based baselines.

A policy has ``act(obs)`` and ``action_values(obs)`` (Q-values for DQN, action probabilities or means
for PPO, None for baselines), so evaluation and ``drive watch`` treat them all alike.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm

from drive.agents.algos import ALGOS
from drive.agents.baselines import BASELINES
from drive.errors import DriveError, check_choice


class AgentPolicy:
    """A trained stable-baselines3 model, acting greedily."""

    def __init__(self, model: BaseAlgorithm, name: str = "agent"):
        self.model = model
        self.name = name
        discrete = isinstance(model.action_space, gym.spaces.Discrete)
        self.values_label = "Q" if isinstance(model, DQN) else ("p" if discrete else "mean")

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


class BatchPolicy:
    """``policy(obs) -> actions`` for all envs of a batch; ``action_values(obs)`` of the first env, if any."""

    def __init__(self, act_batch, agent: AgentPolicy | None = None):
        self.act_batch, self.agent = act_batch, agent
        self.values_label = agent.values_label if agent else ""

    def __call__(self, obs) -> np.ndarray:
        return self.act_batch(obs)

    def action_values(self, obs) -> np.ndarray | None:
        if self.agent is None:
            return None
        return self.agent.action_values({k: v[:1] for k, v in obs.items()} if isinstance(obs, dict) else obs[:1])


def load_model(checkpoint: str | Path, algo: str, device: str = "auto") -> BaseAlgorithm:
    """Load an SB3 zip, turning a missing or unreadable file into one clear line."""
    path = Path(checkpoint)
    if not path.is_file():
        raise DriveError(f"checkpoint {str(path)!r} does not exist")
    check_choice("algorithm", algo, ALGOS)
    try:
        return ALGOS[algo].load(path, device=device)
    except (zipfile.BadZipFile, KeyError, ValueError, RuntimeError, EOFError, OSError) as err:
        raise DriveError(f"checkpoint {str(path)!r} is not a readable {algo} model ({type(err).__name__})") from None
    except (TypeError, AttributeError):  # SB3 builds the other algorithm's policy from the saved arguments
        others = ", ".join(a for a in ALGOS if a != algo)
        raise DriveError(
            f"checkpoint {str(path)!r} is not a {algo} model; give its algorithm (--algo {others})"
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


def check_policy_fits_backend(policy: str | None, backend: str) -> None:
    """Refuse the IDM baseline on EnvPool: it reads the batched simulator's state (or highway-env's)."""
    if backend == "envpool" and policy == "idm":
        raise DriveError("--policy idm reads the simulator's state, which EnvPool does not share; valid: random, a run")


def make_policy(env: gym.Env, *, policy: str | None = None, model: BaseAlgorithm | None = None, seed=None):
    """A baseline by name, or a trained model."""
    if model is not None:
        return AgentPolicy(model)
    check_choice("policy", policy, BASELINES)
    return BASELINES[policy](env, seed=seed)


@dataclass(frozen=True)
class PolicySource:
    """Where a policy to evaluate or watch comes from, and the env it belongs in."""

    label: str  # names the output: a run folder, a checkpoint or a baseline
    env: str
    obs: str
    env_config: dict
    checkpoint: Path | None = None
    algo: str | None = None
    baseline: str | None = None

    def make_batch(self, venv, seed: int = 0, device: str = "auto") -> BatchPolicy:
        """One action per env of a batched VecEnv, from the observations of all of them at once."""
        if self.baseline == "idm":
            from drive.envs.batched.ego_idm import idm_meta_actions

            return BatchPolicy(lambda obs: idm_meta_actions(venv.sim).cpu().numpy())
        if self.baseline == "random":
            rng, space = np.random.default_rng(seed), venv.action_space
            if isinstance(space, gym.spaces.Box):  # parking's steering and acceleration
                return BatchPolicy(lambda obs: rng.uniform(space.low, space.high, (venv.num_envs, *space.shape)))
            return BatchPolicy(lambda obs: rng.integers(0, space.n, size=venv.num_envs))
        model = self.load(venv, device)
        return BatchPolicy(lambda obs: model.predict(obs, deterministic=True)[0], AgentPolicy(model, self.label))

    def make(self, env: gym.Env, seed: int | None = None, device: str = "auto"):
        if self.baseline is not None:
            return make_policy(env, policy=self.baseline, seed=seed)
        return AgentPolicy(self.load(env, device), name=self.label)

    def load(self, env, device: str):
        """The checkpoint's model, refused if its spaces do not fit ``env``'s."""
        model = load_model(self.checkpoint, self.algo, device=device)
        check_spaces(model, env, f"checkpoint {self.checkpoint.name}")
        return model


def policy_source(
    *, run=None, checkpoint=None, policy=None, env: str | None = None, obs: str | None = None, algo=None
) -> PolicySource:
    """Resolve exactly one of ``--run``, ``--checkpoint``, ``--policy``."""
    from drive.runs import CONFIG_FILE, read_run_config

    given = [name for name, value in (("--run", run), ("--checkpoint", checkpoint), ("--policy", policy)) if value]
    if len(given) != 1:
        raise DriveError(f"give exactly one of --run, --checkpoint, --policy (got {', '.join(given) or 'none'})")
    if policy:
        check_choice("policy", policy, BASELINES)
        return PolicySource(policy, env or "highway", obs or "kinematics", {}, baseline=policy)
    if run:
        run = Path(run)
        config = read_run_config(run)
        model = run / "model.zip"
        if not model.is_file():
            model = _newest_model(run, config)
        checkpoint = model
        label = run.name
    else:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise DriveError(f"checkpoint {str(checkpoint)!r} does not exist")
        label = checkpoint.stem
        owner = next((p for p in checkpoint.resolve().parents[:2] if (p / CONFIG_FILE).is_file()), None)
        config = read_run_config(owner) if owner else None
    if config is None:
        if not algo:
            raise DriveError(f"checkpoint {str(checkpoint)!r} is outside a run folder: give --algo (valid: dqn, ppo)")
        return PolicySource(label, env or "highway", obs or "pixels", {}, checkpoint, algo)
    if env and env != config.env.name:
        raise DriveError(f"{label} was trained on env {config.env.name!r}, not {env!r}; valid: {config.env.name}")
    return PolicySource(label, config.env.name, config.env.obs, dict(config.env.config), checkpoint, config.algo.name)


def _newest_model(run: Path, config) -> Path:
    """A stopped run's newest model: its last checkpoint, or a recipe's last finished round."""
    from drive.runs import latest_checkpoint

    if config.recipe.name:
        from drive.agents.recipe import newest_round_model

        found = newest_round_model(run)
        if found is None:
            raise DriveError(f"recipe run {str(run)!r} has no finished round yet; resume it with --resume")
        return found
    return latest_checkpoint(run)[0]
