"""``drive evaluate``: evaluate a trained agent or a baseline into its own run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stable_baselines3.common.logger import configure

from drive.agents.evaluation import EpisodeRecord, evaluate, evaluate_batched, records_as_dicts, summarize
from drive.agents.policies import AgentPolicy, check_policy_fits_backend, policy_source
from drive.envs import make_env, make_venv
from drive.envs.scenarios import BACKENDS
from drive.errors import DriveError, check_choice
from drive.runs import new_run_dir, write_metrics


@dataclass(frozen=True)
class EvaluationOutput:
    folder: Path
    summary: dict
    records: list[EpisodeRecord]

    @property
    def summary_line(self) -> str:
        s = self.summary
        low, high = s["return_ci95"]
        return (
            f"{s['episodes']} episodes: return {s['mean_return']:.2f} (95% CI {low:.2f} to {high:.2f}), "
            f"crash rate {s['crash_rate']:.2f}, speed {s['mean_speed']:.1f} m/s, "
            f"distance {s['mean_distance']:.0f} m, lane changes {s['mean_lane_changes']:.1f}"
        )


def evaluate_to_run(
    *,
    run=None,
    checkpoint=None,
    policy=None,
    env=None,
    obs=None,
    algo=None,
    episodes: int = 10,
    seed: int = 0,
    backend: str = "highway-env",
    device: str = "auto",
    runs_dir: str | Path = "runs",
    progress: bool = False,
) -> EvaluationOutput:
    check_choice("backend", backend, BACKENDS)
    if episodes < 1:
        raise DriveError(f"--episodes must be at least 1, got {episodes}")
    check_policy_fits_backend(policy, backend)
    source = policy_source(run=run, checkpoint=checkpoint, policy=policy, env=env, obs=obs, algo=algo)
    if backend in ("batched", "envpool"):  # one env per episode, all stepped at once
        venv = make_venv(source.env, source.obs, episodes, backend=backend, config=source.env_config, device=device)
        records = evaluate_batched(venv, source.make_batch(venv, seed, device), episodes, seed, progress)
        step = 0
    else:
        scenario_env = make_env(source.env, source.obs, config=source.env_config)
        actor = source.make(scenario_env, seed=seed, device=device)
        records = evaluate(scenario_env, actor, episodes, seed, progress=progress)
        scenario_env.close()
        step = actor.model.num_timesteps if isinstance(actor, AgentPolicy) else 0
    summary = summarize(records)
    folder = new_run_dir(
        runs_dir, f"{source.env}-eval-{source.label}" + ("" if backend == "highway-env" else f"-{backend}")
    )
    write_metrics(
        folder / "metrics.json",
        summary,
        records_as_dicts(records),
        policy=source.label,
        env=source.env,
        obs=source.obs,
        seed=seed,
        timesteps=step,
    )
    _log_tensorboard(folder / "tb", summary, records, step)
    return EvaluationOutput(folder, summary, records)


def _log_tensorboard(folder: Path, summary: dict, records: list[EpisodeRecord], step: int) -> None:
    """Summary scalars at the agent's training step (0 for baselines), and each episode's return against the
    episode's index, in its own group (``episodes/``) so that it is not read as a curve over training steps."""
    logger = configure(str(folder), ["tensorboard"])
    for i, record in enumerate(records):
        logger.record("episodes/return", record.episode_return)
        logger.dump(i)
    for key, name in [
        ("mean_return", "mean_return"),
        ("crash_rate", "crash_rate"),
        ("mean_speed", "mean_speed"),
        ("mean_distance", "mean_distance"),
        ("mean_lane_changes", "lane_changes"),
    ]:
        logger.record(f"eval/{name}", summary[key])
    logger.dump(step)
    logger.close()
