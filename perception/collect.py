"""``drive collect-frames``: unlabeled pixel frame stacks from rollouts, in shards, with ground truth beside.

Each shard starts fresh episodes (seeded from the shard's index), so a resumed collection continues exactly
where the last whole shard ended; episodes still running when a shard fills are cut there.

Beside the state's ground truth (``truth.ground_truth``) each frame's truth holds what the rollout did there: the
collecting policy's ``action`` (discrete action spaces only) and the ``reward`` that action earned, and on the
batched backend ``idm_action``, what the IDM/MOBIL driver would have done in that state. They are the cheap
screens of the probing literature: whether a policy's choice and the reward can be read off frozen features.

On the EnvPool backend (highway, the only scenario it draws our pixels on) the state's truth is read from EnvPool's
``debug_states`` (``EnvPoolVecEnv.traffic``); it has no ``idm_action``, and ``--policy idm`` is refused there, as in
``drive evaluate``: the IDM driver reads the batched simulator's state.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from tqdm.auto import tqdm

from drive.envs.batched.ego_idm import idm_meta_actions
from drive.envs.batched.highway_state import snapshot, stack_snapshots
from drive.errors import DriveError
from drive.perception.frame_store import FrameStore
from drive.perception.truth import ground_truth
from drive.runs import locked


def collect_frames(
    *,
    out: str | Path,
    frames: int,
    env: str = "highway",
    backend: str = "batched",
    policy: str = "random",
    recipe: str | None = None,
    seed: int = 0,
    n_envs: int = 64,
    shard_size: int = 2048,
    device: str = "auto",
    progress: bool = True,
) -> FrameStore:
    from drive.agents.policies import check_policy_fits_backend, policy_source
    from drive.envs import make_env, make_venv
    from drive.envs.scenarios import BACKENDS
    from drive.errors import check_choice

    check_choice("backend", backend, BACKENDS)
    check_policy_fits_backend(policy, backend)
    if frames < 1 or shard_size < 1 or n_envs < 1:
        raise DriveError(
            f"--frames, --shard-size and --n-envs must be at least 1, got {frames}, {shard_size}, {n_envs}"
        )
    is_run = Path(policy).is_dir()
    source = policy_source(run=policy if is_run else None, policy=None if is_run else policy, env=env, obs="pixels")
    if recipe is not None:
        source = _through_recipe_camera(source, recipe, is_run)
    if source.obs != "pixels":
        raise DriveError(f"run {policy!r} acts on {source.obs!r} observations; valid: a run trained on pixels")
    header = {
        "env": source.env,
        "backend": backend,
        "policy": str(policy),
        "config": source.env_config,
        "seed": seed,
        "shard_size": shard_size,
    }
    # Envs and policy first: a bad env, device or checkpoint is refused before the store is made.
    # A baseline's random stream restarts at each shard's seed (a model is loaded once), so that a resumed
    # collection draws the frames an uninterrupted one would have.
    if backend in ("batched", "envpool"):
        venv = make_venv(source.env, "pixels", n_envs, backend=backend, config=source.env_config, device=device)
        first = source.make_batch(venv, seed, device)
        truth_of = _batched_truth if backend == "batched" else _envpool_truth

        def shard_source(k):
            act = source.make_batch(venv, seed + k * n_envs, device) if source.baseline else first
            return _vec_shard(venv, act, seed + k * n_envs, shard_size, truth_of)

    else:
        scenario_env = make_env(source.env, "pixels", config=source.env_config)
        first = source.make(scenario_env, seed=seed, device=device)

        def shard_source(k):
            actor = source.make(scenario_env, seed=seed + k * 10_000) if source.baseline else first
            return _highway_env_shard(scenario_env, actor, seed + k * 10_000, shard_size)

    store = FrameStore.create_or_resume(out, header)
    with (
        locked(store.root, "frames folder"),
        tqdm(total=frames, initial=min(store.count, frames), unit="frame", desc="collect", disable=not progress) as bar,
    ):
        while store.count < frames:
            k = len(store.manifest["shards"])
            stacks, episode, step, truth = shard_source(k)
            take = min(len(stacks), frames - store.count)
            keep = np.argsort(episode * 10**6 + step, kind="stable")[:take]  # whole episode prefixes first
            store.manifest["frame_shape"] = list(stacks.shape[1:])
            store.add_shard(
                stacks[keep],
                episode[keep] + store.manifest["episodes"],
                step[keep],
                {n: v[keep] for n, v in truth.items()},
            )
            bar.update(take)
    return store


def _through_recipe_camera(source, recipe: str, is_run: bool):
    """A baseline's source with the recipe's env config (its camera), so that the frames are the ones the recipe's
    agent will see; a run already has its own camera."""
    import dataclasses

    from drive.config import load_preset

    if is_run:
        raise DriveError(f"--recipe {recipe!r} sets the camera, and a run collects through its own; give one of them")
    env = load_preset("recipes", recipe).get("env", {})
    if env.get("name", source.env) != source.env:
        raise DriveError(
            f"recipe {recipe!r} drives env {env['name']!r}, not {source.env!r}; valid: --env {env['name']}"
        )
    return dataclasses.replace(source, env_config=dict(env.get("config", {})))


def _vec_shard(venv, act, seed: int, size: int, truth_of):
    """``size`` frames from a VecEnv of many envs (batched or EnvPool): every env's observation after each step,
    with ``truth_of(venv)``, its truth."""
    venv.seed(seed)
    obs = venv.reset()
    n = venv.num_envs
    episode, step = np.arange(n), np.zeros(n, dtype=np.int64)
    next_episode = n
    chunks = []
    collected = 0
    while collected < size:
        truth = truth_of(venv)
        chunks.append((obs.copy(), episode.copy(), step.copy(), truth))
        collected += n
        action = act(obs)
        obs, reward, dones, _ = venv.step(action)
        truth.update(_rollout(action, reward))
        step += 1
        for i in np.flatnonzero(dones):  # the returned observation already starts a new episode
            episode[i], step[i], next_episode = next_episode, 0, next_episode + 1
    return _stack(chunks, size)


def _highway_env_shard(env, actor, seed: int, size: int):
    """``size`` frames from highway-env episodes seeded ``seed``, ``seed + 1``, ..."""
    chunks, collected, episode = [], 0, 0
    while collected < size:
        obs, _ = env.reset(seed=seed + episode)
        done, step = False, 0
        while not done and collected < size:
            truth = _truth(stack_snapshots([snapshot(env)], dtype=torch.float32))
            chunks.append((obs[None], np.array([episode]), np.array([step]), truth))
            collected += 1
            action = actor.act(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            truth.update(_rollout(action, reward))
            done, step = terminated or truncated, step + 1
        episode += 1
    return _stack(chunks, size)


def _batched_truth(venv) -> dict[str, np.ndarray]:
    return {**_truth(venv.sim.state), "idm_action": idm_meta_actions(venv.sim).cpu().numpy()}


def _envpool_truth(venv) -> dict[str, np.ndarray]:
    """From EnvPool's debug states: the vehicles' positions, lanes and speeds are all ``ground_truth`` reads."""
    return _truth(SimpleNamespace(**{k: torch.as_tensor(v) for k, v in venv.traffic().items()}))


def _truth(state) -> dict[str, np.ndarray]:
    return {k: v.cpu().numpy() for k, v in ground_truth(state).items()}


def _rollout(action, reward) -> dict[str, np.ndarray]:
    """The step's ``reward`` (N,) float32 and, where the actions are indices, the ``action`` (N,) int64; a
    continuous action (parking's) is no class target, so it is not stored."""
    action = np.asarray(action)
    out = {"reward": np.asarray(reward, dtype=np.float32).reshape(-1)}
    if action.dtype.kind in "iu" and action.size == out["reward"].size:
        out["action"] = action.astype(np.int64).reshape(-1)
    return out


def _stack(chunks, size):
    stacks = np.concatenate([c[0] for c in chunks])[:size]
    episode = np.concatenate([c[1] for c in chunks])[:size]
    step = np.concatenate([c[2] for c in chunks])[:size]
    truth = {k: np.concatenate([c[3][k] for c in chunks])[:size] for k in chunks[0][3]}
    return stacks, episode, step, truth
