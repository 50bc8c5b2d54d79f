"""Runs a sweep on Ray Tune: a local Ray started in-process, or a running cluster (``address``).

The only module that imports Ray (the ``drive[ray]`` extra); ``drive sweep`` imports it when it runs. Each Ray
trial trains ordinary run folders in the sweep folder with ``drive.agents.training`` and reports their final
evaluation; Ray's own state (what ``Tuner.restore`` resumes from) lives in ``<sweep>/ray/``. Trials write their
run folders straight into the sweep folder: on a cluster of several machines it must be on storage every node
mounts at the same path (NFS and the like), which is also what Ray itself asks of ``storage_path``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path

import ray
from ray import tune
from tqdm.auto import tqdm

from drive.errors import DriveError
from drive.sweep import (
    REPORTED,
    SweepSpec,
    Trial,
    grid_trials,
    run_config,
    run_folder_name,
    search_trial,
    trial_count,
)

RAY_FOLDER = "ray"


def run_sweep(spec: SweepSpec, folder: Path, address: str | None, verbose: bool, progress: bool) -> list[dict]:
    """Every trial of ``spec``; returns one record per trial (its label, runs and figures, or its error)."""
    _init_ray(address, verbose)
    try:
        tuner = tune.Tuner(
            _trainable(spec, folder),
            param_space=_param_space(spec),
            tune_config=_tune_config(spec),
            run_config=_run_config(folder, verbose, TrialLines(trial_count(spec), progress)),
        )
        return _records(tuner.fit(), spec)
    finally:
        _shutdown_ray()


def resume_sweep(spec: SweepSpec, folder: Path, finished: int, address: str | None, verbose: bool) -> list[dict]:
    """Ray Tune's restore: finished and failed trials are kept, the others run (their run folders resume); the
    progress setting is the one the sweep started with (Ray restores its callbacks)."""
    state = folder / RAY_FOLDER
    if not (state / "tuner.pkl").is_file():
        raise DriveError(f"sweep {str(folder)!r} has no Ray state to resume from; start the sweep again")
    _init_ray(address, verbose)
    try:
        TrialLines.done = finished
        tuner = tune.Tuner.restore(str(state), _trainable(spec, folder), resume_unfinished=True)
        return _records(tuner.fit(), spec)
    finally:
        _shutdown_ray()


def _init_ray(address: str | None, verbose: bool) -> None:
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if verbose else "0"  # the old reporter is silent at verbose 0
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # trials log to their own tb/, not Ray's
    quiet = logging.INFO if verbose else logging.ERROR
    # without --address (or Ray's own RAY_ADDRESS), a Ray of the sweep's own: ray.init() would join whatever
    # cluster last started on this machine (/tmp/ray/ray_current_cluster), and one left behind with no free CPU
    # hangs every trial (CI, 2026-12-01)
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=verbose, logging_level=quiet)
    except ConnectionError as err:
        raise DriveError(f"cannot join the Ray cluster at --address {address}: {str(err).splitlines()[0]}") from None


def _shutdown_ray() -> None:
    ray.shutdown()


def _trainable(spec: SweepSpec, folder: Path):
    trainable = tune.with_parameters(_train_trial, spec=spec, folder=str(folder.resolve()))
    return tune.with_resources(trainable, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})


def _param_space(spec: SweepSpec) -> dict:
    if not spec.is_search:
        return {"trial": tune.grid_search([t.__dict__ for t in grid_trials(spec)])}
    space = {}
    for key, r in spec.search.items():
        if r.integer:
            space[key] = (tune.lograndint if r.log else tune.randint)(int(r.low), int(r.high) + 1)
        else:
            space[key] = (tune.loguniform if r.log else tune.uniform)(r.low, r.high)
    return space


def _tune_config(spec: SweepSpec):
    search = {}
    if spec.is_search:
        from ray.tune.search.optuna import OptunaSearch

        metric = spec.metric.split("/", 1)[1]
        search = {"search_alg": OptunaSearch(metric=metric, mode=spec.mode, seed=spec.seed), "num_samples": spec.trials}
    return tune.TuneConfig(
        max_concurrent_trials=spec.max_concurrent or None,
        trial_dirname_creator=lambda trial: trial.trial_id,
        **search,
    )


def _run_config(folder: Path, verbose: bool, lines):
    return tune.RunConfig(
        name=RAY_FOLDER,
        storage_path=str(folder.resolve()),
        verbose=2 if verbose else 0,
        callbacks=[lines],
        failure_config=tune.FailureConfig(max_failures=0),
    )


def _train_trial(config: dict, spec: SweepSpec, folder: str) -> None:
    """One Ray trial: its run folders (trained, resumed or, if finished, read), then one report."""
    if "trial" in config:
        trial = Trial(
            **{**config["trial"], "sets": tuple(config["trial"]["sets"]), "seeds": tuple(config["trial"]["seeds"])}
        )
    else:
        trial = search_trial(spec, tune.get_context().get_trial_id(), {k: config[k] for k in spec.search})
    node = {"label": trial.label, "trial": trial.name, "node_id": ray.get_runtime_context().get_node_id()}
    runs = []
    try:
        for seed in trial.seeds:
            run = _train_or_finish(spec, trial, seed, Path(folder) / run_folder_name(trial, seed))
            summary = json.loads((run / "metrics.json").read_text())["summary"]
            runs.append({"seed": seed, "run": str(run), **{k: float(summary[k]) for k in REPORTED}})
    except Exception as err:  # the trial fails alone: its one line is reported, its traceback kept in a file
        tune.report({**node, "error": _error_line(err), "error_file": _save_traceback(Path(folder), trial.name)})
        return
    means = {k: sum(r[k] for r in runs) / len(runs) for k in REPORTED}
    tune.report({**means, **node, "runs": json.dumps(runs)})


def _error_line(err: Exception) -> str:
    first = (str(err).strip().splitlines() or [""])[0]
    return first if isinstance(err, DriveError) else f"{type(err).__name__}: {first}"


def _save_traceback(folder: Path, name: str) -> str:
    import traceback

    path = folder / "errors" / f"{name}.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(traceback.format_exc())
    return str(path)


def _train_or_finish(spec: SweepSpec, trial: Trial, seed: int, run: Path) -> Path:
    """A finished run folder is read, a started one resumed (checkpoints or recipe rounds), else trained."""
    from drive.agents.training import resume, train

    if (run / "metrics.json").is_file():
        return run
    if run.is_dir() and (any((run / "checkpoints").glob("model_*_steps.zip")) or (run / "student").is_dir()):
        return resume(run, progress=False)
    sys.argv = ["drive", "sweep", "trial", trial.name, "--seed", str(seed), *(f"--set={s}" for s in trial.sets)]
    config = run_config(spec, trial.sets, {"seed": seed, "threads": max(1, int(spec.cpus_per_trial))})
    return train(config, run.parent, progress=False, run_dir=run)


def _records(results, spec: SweepSpec) -> list[dict]:
    """One record per trial from Ray's results: label, runs and figures, or the error; ``unfinished`` marks a
    trial that an interrupted sweep left to run."""
    records = []
    for result in results:
        metrics, config = result.metrics or {}, result.config or {}
        if "trial" in config:
            label, name = config["trial"]["label"], config["trial"]["name"]
        else:
            sampled = search_trial(
                spec, metrics.get("trial_id", "?"), {k: config[k] for k in spec.search if k in config}
            )
            label, name = sampled.label, metrics.get("trial", sampled.name)
        record = {"label": label, "trial": name, "params": _params(config, spec)}
        if "error" in metrics or result.error is not None:
            record["error"] = metrics.get("error") or _last_line(result.error)
        elif "runs" in metrics:
            record.update(
                {k: metrics[k] for k in REPORTED}, runs=json.loads(metrics["runs"]), node_id=metrics["node_id"]
            )
        else:
            record["unfinished"] = True
        records.append(record)
    return records


def _params(config: dict, spec: SweepSpec) -> dict:
    if "trial" in config:
        return {s.partition("=")[0]: json.loads(s.partition("=")[2]) for s in config["trial"]["sets"]}
    return {k: config[k] for k in spec.search if k in config}


def _last_line(error) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def resume_command(folder: Path) -> str:
    return shlex.join(["drive", "sweep", "--resume", str(folder)])


class TrialLines(tune.Callback):
    """One line per finished or failed trial, and a bar over all trials. Ray pickles its callbacks with the
    experiment state and ``Tuner.restore`` brings them back: the bar is rebuilt then, counting from ``done``."""

    done = 0  # trials already finished when a restored sweep starts (set by resume_sweep)

    def __init__(self, total: int, progress: bool):
        self.total, self.progress = total, progress
        self.bar = tqdm(total=total, initial=self.done, desc="sweep", unit="trial", disable=not progress)

    def __getstate__(self):
        return {"total": self.total, "progress": self.progress}

    def __setstate__(self, state):
        self.__init__(state["total"], state["progress"])

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        if "runs" in r:
            figures = f"return {r['mean_return']:.2f}, crash rate {r['crash_rate']:.0%}, {r['mean_speed']:.1f} m/s"
            self.bar.write(f"trial {r['trial']} done: {figures}")
        elif "error" in r:
            self.bar.write(f"trial {r['trial']} failed: {r['error']} (traceback: {r['error_file']})")
        self.bar.update(1)

    def on_trial_error(self, iteration, trials, trial, **info):  # Ray's own failures (a worker died, ...)
        self.bar.write(f"trial {_describe(trial.config)} failed in Ray: {_last_line(trial.get_error())}")
        self.bar.update(1)

    def on_experiment_end(self, trials, **info):
        self.bar.close()


def _describe(config: dict) -> str:
    if "trial" in config:
        return config["trial"]["name"]
    return " ".join(f"{k}={v:.4g}" for k, v in config.items() if isinstance(v, float))
