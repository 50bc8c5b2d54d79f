"""Run folders: ``runs/<env>-<algo>-<timestamp>/`` with everything needed to resume or compare."""

from __future__ import annotations

import contextlib
import json
import platform
import re
import shlex
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from drive.config import RunConfig, dump, from_dict, load_file, validate
from drive.errors import DriveError

CONFIG_FILE = "config.yaml"
_CHECKPOINT = re.compile(r"model_(\d+)_steps\.zip$")


def new_run_dir(root: str | Path, name: str, exact: Path | None = None) -> Path:
    """A fresh folder ``root/<name>-<timestamp>``, suffixed ``-2``, ``-3``... if that second is taken; or the
    ``exact`` folder a sweep chose (kept if a stopped trial left it with nothing to resume from)."""
    if exact is not None:
        exact.mkdir(parents=True, exist_ok=True)
        return exact
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def check_writable(path: str | Path, option: str, folder: bool) -> Path:
    """Refuse, before any work, an output ``path`` that cannot be written: a file (or folder) in the way, a
    parent that cannot hold it (no permission, a read-only or virtual file system such as /proc). Missing
    parents are fine (they are made); nothing is left behind by the check."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        wanted = "a folder" if folder else "a file name"
        raise DriveError(f"{option} {str(path)!r} is {'a folder' if path.is_dir() else 'a file'}; give {wanted}")
    base = path if folder else path.parent
    existing = next(p for p in (base, *base.parents) if p.exists() or p == Path(p.anchor or "."))
    if not existing.is_dir():
        raise DriveError(f"{option} {str(path)!r} cannot be made: {str(existing)!r} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise DriveError(
            f"{option} {str(path)!r} cannot be written ({err.strerror} in {str(existing)!r}); choose another place"
        ) from None
    return path


@contextlib.contextmanager
def locked(folder: str | Path, what: str = "run folder"):
    """Held while this process writes in ``folder``: another drive process that asks for it is refused.

    An advisory ``fcntl`` lock on ``folder/.lock``, released by the OS if the process dies, so a killed run
    never leaves its folder locked. Where ``fcntl`` does not exist (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    file = (Path(folder) / ".lock").open("a")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise DriveError(
            f"{what} {str(folder)!r} is in use by another drive process; wait for it to end or stop it first"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(file, fcntl.LOCK_UN)
        file.close()


def write_run_files(run: Path, config: RunConfig) -> None:
    """The resolved config, the command (appended: a resumed run lists every command, in order) and the
    package versions."""
    (run / CONFIG_FILE).write_text(dump(config))
    with (run / "command.txt").open("a") as file:
        file.write(shlex.join(sys.argv) + "\n")
    (run / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("drive", "torch", "stable-baselines3", "gymnasium", "highway-env", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def read_run_config(run: str | Path) -> RunConfig:
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise DriveError(f"run folder {str(run)!r} has no {CONFIG_FILE}; give a folder made by drive train-agent")
    return validate(from_dict(RunConfig, load_file(path)))


def replay_file_name(steps: int | str) -> str:
    """The replay buffer saved beside ``model_<steps>_steps.zip`` (``drive.agents.replay``'s format)."""
    return f"model_replay_buffer_{steps}_steps.pkl.gz"


def latest_checkpoint(run: str | Path) -> tuple[Path, Path | None, int]:
    """The newest ``checkpoints/model_<N>_steps.zip``, its replay buffer if saved, and N."""
    folder = Path(run) / "checkpoints"
    found = [(int(m.group(1)), p) for p in folder.glob("model_*_steps.zip") if (m := _CHECKPOINT.search(p.name))]
    if not found:
        raise DriveError(f"run folder {str(run)!r} has no checkpoint in checkpoints/ to resume from")
    steps, model = max(found)
    replay = folder / replay_file_name(steps)
    return model, (replay if replay.is_file() else None), steps


def write_metrics(path: Path, summary: dict, episodes: list[dict], **extra) -> None:
    path.write_text(json.dumps({"summary": summary, "episodes": episodes, **extra}, indent=2) + "\n")
