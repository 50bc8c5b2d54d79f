"""Recipe runs: the driver recipe's stages (teacher, then student) in one run folder, resumable by round.

```
runs/highway-driver-<timestamp>/
  config.yaml  command.txt  versions.json
  teacher/metrics.json   # the planner driving alone (round 0), on the batched simulator
  student/round_<k>.zip  # the student after round k (a PPO model), with its data set data_<k>.npz
  student/gap_head.pt    # (gap_weight > 0) the auxiliary read-out of the lane gaps, after the last round
  student/rounds.json    # one record per finished round: data, fit, driving, wall-clock, env steps, and (select:
                         # best or vote) "alone", the student driving alone on validation traffic
  student/refit.zip      # (recipe.refit) the fresh ensemble fitted on all the rounds' data, with refit.json
  student/chosen.json    # (select: best) the round (or the refit) whose student became model.zip; (select: vote)
                         # the students of the committee that became model.zip, and how it drove alone
  tb/                    # dagger/*, student/* (driving on the batched simulator), eval/* (highway-env)
  model.zip  metrics.json
```
A round is finished when its record is in ``rounds.json`` (written last); ``--resume`` starts at the next. The
refit is finished when ``refit.json`` is written; a stopped one starts again from new weights.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from drive.agents.algos import apply_freeze, build_model
from drive.agents.callbacks import EVAL_SEED
from drive.agents.committee import committee
from drive.agents.dagger import Dataset, GapHead, collect, drive_alone, fit
from drive.agents.evaluation import evaluate, records_as_dicts, summarize
from drive.agents.planner import Planner
from drive.agents.policies import AgentPolicy, check_spaces, load_model
from drive.agents.run_logger import run_logger
from drive.agents.training import TrainingInterrupted
from drive.agents.verdict import idm_reference
from drive.config import RunConfig
from drive.envs import make_env, make_venv
from drive.errors import DriveError
from drive.runs import locked, new_run_dir, write_metrics, write_run_files

ROUNDS_FILE = "rounds.json"
REFIT_FILE = "refit.json"
# Validation traffic: the batched simulator's own streams from this seed on (training draws seed * 1e6 + ...),
# the same for every round, so that rounds are compared on the same episodes; evaluation is on highway-env.
VALIDATION_SEED = 3_000_000_000


def train_recipe(config: RunConfig, runs_root: str | Path, progress: bool, run_dir: Path | None = None) -> Path:
    venv = _make_venv(config)
    model = build_model(config, venv, device=config.train.device)
    run = new_run_dir(runs_root, f"{config.env.name}-{config.recipe.name}", run_dir)
    with locked(run):
        write_run_files(run, config)
        return _run(config, run, venv, model, Dataset.empty(), [], progress)


def resume_recipe(config: RunConfig, run: Path, progress: bool) -> Path:
    rounds = read_rounds(run)
    if (run / "metrics.json").is_file() and len(rounds) >= config.recipe.student.rounds:
        raise DriveError(f"recipe run {str(run)!r} is finished (model.zip and metrics.json are there)")
    venv = _make_venv(config)
    if rounds:
        model = load_model(_round_model(run, len(rounds) - 1), "ppo", device=config.train.device)
        check_spaces(model, venv, f"run {run.name}")
        apply_freeze(model, config)
    else:
        model = build_model(config, venv, device=config.train.device)
    dataset = Dataset.empty()
    for k in range(len(rounds)):
        dataset.add(*read_round_data(run, k))
    write_run_files(run, config)
    return _run(config, run, venv, model, dataset, rounds, progress)


def read_rounds(run: Path) -> list[dict]:
    """The finished rounds' records (none before the first round ends)."""
    return _read_json(run / "student" / ROUNDS_FILE, "restore it or start a new run") or []


def _read_json(path: Path, remedy: str):
    """A record the run wrote (None if it has not been written yet); a corrupt one is refused in one line."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise DriveError(f"{str(path)!r} is not valid JSON; {remedy}") from None


def _write_json(path: Path, record) -> None:
    """Written whole or not at all (a partial file renamed into place): a record marks a stage finished."""
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)


def newest_round_model(run: Path) -> Path | None:
    """The student of the last finished round, if any: what a stopped recipe run has to show."""
    rounds = read_rounds(run)
    return _round_model(run, len(rounds) - 1) if rounds else None


def read_round_data(run: Path, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Round ``k``'s states: frame stacks, the teacher's action values, and the lane gaps (None in older runs)."""
    path = run / "student" / f"data_{k:02d}.npz"
    try:
        with np.load(path) as data:
            return data["frames"], data["values"], data["gaps"] if "gaps" in data else None
    except (OSError, KeyError, ValueError) as err:
        raise DriveError(f"round {k}'s data {str(path)!r} is missing or unreadable ({type(err).__name__})") from None


def _make_venv(config: RunConfig):
    env = config.env
    return make_venv(
        env.name,
        env.obs,
        env.n_envs,
        backend="batched",
        config=env.config,
        seed=config.train.seed,
        device=config.train.device,
    )


def _round_model(run: Path, k: int) -> Path:
    return run / "student" / f"round_{k:02d}.zip"


def _run(config: RunConfig, run: Path, venv, model, dataset: Dataset, rounds: list[dict], progress: bool) -> Path:
    student, n_envs = config.recipe.student, venv.num_envs
    teacher = Planner(venv.sim, config.recipe.teacher)
    gap_head = _gap_head(config, run, model)
    validation = _make_venv(config) if student.select in ("best", "vote") else None
    logger = run_logger(run / "tb")
    (run / "student").mkdir(exist_ok=True)
    total = student.rounds * student.steps_per_round * n_envs
    done = len(rounds) * student.steps_per_round * n_envs
    try:
        with tqdm(total=total, initial=done, desc="driver", unit="step", disable=not progress) as bar:
            for k in range(len(rounds), student.rounds):
                record = _round(config, k, venv, teacher, model, dataset, bar, gap_head)
                if validation is not None:
                    record["alone"] = _validate(config, validation, model.policy)
                record["seconds_total"] = record["seconds"] + (rounds[-1]["seconds_total"] if rounds else 0.0)
                _save_round(run, k, model, dataset, record, rounds, config, gap_head)
                _log_round(logger, record)
                bar.set_postfix(round=k, agree=f"{record['fit']['agreement']:.2f}")
        refit = _refit_stage(config, run, venv, dataset, validation, rounds, logger, progress)
        if student.select == "vote":
            model = _vote(config, run, venv, validation, rounds, refit)
        else:
            model = _chosen_student(config, run, model, rounds, refit)
        model.save(run / "model.zip")
        _final_evaluation(config, run, model, logger, rounds, refit)
    except KeyboardInterrupt:
        command = shlex.join(["drive", "train-agent", "--resume", str(run)])
        saved = f"rounds 0 to {len(rounds) - 1} of {student.rounds} are saved" if rounds else "no round had finished"
        raise TrainingInterrupted(f"interrupted; {saved}; resume with: {command}") from None
    finally:
        logger.close()
    return run


def _gap_head(config: RunConfig, run: Path, model) -> GapHead | None:
    """The auxiliary read-out of the lane gaps (none unless ``gap_weight`` > 0), as the last round left it."""
    if config.recipe.student.gap_weight <= 0:
        return None
    learning_rate = model.policy.optimizer.param_groups[0]["lr"]
    head = GapHead(model.policy.features_dim, learning_rate).to(model.device)
    path = run / "student" / "gap_head.pt"
    if path.is_file():
        head.load_state_dict(torch.load(path, map_location=model.device))
    return head


def _validate(config: RunConfig, validation, policy) -> dict:
    """``policy`` driving alone on the validation traffic, the same episodes for every round and the refit."""
    validation.seed(VALIDATION_SEED + config.train.seed * 10_000)
    return drive_alone(validation, policy, _episode_steps(validation)).summary()


def _episode_steps(venv) -> int:
    """Policy steps of a whole episode: every env finishes at least one."""
    config = venv.sim.config
    return round(config.duration * config.policy_frequency)


def _chosen_student(config: RunConfig, run: Path, model, rounds: list[dict], refit: dict | None):
    """The last stage's student (the refit's, or the last round's), or (``select: best``) the one of the rounds and
    the refit that drove best alone on the validation traffic, by return (a crash ends an episode, so it costs
    return)."""
    # (what chosen.json names, the validation driving, the checkpoint) of every stage, in order
    stages = [({"round": k}, r.get("alone"), _round_model(run, k)) for k, r in enumerate(rounds)]
    if refit is not None:
        stages.append(({"refit": True}, refit.get("alone"), _refit_model(run)))
    if config.recipe.student.select == "last" or not all(alone for _, alone, _ in stages):
        return model if refit is None else load_model(_refit_model(run), "ppo", device=config.train.device)
    name, _, path = max(stages, key=lambda stage: stage[1].get("mean_return", float("-inf")))
    _write_json(run / "student" / "chosen.json", {**name, "by": "alone/mean_return"})
    return load_model(path, "ppo", device=config.train.device)


def _vote(config: RunConfig, run: Path, venv, validation, rounds: list[dict], refit: dict | None):
    """``select: vote``: the committee of the last ``vote_rounds`` rounds' students and the refit's (if any), one
    policy acting on their summed logits; ``chosen.json`` names its students and how it drove alone on the
    validation traffic."""
    voters = range(len(rounds) - config.recipe.student.vote_rounds, len(rounds))
    names = [f"round_{k:02d}" for k in voters] + (["refit"] if refit is not None else [])
    paths = [_round_model(run, k) for k in voters] + ([_refit_model(run)] if refit is not None else [])
    students = [load_model(path, "ppo", device=config.train.device) for path in paths]
    model = committee(students, config, venv, device=config.train.device)
    alone = _validate(config, validation, model.policy)
    _write_json(run / "student" / "chosen.json", {"vote": names, "alone": alone})
    return model


def _refit_model(run: Path) -> Path:
    return run / "student" / "refit.zip"


def _refit_stage(config: RunConfig, run: Path, venv, dataset: Dataset, validation, rounds, logger, progress):
    """``recipe.refit``: a fresh ensemble of new weights fitted on every round's data, each member on its own share
    of the envs; its record (also in ``refit.json``, written last), or None without a refit. A finished refit is
    read back, not redone."""
    refit = config.recipe.refit
    if refit.members == 0 or not rounds:
        return None
    done = _read_json(run / "student" / REFIT_FILE, "delete it to refit again on --resume")
    if done is not None:
        return done
    start = time.perf_counter()
    encoder = dataclasses.replace(config.algo.encoder, members=refit.members)
    fresh = dataclasses.replace(config, algo=dataclasses.replace(config.algo, encoder=encoder))
    model = build_model(fresh, venv, device=config.train.device)
    student = dataclasses.replace(config.recipe.student, split=True, batch_size=refit.batch_size, gap_weight=0.0)
    generator = torch.Generator().manual_seed(config.train.seed * 1_000 + 999)
    with tqdm(total=refit.updates, desc="refit", unit="update", disable=not progress) as bar:
        fitted = fit(model.policy, dataset, student, generator, refit.updates, envs=venv.num_envs, bar=bar)
    record = {"members": refit.members, "updates": refit.updates, "samples": len(dataset), "fit": fitted}
    if validation is not None:
        record["alone"] = _validate(config, validation, model.policy)
    record["seconds"] = time.perf_counter() - start
    record["seconds_total"] = rounds[-1]["seconds_total"] + record["seconds"]
    model.save(_refit_model(run))
    _write_json(run / "student" / REFIT_FILE, record)
    _log_refit(logger, record, rounds[-1]["env_steps"])
    return record


def _round(config: RunConfig, k: int, venv, teacher: Planner, model, dataset: Dataset, bar, gap_head) -> dict:
    """One DAgger round from fresh traffic (its own seeds, so a resumed run draws what it would have)."""
    student, start = config.recipe.student, time.perf_counter()
    generator = torch.Generator().manual_seed(config.train.seed * 1_000 + k)
    venv.seed(config.train.seed * 1_000_000 + k * venv.num_envs)
    venv.reset()
    beta = 1.0 if k == 0 else student.beta_decay**k
    fresh = Dataset.empty()
    driving = collect(venv, teacher, model.policy, student.steps_per_round, beta, fresh, generator, bar, student.noise)
    dataset.add(*fresh.arrays())
    fitted = fit(model.policy, dataset, student, generator, gap_head=gap_head, envs=venv.num_envs)
    env_steps = (k + 1) * student.steps_per_round * venv.num_envs
    return {
        "round": k,
        "beta": beta,
        "samples": len(dataset),
        "env_steps": env_steps,
        "planner_steps": env_steps * teacher.branches * config.recipe.teacher.horizon,
        "driving": driving.summary(),
        "fit": fitted,
        "seconds": time.perf_counter() - start,
    }


def _save_round(run: Path, k: int, model, dataset: Dataset, record: dict, rounds: list[dict], config, gap_head) -> None:
    folder = run / "student"
    frames, values, gaps = dataset.frames[-1], dataset.values[-1], dataset.gaps[-1]
    np.savez_compressed(folder / f"data_{k:02d}.npz", frames=frames, values=values, gaps=gaps)
    model.save(_round_model(run, k))
    if gap_head is not None:
        torch.save(gap_head.state_dict(), folder / "gap_head.pt")
    if k == 0:
        teacher = run / "teacher"
        teacher.mkdir(exist_ok=True)
        summary = {**record["driving"], "backend": "batched", "config": vars(config.recipe.teacher)}
        (teacher / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    rounds.append(record)
    _write_json(folder / ROUNDS_FILE, rounds)


def _log_round(logger, record: dict) -> None:
    logger.record("dagger/round", record["round"])
    logger.record("dagger/beta", record["beta"])
    logger.record("dagger/samples", record["samples"])
    logger.record("dagger/loss", record["fit"]["loss"])
    logger.record("dagger/agreement", record["fit"]["agreement"])
    if "gap_loss" in record["fit"]:
        logger.record("dagger/gap_loss", record["fit"]["gap_loss"])
    logger.record("time/seconds", record["seconds_total"])
    # student/: the mixture that drove this round; validation/: the student alone on the validation traffic
    for group, driving in (("student", record["driving"]), ("validation", record.get("alone", {}))):
        for key, value in driving.items():
            if key != "episodes":
                logger.record(f"{group}/{key}", value)
    logger.dump(record["env_steps"])


def _log_refit(logger, record: dict, env_steps: int) -> None:
    logger.record("refit/loss", record["fit"]["loss"])
    logger.record("refit/agreement", record["fit"]["agreement"])
    logger.record("time/seconds", record["seconds_total"])
    for key, value in record.get("alone", {}).items():
        if key != "episodes":
            logger.record(f"refit/{key}", value)
    logger.dump(env_steps)


def _final_evaluation(config: RunConfig, run: Path, model, logger, rounds: list[dict], refit: dict | None) -> None:
    """The student on highway-env itself, on evaluation seeds, beside the IDM driver on the same seeds."""
    env = make_env(config.env.name, config.env.obs, config=config.env.config)
    records = evaluate(env, AgentPolicy(model), config.train.eval_episodes, EVAL_SEED)
    env.close()
    summary = summarize(records)
    for key in ("mean_return", "crash_rate", "mean_speed"):
        logger.record(f"eval/{key}", summary[key])
    steps = rounds[-1]["env_steps"] if rounds else 0
    logger.dump(steps)
    write_metrics(
        run / "metrics.json",
        summary,
        records_as_dicts(records),
        idm=idm_reference(config, run / "tb", steps),
        timesteps=steps,
        # wall-clock of the rounds and the refit, summed over every session of the run
        train_seconds=(refit or rounds[-1])["seconds_total"] if rounds else 0.0,
    )


__all__ = ["newest_round_model", "read_round_data", "read_rounds", "resume_recipe", "train_recipe"]
