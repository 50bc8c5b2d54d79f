"""Train an agent into a run folder, or resume one from its last checkpoint."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

from stable_baselines3.common.callbacks import CallbackList

from drive.agents.algos import ALGOS, adopt_encoder, apply_freeze, build_model, load_pretrained
from drive.agents.callbacks import PeriodicEvaluation, RewardTermsCallback, RunCheckpoints, StepProgress
from drive.agents.evaluation import records_as_dicts
from drive.agents.policies import check_spaces
from drive.agents.replay import load_replay_buffer
from drive.agents.run_logger import run_logger
from drive.agents.verdict import idm_reference
from drive.config import RunConfig
from drive.cores import use_threads
from drive.envs import make_env, make_venv
from drive.errors import DriveError
from drive.runs import latest_checkpoint, locked, new_run_dir, read_run_config, write_metrics, write_run_files


class TrainingInterrupted(Exception):
    """Raised after an interrupted run was checkpointed; carries the command that resumes it."""


def make_envs(config: RunConfig):
    """The training vec env and a separate evaluation env that can render video frames."""
    env = config.env
    train_env = make_venv(
        env.name,
        env.obs,
        env.n_envs,
        seed=config.train.seed,
        backend=env.backend,
        vec_env=env.vec_env,
        config=env.config,
        device=config.train.device,  # the batched simulator steps on the agent's device
    )
    eval_env = make_env(env.name, env.obs, config=env.config, render_mode="rgb_array")
    return train_env, eval_env


def train(
    config: RunConfig, runs_root: str | Path = "runs", progress: bool = True, run_dir: Path | None = None
) -> Path:
    """A new run: everything is built and checked before the run folder is made (``runs_root/<env>-<algo>-<time>``,
    or ``run_dir`` where a sweep names its trials' folders)."""
    use_threads(config.train.threads)
    if config.recipe.name:
        from drive.agents.recipe import train_recipe

        with _sigterm_as_interrupt():
            return train_recipe(config, runs_root, progress, run_dir)
    train_env, eval_env = make_envs(config)
    if config.algo.encoder.pretrained:
        config = adopt_encoder(config, load_pretrained(config.algo.encoder.pretrained, train_env.observation_space)[1])
    model = build_model(config, train_env, device=config.train.device)
    run = new_run_dir(runs_root, f"{config.env.name}-{config.algo.name}", run_dir)
    with locked(run):
        write_run_files(run, config)
        return _learn(model, config, run, eval_env, progress)


def resume(run: str | Path, timesteps: int | None = None, progress: bool = True) -> Path:
    """Continue ``run`` from its newest checkpoint: step counter, optimizer and replay buffer."""
    run = Path(run)
    if not run.is_dir():
        raise DriveError(f"run folder {str(run)!r} does not exist")
    with locked(run):  # before anything is read or written: a second resume of this run is refused here
        return _resume(run, timesteps, progress)


def _resume(run: Path, timesteps: int | None, progress: bool) -> Path:
    config = read_run_config(run)
    use_threads(config.train.threads)
    if config.recipe.name:
        if timesteps is not None:
            raise DriveError(f"run {str(run)!r} is a recipe run, budgeted in rounds; drop --timesteps")
        from drive.agents.recipe import resume_recipe

        with _sigterm_as_interrupt():
            return resume_recipe(config, run, progress)
    if timesteps is not None:
        config = replace(config, train=replace(config.train, timesteps=timesteps))
    checkpoint, replay, steps = latest_checkpoint(run)
    finished = _finished_at(run) == steps
    if steps >= config.train.timesteps and (finished or steps > config.train.timesteps):
        # At exactly the budget without metrics.json, the run stopped after its last checkpoint (in the final
        # evaluation, say): resuming learns nothing more and finishes the final stage.
        total = "" if timesteps is None else f" (--timesteps {timesteps} is the new total)"
        raise DriveError(
            f"run {str(run)!r} already has {steps} of {config.train.timesteps} steps{total}; "
            f"to train longer, pass --timesteps with a total above {steps}"
        )
    train_env, eval_env = make_envs(config)
    from drive.agents.policies import load_model

    model = load_model(checkpoint, config.algo.name, device=config.train.device)
    check_spaces(model, train_env, f"checkpoint {checkpoint.name}")
    apply_freeze(model, config)
    model.set_env(train_env)
    if replay is not None:
        load_replay_buffer(model, replay)
    write_run_files(run, config)
    return _learn(model, config, run, eval_env, progress, resumed=True)


def _finished_at(run: Path) -> int | None:
    """The step count that ``metrics.json`` was written at (None before the run first finished)."""
    try:
        return json.loads((run / "metrics.json").read_text()).get("timesteps")
    except (OSError, ValueError, AttributeError):
        return None


def _learn(model, config: RunConfig, run: Path, eval_env, progress: bool, resumed: bool = False) -> Path:
    model.set_logger(run_logger(run / "tb"))
    checkpoints = RunCheckpoints(run / "checkpoints", config.train.save_freq, config.train.save_replay_buffer)
    evaluation = PeriodicEvaluation(
        eval_env, config.train.eval_episodes, config.train.eval_freq, config.train.video_steps
    )
    callbacks = CallbackList(
        [checkpoints, evaluation, RewardTermsCallback(), *([StepProgress(config.train.timesteps)] if progress else [])]
    )
    start, steps_before = time.perf_counter(), model.num_timesteps
    try:
        with _sigterm_as_interrupt():
            model.learn(
                config.train.timesteps - model.num_timesteps,
                callback=callbacks,
                reset_num_timesteps=not resumed,
                progress_bar=False,  # StepProgress instead
            )
            seconds = time.perf_counter() - start
            checkpoints.save()
            idm = idm_reference(config, run / "tb", model.num_timesteps)
    except KeyboardInterrupt:
        checkpoints.save()
        command = shlex.join(["drive", "train-agent", "--resume", str(run)])
        raise TrainingInterrupted(f"interrupted at step {model.num_timesteps}; resume with: {command}") from None
    model.save(run / "model.zip")  # model.zip and metrics.json last: together they mark a finished run
    write_metrics(
        run / "metrics.json",
        evaluation.summary or {},
        records_as_dicts(evaluation.records),
        idm=idm,
        timesteps=model.num_timesteps,
        train_seconds=seconds,
        steps_per_s=(model.num_timesteps - steps_before) / max(seconds, 1e-9),
    )
    model.get_env().close()
    eval_env.close()
    return run


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """A SIGTERM (``kill``, a cluster's pre-emption) checkpoints the run like Ctrl-C does, instead of losing it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["ALGOS", "TrainingInterrupted", "resume", "train"]
