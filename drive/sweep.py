"""What a sweep is, without Ray: its input (flags or a YAML file, strictly checked) and its trials.

A sweep trains many ordinary runs: a grid (the cross product of config values, times ``seeds`` seeds) or a search
(``trials`` configurations sampled by Optuna, each trained with ``seeds`` seeds one after the other). Everything
here is checked before Ray starts, so bad input costs one line and nothing else; ``drive.sweep_tune`` runs it.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from drive.config import MAX_SEED, RunConfig, check_choice, load_file, parse_set
from drive.errors import DriveError

METRICS = ("eval/mean_return", "eval/crash_rate", "eval/mean_speed")  # what a search can optimise
REPORTED = ("mean_return", "crash_rate", "mean_speed")  # a run's metrics.json summary keys, reported to Ray
TRAIN_KEYS = ("env", "recipe", "algo", "obs", "backend", "n_envs", "timesteps", "device", "config", "set")
FILE_KEYS = {"name", "train", "seeds", "seed", "grid", "search", "trials", "metric", "mode", "resources"}
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class SweepSpec:
    name: str = "sweep"
    train: dict = field(default_factory=dict)  # drive train-agent's options: env, algo, obs, ..., set (a list)
    seeds: int = 1
    seed: int = 0  # the first seed; a configuration's seeds are seed, seed + 1, ...
    grid: dict = field(default_factory=dict)  # key.path -> list of values
    search: dict = field(default_factory=dict)  # key.path -> Range
    trials: int = 0
    metric: str = "eval/mean_return"
    mode: str = "max"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0  # 0: as many as the cluster's resources allow

    @property
    def is_search(self) -> bool:
        return bool(self.search)


@dataclass(frozen=True)
class Trial:
    """One configuration and its seeds; a grid trial has one seed, a search trial all of them."""

    name: str
    sets: tuple[str, ...]  # --set overrides of this configuration (the grid's or the sampled values)
    seeds: tuple[int, ...]
    label: str  # the configuration, without its seed: rows of the summary group by it


def parse_grid(items: list[str]) -> dict:
    """``["algo.hyperparams.learning_rate=1e-3,3e-4"]`` -> {key: [values]}, values parsed as YAML scalars."""
    grid = {}
    for item in items:
        key, sep, raw = item.partition("=")
        values = [v for v in raw.split(",") if v.strip()]
        if not sep or not key:
            raise DriveError(f"--grid expects key.path=v1,v2,..., got {item!r}")
        if not values:
            raise DriveError(f"--grid {key} has no values; give key.path=v1,v2,...")
        grid[key] = [_scalar(v.strip()) for v in values]
    return grid


def parse_search(items: list[str]) -> dict:
    """``["algo.hyperparams.learning_rate=1e-4:1e-2:log"]`` -> {key: Range}; ``:int`` samples integers."""
    search = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = raw.split(":")
        flags = set(parts[2:])
        if not sep or not key or len(parts) < 2 or not flags <= {"log", "int"}:
            raise DriveError(f"--search expects key.path=low:high[:log][:int], got {item!r}")
        search[key] = _range(key, parts[0], parts[1], "log" in flags, "int" in flags)
    return search


def _range(key: str, low, high, log: bool, integer: bool) -> Range:
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise DriveError(f"--search {key}: low and high must be numbers, got {low!r}:{high!r}") from None
    if not low < high:
        raise DriveError(f"--search {key}: low must be below high, got {low:g}:{high:g}")
    if log and low <= 0:
        raise DriveError(f"--search {key}: a log range needs low above 0, got {low:g}")
    return Range(low, high, log, integer)


def _scalar(raw: str):
    return parse_set([f"v={raw}"])["v"]


def read_spec_file(path: str | Path) -> dict:
    """A sweep YAML file as keyword arguments of ``build_spec``; unknown keys are refused."""
    data = load_file(path)
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise DriveError(f"unknown sweep key {unknown[0]!r} in {str(path)!r}; valid: {', '.join(sorted(FILE_KEYS))}")
    train = data.get("train") or {}
    if not isinstance(train, dict) or set(train) - set(TRAIN_KEYS):
        bad = sorted(set(train) - set(TRAIN_KEYS)) if isinstance(train, dict) else [train]
        raise DriveError(f"unknown train key {bad[0]!r} in {str(path)!r}; valid: {', '.join(TRAIN_KEYS)}")
    sets = train.get("set") or {}
    if not isinstance(sets, dict):
        raise DriveError(f"train.set in {str(path)!r} must map key.path to a value, got {sets!r}")
    train = {**train, "set": [f"{k}={json.dumps(v)}" for k, v in sets.items()]}
    grid = data.get("grid") or {}
    search = data.get("search") or {}
    for section, value in (("grid", grid), ("search", search), ("resources", data.get("resources") or {})):
        if not isinstance(value, dict):
            raise DriveError(f"{section} in {str(path)!r} must be a mapping, got {value!r}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise DriveError(f"grid {key} in {str(path)!r} must be a non-empty list of values, got {values!r}")
    ranges = {}
    for key, r in search.items():
        if not isinstance(r, dict) or not {"low", "high"} <= set(r) or set(r) - {"low", "high", "log", "int"}:
            raise DriveError(f"search {key} in {str(path)!r} must be {{low: L, high: H, log: bool, int: bool}}")
        ranges[key] = _range(key, r["low"], r["high"], bool(r.get("log")), bool(r.get("int")))
    resources = data.get("resources") or {}
    if set(resources) - set(RESOURCE_KEYS):
        raise DriveError(f"unknown resources key in {str(path)!r}; valid: {', '.join(RESOURCE_KEYS)}")
    plain = {k: data[k] for k in ("name", "seeds", "seed", "trials", "metric", "mode") if k in data}
    return {**plain, **resources, "train": train, "grid": grid, "search": ranges}


def build_spec(**values) -> SweepSpec:
    """A checked sweep: names, counts and ranges; every key known to the run config (values are checked by
    each trial, as drive train-agent checks them, so one bad value fails its trial alone)."""
    spec = SweepSpec(**{k: v for k, v in values.items() if v is not None})
    if not re.fullmatch(r"[A-Za-z0-9._-]+", spec.name):
        raise DriveError(f"sweep name {spec.name!r} may hold letters, digits, '.', '_' and '-' only")
    for key in [*spec.grid, *spec.search]:
        check_key(key)
    for key in (item.partition("=")[0] for item in spec.train.get("set") or []):
        check_key(key)
    if spec.grid and spec.search:
        raise DriveError("a sweep is a grid or a search, not both; move the grid's keys to --set or to --search")
    if spec.search and spec.trials < 1:
        raise DriveError(f"a search needs --trials of at least 1, got {spec.trials}")
    if not spec.search and spec.trials:
        raise DriveError("--trials counts a search's samples; give --search key.path=low:high, or drop --trials")
    if spec.seeds < 1:
        raise DriveError(f"--seeds must be at least 1, got {spec.seeds}")
    if not 0 <= spec.seed <= MAX_SEED - spec.seeds + 1:
        raise DriveError(f"--seed must be in 0..{MAX_SEED - spec.seeds + 1} for {spec.seeds} seeds, got {spec.seed}")
    check_choice("--metric", spec.metric, METRICS)
    check_choice("--mode", spec.mode, ("max", "min"))
    if spec.cpus_per_trial <= 0 or spec.gpus_per_trial < 0 or spec.max_concurrent < 0:
        raise DriveError(
            "--cpus-per-trial must be above 0, --gpus-per-trial and --max-concurrent at least 0; got "
            f"{spec.cpus_per_trial:g}, {spec.gpus_per_trial:g}, {spec.max_concurrent}"
        )
    if spec.train.get("recipe") and spec.train.get("timesteps") is not None:
        raise DriveError(
            "a recipe is budgeted in rounds, not --timesteps; drop it (e.g. --set recipe.student.rounds=8)"
        )
    if "train.seed" in spec.grid or "train.seed" in spec.search:
        raise DriveError("train.seed is the sweep's own axis; use --seeds N (and --seed for the first)")
    return spec


def check_key(key: str) -> None:
    """A key that ``--set`` accepts: a path through the run config, free below its mappings
    (``algo.hyperparams.*``, ``env.config.*``)."""
    import dataclasses
    import typing

    cls, where = RunConfig, ""
    for part in key.split("."):
        fields = {f.name for f in dataclasses.fields(cls)}
        if part not in fields:
            valid = ", ".join(where + f for f in sorted(fields))
            inside = f" in {key!r}" if key != where + part else ""
            raise DriveError(f"unknown config key {where + part!r}{inside}; valid: {valid}")
        hint = typing.get_type_hints(cls)[part]
        if not dataclasses.is_dataclass(hint):
            if hint is not dict and key != where + part:
                raise DriveError(f"config key {where + part!r} is a value, not a section; {key!r} goes too deep")
            return
        cls, where = hint, f"{where}{part}."
    raise DriveError(f"{key!r} is a section; give a key inside it, e.g. {key}.<name>")


def trial_count(spec: SweepSpec) -> int:
    """How many trials the sweep runs: its search's ``trials``, or one per grid combination and seed."""
    return spec.trials if spec.is_search else len(grid_trials(spec))


def grid_trials(spec: SweepSpec) -> list[Trial]:
    """The cross product of the grid's values, each with every seed: one trial per run."""
    keys = list(spec.grid)
    trials = []
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        sets = tuple(f"{k}={json.dumps(v)}" for k, v in zip(keys, combo, strict=True))
        label = " ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True)) or "base"
        for seed in seed_list(spec):
            index = len(trials)
            words = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, combo, strict=True)] + [f"seed={seed}"]
            trials.append(Trial(_folder_name(index, words), sets, (seed,), label))
    return trials


def search_trial(spec: SweepSpec, trial_id: str, sampled: dict) -> Trial:
    """A configuration sampled by the search, with all the sweep's seeds."""
    values = {k: (round(v) if spec.search[k].integer else v) for k, v in sampled.items()}
    sets = tuple(f"{k}={json.dumps(v)}" for k, v in values.items())
    label = " ".join(f"{k}={v:.4g}" for k, v in values.items())
    return Trial(_folder_name(None, [trial_id]), sets, tuple(seed_list(spec)), label)


def run_config(spec: SweepSpec, sets: tuple[str, ...] = (), train: dict | None = None) -> RunConfig:
    """The run config of the sweep's ``train`` options plus ``sets``, as ``drive train-agent`` would resolve it;
    ``train`` adds ``train.*`` flags (a trial's seed and threads)."""
    from drive.config import resolve

    t = spec.train
    flags: dict = {"env": {}, "train": dict(train or {})}
    for key, section in (("backend", "env"), ("n_envs", "env"), ("timesteps", "train"), ("device", "train")):
        if t.get(key) is not None:
            flags[section][key] = t[key]
    sets = [*(t.get("set") or []), *sets]
    return resolve(
        t.get("env") or "highway", t.get("algo"), t.get("obs"), t.get("config"), flags, sets, t.get("recipe")
    )


def seed_list(spec: SweepSpec) -> list[int]:
    return list(range(spec.seed, spec.seed + spec.seeds))


def run_folder_name(trial: Trial, seed: int) -> str:
    """A grid trial's run is its folder; a search trial has one run folder per seed."""
    return trial.name if len(trial.seeds) == 1 else f"{trial.name}-seed={seed}"


def _folder_name(index: int | None, words: list[str]) -> str:
    name = "-".join(([f"{index:03d}"] if index is not None else []) + words)
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name)[:120]


def save_spec(folder: Path, spec: SweepSpec) -> None:
    data = {**spec.__dict__, "search": {k: r.__dict__ for k, r in spec.search.items()}}
    (folder / SWEEP_FILE).write_text(json.dumps(data, indent=2) + "\n")


def load_spec(folder: Path) -> SweepSpec:
    path = folder / SWEEP_FILE
    if not path.is_file():
        raise DriveError(f"{str(folder)!r} has no {SWEEP_FILE}; give a folder made by drive sweep")
    try:
        data = json.loads(path.read_text())
        return replace(SweepSpec(**data), search={k: Range(**r) for k, r in data["search"].items()})
    except (json.JSONDecodeError, TypeError, KeyError):
        raise DriveError(f"{str(path)!r} is not a sweep file drive wrote; restore it or start a new sweep") from None
