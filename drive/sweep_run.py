"""The driver's side of ``drive sweep``: check everything, make the sweep folder, run it on Ray, summarise."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

from drive.errors import DriveError
from drive.runs import check_writable, locked, new_run_dir
from drive.sweep import (
    SweepSpec,
    build_spec,
    load_spec,
    parse_grid,
    parse_search,
    read_spec_file,
    run_config,
    save_spec,
    trial_count,
)
from drive.sweep_summary import summarize, summary_table, write_hparams, write_summary

INSTALL_HINT = 'drive sweep needs Ray Tune and Optuna: pip install -e ".[ray]" (or pip install "drive[ray]")'
RECORDS_FILE = "trials.json"


def require_ray() -> None:
    """One line saying how to install the extra, before any work, when Ray or Optuna is missing."""
    try:
        import optuna  # noqa: F401
        import ray.tune  # noqa: F401
    except ImportError:
        raise DriveError(INSTALL_HINT) from None


def prepare_sweep(
    config: Path | None, values: dict, train: dict, grid: list[str], search: list[str], address, runs_dir: Path
) -> tuple[Path, SweepSpec, int]:
    """Flags over the sweep file, all checked (keys, ranges, the base run config, the cluster address) before
    the sweep folder is made."""
    from drive.agents.algos import check_hyperparam_name

    require_ray()
    spec_values = read_spec_file(config) if config is not None else {"train": {}, "grid": {}, "search": {}}
    flags_train = {k: v for k, v in train.items() if v not in (None, [])}
    spec_values["train"] = {
        **spec_values["train"],
        **flags_train,
        "set": [*spec_values["train"].get("set", []), *train["set"]],
    }
    spec_values["grid"] = {**spec_values["grid"], **parse_grid(grid)}
    spec_values["search"] = {**spec_values["search"], **parse_search(search)}
    spec = build_spec(**{**spec_values, **{k: v for k, v in values.items() if v is not None}})
    base = run_config(spec)  # the options every trial shares, checked before Ray starts
    for key in [*spec.grid, *spec.search]:
        if key.startswith("algo.hyperparams."):
            check_hyperparam_name(base.algo.name, key.split(".")[2])
    check_address(address)
    check_writable(runs_dir, "--runs-dir", True)
    folder = new_run_dir(runs_dir, f"sweep-{spec.name}")
    save_spec(folder, spec)
    return folder, spec, 0


def check_address(address: str | None) -> None:
    """A ``HOST:PORT`` that answers, so that a typo fails in a second rather than after Ray's long retries."""
    if address in (None, "auto"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DriveError(f"--address must be HOST:PORT or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as err:
        raise DriveError(
            f"no Ray cluster answers at --address {address} ({err.strerror or err}); start one with "
            "`ray start --head` or drop --address for a local Ray"
        ) from None


def resume_sweep_folder(folder: Path) -> tuple[Path, SweepSpec, int]:
    require_ray()
    if not folder.is_dir():
        raise DriveError(f"sweep folder {str(folder)!r} does not exist")
    spec = load_spec(folder)
    records = _read_records(folder)
    return folder, spec, sum(1 for r in records if not r.get("unfinished"))


def run_prepared(
    folder: Path, spec: SweepSpec, finished: int, address, verbose: bool, progress: bool, echo: Callable
) -> int:
    """Runs (or resumes) the sweep, writes its summary, prints it; returns 130 if it was stopped before the end,
    1 if a trial failed, else 0."""
    from drive.sweep_tune import resume_command, resume_sweep, run_sweep

    with locked(folder, "sweep folder"):
        if finished or (folder / "ray").is_dir():
            records = resume_sweep(spec, folder, finished, address, verbose)
        else:
            records = run_sweep(spec, folder, address, verbose, progress)
        (folder / RECORDS_FILE).write_text(json.dumps(records, indent=2) + "\n")
        rows = summarize(records, spec)
        write_summary(folder, rows)
        write_hparams(folder, rows)
    echo(summary_table(rows))
    for record in records:
        if record.get("error"):
            echo(f"failed: {record['trial']} ({record['label']}): {record['error']}")
    echo(f"sweep folder: {folder}\nsummary: {folder / 'summary.csv'}  (TensorBoard: tensorboard --logdir {folder})")
    # Ray lists only the trials it has made: stopped early, the ones its search had not generated yet are missing
    left = sum(1 for r in records if r.get("unfinished")) + max(0, trial_count(spec) - len(records))
    if left:
        echo(f"stopped with {left} trial(s) left; finish them with: {resume_command(folder)}")
        return 130
    return 1 if any(r.get("error") for r in records) else 0


def _read_records(folder: Path) -> list[dict]:
    path = folder / RECORDS_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else []
    except json.JSONDecodeError:
        return []
