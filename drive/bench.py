"""``drive bench``: env and training throughput of highway-env and the batched simulator, side by side.

Every figure is measured in the same run on the same machine; ratios are against highway-env's
``highway-fast-v0`` (the ``highway`` scenario) with the same observation preset.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from drive.envs import make_env, make_venv


@dataclass
class BenchRow:
    what: str  # env, train-ppo or train-dqn
    backend: str
    obs: str
    n_envs: int
    device: str
    steps_per_s: float
    ratio: float | None = None  # against highway-env, same what and obs
    # Learning work per env step of a training row: samples through a gradient step (DQN: batch size x
    # gradient steps per transition; PPO: epochs over each sample). Rows compared by a ratio share it.
    grad_samples_per_step: float | None = None

    def as_record(self) -> dict:
        return asdict(self)


def highway_env_steps(obs: str, seconds: float, seed: int = 0) -> float:
    """Env steps per second of one highway-env env with random actions, resets included."""
    env = make_env("highway", obs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def batched_steps(obs: str, n_envs: int, device: str, seconds: float) -> float:
    """Env steps per second of the batched simulator's VecEnv with random actions (after compiling)."""
    venv = make_venv("highway", obs, n_envs, backend="batched", device=device)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):  # warm up: compilation for large batches happens here
        venv.step(rng.integers(0, 5, n_envs))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(rng.integers(0, 5, n_envs))
        steps += n_envs
    _sync(device)
    return steps / (time.perf_counter() - start)


def training_steps(algo: str, backend: str, n_envs: int, timesteps: int, device: str) -> tuple[float, float]:
    """Env steps per second of SB3 training from pixels, built as ``drive train-agent`` builds it, and its
    learning work per env step.

    DQN does one gradient step per transition whatever the number of envs (``gradient_steps=-1``: as many
    as the transitions of the rollout), so that N envs do not quietly learn N times less per sample.
    """
    from drive.agents.algos import build_model
    from drive.config import resolve

    flags = {"env": {"backend": backend, "n_envs": n_envs}, "train": {"device": device}}
    sets = ["algo.hyperparams.gradient_steps=-1"] if algo == "dqn" else []
    config = resolve("highway", algo, "pixels", flags=flags, sets=sets)
    venv = make_venv("highway", "pixels", n_envs, backend=backend, device=device, seed=0)
    model = build_model(config, venv, device=device)
    model.learn(config.algo.hyperparams.get("learning_starts", 0) + n_envs)  # warm up, fill learning_starts
    start, before = time.perf_counter(), model.num_timesteps
    model.learn(timesteps, reset_num_timesteps=False)
    rate = (model.num_timesteps - before) / (time.perf_counter() - start)
    return rate, learning_work(algo, config.algo.hyperparams, n_envs)


def learning_work(algo: str, hyperparams: dict, n_envs: int) -> float:
    """Samples through a gradient step per env step."""
    if algo == "ppo":
        return float(hyperparams.get("n_epochs", 10))
    train_freq, steps = hyperparams.get("train_freq", 4), hyperparams.get("gradient_steps", 1)
    per_rollout = train_freq * n_envs
    return hyperparams.get("batch_size", 32) * (per_rollout if steps < 0 else steps) / per_rollout


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_bench(quick: bool = False, progress: bool = True) -> list[BenchRow]:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    seconds = 3.0 if quick else 8.0
    rows: list[BenchRow] = []
    say = print if progress else (lambda *a, **k: None)
    reference: dict[tuple[str, str], float] = {}
    obs_list = ["pixels"] if quick else ["kinematics", "pixels"]
    for obs in obs_list:
        rate = highway_env_steps(obs, seconds)
        reference[("env", obs)] = rate
        rows.append(BenchRow("env", "highway-env", obs, 1, "cpu", rate, 1.0))
        say(f"  highway-env {obs}: {rate:,.0f} steps/s")
    sizes = [1024] if quick else [1, 64, 1024, 8192]
    for device in devices:
        for obs in obs_list:
            for n in sizes:
                rate = batched_steps(obs, n, device, seconds)
                rows.append(BenchRow("env", "batched", obs, n, device, rate, rate / reference[("env", obs)]))
                say(f"  batched {obs} N={n} {device}: {rate:,.0f} steps/s")
    if not quick:
        for algo, steps in (("ppo", 1024), ("dqn", 512)):
            n_ref = 4 if algo == "ppo" else 1
            rate, work = training_steps(algo, "highway-env", n_ref, steps, "cpu")
            reference[(f"train-{algo}", "pixels")] = rate
            rows.append(BenchRow(f"train-{algo}", "highway-env", "pixels", n_ref, "cpu", rate, 1.0, work))
            say(f"  train-{algo} highway-env: {rate:,.1f} steps/s, {work:g} gradient samples per step")
            for device in devices:
                n = 64
                rate, work = training_steps(algo, "batched", n, 8192 if algo == "ppo" else 2048, device)
                ratio = rate / reference[(f"train-{algo}", "pixels")]
                rows.append(BenchRow(f"train-{algo}", "batched", "pixels", n, device, rate, ratio, work))
                say(f"  train-{algo} batched N={n} {device}: {rate:,.1f} steps/s, {work:g} gradient samples per step")
    return rows


def format_table(rows: list[BenchRow]) -> str:
    head = f"{'what':<10} {'backend':<12} {'obs':<11} {'n_envs':>6} {'device':>6} {'steps/s':>12} {'ratio':>8}"
    lines = [head + f" {'grad samples/step':>18}"]
    for r in rows:
        ratio = f"{r.ratio:.1f}x" if r.ratio is not None else ""
        work = f"{r.grad_samples_per_step:g}" if r.grad_samples_per_step is not None else ""
        lines.append(
            f"{r.what:<10} {r.backend:<12} {r.obs:<11} {r.n_envs:>6} {r.device:>6} {r.steps_per_s:>12,.1f} {ratio:>8}"
            f" {work:>18}"
        )
    return "\n".join(lines)
