"""``drive bench``: env and training throughput of highway-env, the batched simulator and EnvPool, side by side.

Every figure is measured in the same run on the same machine; each env row's ratio is against one highway-env env
of the same scenario with the same observation preset (for ``highway``, highway-env's ``highway-fast-v0``), and
each training row's against highway-env's training row. Env rows step random actions, resets included; every row
runs for the same time budget (``seconds``), so a slow engine (highway-env's intersection) makes a row of few
steps, not a long bench.

EnvPool rows (the ``drive[envpool]`` extra) are stepped through ``make_venv(..., backend="envpool")``, the
``VecEnv`` that training gets (its same-step resets and episode statistics included). Without EnvPool the bench
says so in one line and measures the rest; an observation preset EnvPool does not have yet is skipped the same way.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from drive.envs import make_env, make_venv
from drive.envs.scenarios import BATCHED_SCENARIOS, ENVPOOL_SCENARIOS, SCENARIOS
from drive.errors import DriveError, check_choice

ENGINES = ("highway-env", "batched", "envpool")
OBS = ("kinematics", "pixels")
SIZES = (1, 64, 1024, 8192)


@dataclass
class BenchRow:
    what: str  # env, train-ppo or train-dqn
    backend: str
    obs: str
    n_envs: int
    device: str
    steps_per_s: float
    ratio: float | None = None  # against highway-env, same what, scenario and obs (None: highway-env not measured)
    # Learning work per env step of a training row: samples through a gradient step (DQN: batch size x
    # gradient steps per transition; PPO: epochs over each sample). Rows compared by a ratio share it.
    grad_samples_per_step: float | None = None
    scenario: str = "highway"

    def as_record(self) -> dict:
        return asdict(self)


def random_actions(space, n_envs: int, rng: np.random.Generator):
    """A sampler of one uniform random action per env: indices for a Discrete space, values in a Box."""
    if hasattr(space, "n"):
        return lambda: rng.integers(0, space.n, n_envs)
    return lambda: rng.uniform(space.low, space.high, (n_envs, *space.shape)).astype(space.dtype)


def highway_env_steps(obs: str, seconds: float, seed: int = 0, scenario: str = "highway") -> float:
    """Env steps per second of one highway-env env with random actions, resets included."""
    env = make_env(scenario, obs)
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


def envpool_steps(scenario: str, obs: str, n_envs: int, seconds: float, seed: int = 0) -> float:
    """Env steps per second of EnvPool's port of ``scenario`` as our ``VecEnv``, random actions, resets included."""
    venv = make_venv(scenario, obs, n_envs, backend="envpool", seed=seed)
    venv.reset()
    sample = random_actions(venv.action_space, n_envs, np.random.default_rng(seed))
    venv.step(sample())  # warm up: EnvPool's threads start on the first step
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(sample())
        steps += n_envs
    rate = steps / (time.perf_counter() - start)
    venv.close()
    return rate


def envpool_missing() -> str | None:
    """Why EnvPool rows cannot be measured here (one line), or None when EnvPool imports."""
    from drive.envs.envpool_vec import import_envpool

    try:
        import_envpool()
    except DriveError as err:
        return f"envpool rows skipped: {err}"
    return None


def envpool_refuses(scenario: str, obs: str) -> str | None:
    """Why EnvPool cannot make ``scenario`` with ``obs`` (yet), or None when it can: probed with one env."""
    try:
        make_venv(scenario, obs, 1, backend="envpool", seed=0).close()
    except DriveError as err:
        return f"envpool {obs} rows skipped: {err}"
    return None


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


def run_bench(
    quick: bool = False,
    progress: bool = True,
    *,
    scenarios: list[str] | None = None,
    engines: list[str] | None = None,
    sizes: list[int] | None = None,
    seconds: float | None = None,
    train: bool | None = None,
    notes: list[str] | None = None,
) -> list[BenchRow]:
    """The bench's rows. ``quick``: highway only, N=1024, 3 s a row, no training rows; the keywords override
    its defaults (all six scenarios, all engines, N = 1, 64, 1024, 8192, 8 s a row, training rows).
    ``notes`` collects one line per part that was skipped (EnvPool not installed, a preset it lacks)."""
    scenarios = list(scenarios or (["highway"] if quick else SCENARIOS))
    engines = list(engines or ENGINES)
    for scenario in scenarios:
        check_choice("env", scenario, SCENARIOS)
    for engine in engines:
        check_choice("bench engine", engine, ENGINES)
    sizes = list(sizes or ([1024] if quick else SIZES))
    if any(n < 1 for n in sizes):
        raise DriveError(f"--n-envs must each be at least 1, got {','.join(map(str, sizes))}")
    seconds = (3.0 if quick else 8.0) if seconds is None else seconds
    if seconds <= 0:
        raise DriveError(f"--seconds must be above 0, got {seconds}")
    train = not quick if train is None else train
    say = print if progress else (lambda *a, **k: None)
    print_notes = notes is None  # no caller to print them: they go with the progress lines
    notes = [] if notes is None else notes

    def skip(line: str) -> None:
        if line not in notes:
            notes.append(line)
            if print_notes:
                say(f"  {line}")

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    envpool_note = envpool_missing() if "envpool" in engines else None
    if envpool_note:
        skip(envpool_note)
    rows: list[BenchRow] = []
    for obs in OBS:
        for scenario in scenarios:
            batched = "batched" in engines and scenario in BATCHED_SCENARIOS and (obs == "pixels" or not quick)
            envpool = "envpool" in engines and not envpool_note and scenario in ENVPOOL_SCENARIOS
            if envpool and (refused := envpool_refuses(scenario, obs)):
                envpool = False
                skip(refused)
            measured = [engine for engine, on in (("batched", batched), ("envpool", envpool)) if on]
            if "highway-env" in engines and (measured or engines == ["highway-env"]):
                measured.insert(0, "highway-env")  # the ratios' reference
            rows += env_rows(scenario, obs, measured, sizes, devices, seconds, say)
    if train and "highway" in scenarios and "batched" in engines:
        for algo, steps in (("ppo", 1024), ("dqn", 512)):
            reference = None
            if "highway-env" in engines:
                n_ref = 4 if algo == "ppo" else 1
                reference, work = training_steps(algo, "highway-env", n_ref, steps, "cpu")
                rows.append(BenchRow(f"train-{algo}", "highway-env", "pixels", n_ref, "cpu", reference, 1.0, work))
                say(f"  train-{algo} highway-env: {reference:,.1f} steps/s, {work:g} gradient samples per step")
            for device in devices:
                n = 64
                rate, work = training_steps(algo, "batched", n, 8192 if algo == "ppo" else 2048, device)
                ratio = _ratio(rate, reference)
                rows.append(BenchRow(f"train-{algo}", "batched", "pixels", n, device, rate, ratio, work))
                say(f"  train-{algo} batched N={n} {device}: {rate:,.1f} steps/s, {work:g} gradient samples per step")
    return rows


def env_rows(scenario: str, obs: str, engines: list[str], sizes, devices, seconds: float, say) -> list[BenchRow]:
    """One scenario's env rows in one observation preset: highway-env's (the ratios' reference) first."""
    rows, reference = [], None
    if "highway-env" in engines:
        reference = highway_env_steps(obs, seconds, scenario=scenario)
        rows.append(BenchRow("env", "highway-env", obs, 1, "cpu", reference, 1.0, scenario=scenario))
        say(f"  highway-env {scenario} {obs}: {reference:,.1f} steps/s")
    for device in devices if "batched" in engines else []:
        for n in sizes:
            rate = batched_steps(obs, n, device, seconds)
            rows.append(BenchRow("env", "batched", obs, n, device, rate, _ratio(rate, reference), scenario=scenario))
            say(f"  batched {scenario} {obs} N={n} {device}: {rate:,.0f} steps/s")
    for n in sizes if "envpool" in engines else []:
        rate = envpool_steps(scenario, obs, n, seconds)
        rows.append(BenchRow("env", "envpool", obs, n, "cpu", rate, _ratio(rate, reference), scenario=scenario))
        say(f"  envpool {scenario} {obs} N={n}: {rate:,.0f} steps/s")
    return rows


def _ratio(rate: float, reference: float | None) -> float | None:
    return rate / reference if reference else None


def format_table(rows: list[BenchRow]) -> str:
    head = f"{'what':<10} {'scenario':<12} {'backend':<12} {'obs':<11} {'n_envs':>6} {'device':>6} {'steps/s':>12}"
    lines = [head + f" {'ratio':>8} {'grad samples/step':>18}"]
    for r in rows:
        ratio = f"{r.ratio:.1f}x" if r.ratio is not None else ""
        work = f"{r.grad_samples_per_step:g}" if r.grad_samples_per_step is not None else ""
        lines.append(
            f"{r.what:<10} {r.scenario:<12} {r.backend:<12} {r.obs:<11} {r.n_envs:>6} {r.device:>6}"
            f" {r.steps_per_s:>12,.1f} {ratio:>8} {work:>18}"
        )
    return "\n".join(lines)
