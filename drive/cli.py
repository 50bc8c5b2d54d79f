"""The ``drive`` command line: one function per verb over the Python API.

Bad input exits with code 2 and one line on stderr; an interrupted training run exits with 130
after saving a checkpoint it can be resumed from.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from drive.config import MAX_SEED
from drive.errors import DriveError, EngineWarning

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train, evaluate and watch driving agents on highway-env scenarios.",
)


def _in_range(name: str, low: int, high: int | None = None):
    """An option callback: one line naming the option, its value and the allowed range."""

    def check(value: int | None) -> int | None:
        if value is not None and (value < low or (high is not None and value > high)):
            allowed = f"{low}..{high}" if high is not None else f"at least {low}"
            raise DriveError(f"{name} must be {allowed}, got {value}")
        return value

    return check


def _positive(name: str):
    def check(value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise DriveError(f"{name} must be above 0, got {value}")
        return value

    return check


def _writable(option: str, folder: bool):
    def check(value: Path | None) -> Path | None:
        from drive.runs import check_writable

        return value if value is None else check_writable(value, option, folder)

    return check


def _checked_device(value: str | None) -> str | None:
    from drive.config import check_device

    return value if value is None else check_device(value)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Backend = Annotated[
    str,
    typer.Option(
        help="Simulator: highway-env (the reference), batched (ours, highway only) or envpool (all six scenarios, "
        "pixels on highway; the drive[envpool] extra)."
    ),
]
Seed = Annotated[
    int,
    typer.Option(help="Seed of the first episode; episode i uses seed + i.", callback=_in_range("--seed", 0, MAX_SEED)),
]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.", callback=_checked_device)]
RunsDir = Annotated[Path, typer.Option(help="Where run folders are written.", callback=_writable("--runs-dir", True))]
# The policy to evaluate or watch: a run, a checkpoint, or a baseline.
RunFolder = Annotated[Path | None, typer.Option(help="Run folder of a trained agent.")]
Checkpoint = Annotated[Path | None, typer.Option(help="A model .zip.")]
Baseline = Annotated[str | None, typer.Option(help="Baseline: idm or random.")]
RunEnv = Annotated[str | None, typer.Option(help="Scenario (default: the run's, or highway).")]
CheckpointAlgo = Annotated[str | None, typer.Option(help="Algorithm of a checkpoint outside a run.")]


@app.command("train-agent")
def train_agent(
    env: Annotated[
        str, typer.Option(help="Scenario: highway, merge, roundabout, intersection, racetrack, parking.")
    ] = "highway",
    recipe: Annotated[
        str | None, typer.Option(help="A multi-stage recipe from configs/recipes/ (driver: the pixel driver).")
    ] = None,
    algo: Annotated[str | None, typer.Option(help="dqn or ppo (default: the env preset's).")] = None,
    obs: Annotated[str | None, typer.Option(help="pixels or kinematics (default: the env preset's).")] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="highway-env (the reference), batched (ours, highway only) or envpool (pixels on highway only; "
            "drive[envpool]); default: the preset's."
        ),
    ] = None,
    n_envs: Annotated[int | None, typer.Option(help="Parallel envs (default: the algorithm preset's).")] = None,
    timesteps: Annotated[int | None, typer.Option("--timesteps", "-n", help="Env steps in total.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the run.", callback=_in_range("--seed", 0, MAX_SEED))
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.", callback=_checked_device)] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file merged over the presets.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key.path=value override; repeatable.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Run folder to continue from its last checkpoint.")] = None,
    encoder: Annotated[Path | None, typer.Option(help="Pretrained encoder.pt (drive pretrain) to start from.")] = None,
    freeze_encoder: Annotated[bool, typer.Option(help="Keep the pretrained encoder fixed.")] = False,
    runs_dir: RunsDir = Path("runs"),
    quiet: Quiet = False,
) -> None:
    """Train DQN or PPO on a scenario, or a recipe; writes runs/<env>-<algo or recipe>-<timestamp>/."""
    from drive.agents.training import resume as resume_run
    from drive.agents.training import train
    from drive.config import resolve

    if resume is not None:
        others = [
            name
            for name, value in (
                ("--recipe", recipe),
                ("--backend", backend),
                ("--algo", algo),
                ("--obs", obs),
                ("--n-envs", n_envs),
                ("--seed", seed),
                ("--device", device),
                ("--config", config),
                ("--set", set_),
                ("--encoder", encoder),
                ("--freeze-encoder", freeze_encoder),
            )
            if value
        ]
        if others:
            raise DriveError(
                f"--resume continues the run's saved config; drop {', '.join(others)} (valid: --timesteps)"
            )
        run = resume_run(resume, timesteps, progress=not quiet)
    else:
        if recipe is not None and timesteps is not None:
            raise DriveError(
                "a recipe is budgeted in rounds, not --timesteps; drop it (e.g. --set recipe.student.rounds=8)"
            )
        flags = _flags(backend=backend, n_envs=n_envs, timesteps=timesteps, seed=seed, device=device)
        if encoder is not None or freeze_encoder:
            flags["algo"] = {"encoder": {"pretrained": str(encoder or ""), "freeze": freeze_encoder}}
        run_config = resolve(env, algo, obs, config, flags, set_, recipe=recipe)
        run = train(run_config, runs_dir, progress=not quiet)
    _echo_verdict(run)
    typer.echo(f"run folder: {run}\nTensorBoard logs: {run / 'tb'}  (view with: tensorboard --logdir {run.parent})")


def _echo_verdict(run: Path) -> None:
    import json

    from drive.agents.verdict import verdict_table

    metrics = json.loads((run / "metrics.json").read_text())
    if metrics.get("summary"):
        typer.echo(verdict_table(metrics["summary"], metrics.get("idm")))


def _flags(backend, n_envs, timesteps, seed, device) -> dict:
    flags: dict = {"env": {"backend": backend} if backend is not None else {}, "train": {}}
    if n_envs is not None:
        flags["env"]["n_envs"] = n_envs
    for key, value in (("timesteps", timesteps), ("seed", seed), ("device", device)):
        if value is not None:
            flags["train"][key] = value
    return flags


@app.command()
def evaluate(
    run: RunFolder = None,
    checkpoint: Checkpoint = None,
    policy: Baseline = None,
    env: RunEnv = None,
    obs: Annotated[str | None, typer.Option(help="Observation preset for a checkpoint outside a run.")] = None,
    algo: CheckpointAlgo = None,
    episodes: Annotated[int, typer.Option(help="Episodes to run.")] = 10,
    seed: Seed = 0,
    backend: Backend = "highway-env",
    device: Device = "auto",
    runs_dir: RunsDir = Path("runs"),
    quiet: Quiet = False,
) -> None:
    """Evaluate a policy: per-episode records and a summary in metrics.json and TensorBoard."""
    from drive.agents.evaluate_run import evaluate_to_run

    out = evaluate_to_run(
        run=run,
        checkpoint=checkpoint,
        policy=policy,
        env=env,
        obs=obs,
        algo=algo,
        episodes=episodes,
        seed=seed,
        backend=backend,
        device=device,
        runs_dir=runs_dir,
        progress=not quiet,
    )
    typer.echo(out.summary_line)
    typer.echo(f"metrics: {out.folder / 'metrics.json'}")


@app.command()
def watch(
    run: RunFolder = None,
    checkpoint: Checkpoint = None,
    policy: Baseline = None,
    env: RunEnv = None,
    obs: Annotated[str | None, typer.Option(help="Observation preset for a checkpoint or baseline.")] = None,
    algo: CheckpointAlgo = None,
    episodes: Annotated[int, typer.Option(help="Episodes to record.")] = 1,
    seed: Seed = 0,
    out: Annotated[
        Path | None, typer.Option(help="Video file, .mp4 or .gif.", callback=_writable("--out", False))
    ] = None,
    live: Annotated[bool, typer.Option(help="Also show the rollout in a window.")] = False,
    fps: Annotated[float, typer.Option(help="Frames (decisions) per second of the video.")] = 2.0,
    backend: Backend = "highway-env",
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Record a rollout: colour render beside the agent's own frames, with actions and action values."""
    from drive.agents.rollout_video import watch_policy

    path = watch_policy(
        run=run,
        checkpoint=checkpoint,
        policy=policy,
        env=env,
        obs=obs,
        algo=algo,
        episodes=episodes,
        seed=seed,
        out=out,
        live=live,
        fps=fps,
        backend=backend,
        device=device,
        progress=not quiet,
    )
    if path is not None:
        typer.echo(f"video: {path}")


@app.command()
def bench(
    quick: Annotated[
        bool,
        typer.Option(
            help="Under a minute: highway only, N=1024, 3 s a row: highway-env, batched pixels, EnvPool's presets."
        ),
    ] = False,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the rows as JSON records.", callback=_writable("--json", False)),
    ] = None,
    scenarios: Annotated[
        str | None, typer.Option(help="Comma-separated scenarios (default: all six; highway with --quick).")
    ] = None,
    engines: Annotated[
        str | None, typer.Option(help="Comma-separated engines: highway-env, batched, envpool (default: all).")
    ] = None,
    n_envs: Annotated[
        str | None, typer.Option(help="Comma-separated env counts (default: 1,64,1024,8192; 1024 with --quick).")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(help="Time budget of each env row in seconds (default 8; 3 with --quick).")
    ] = None,
    train: Annotated[
        bool | None, typer.Option("--train/--no-train", help="Training rows (default: on, off with --quick).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Env steps per second of highway-env, the batched simulator and EnvPool (and training), side by side."""
    import json

    from drive.bench import format_table, run_bench

    notes: list[str] = []
    rows = run_bench(
        quick=quick,
        progress=not quiet,
        scenarios=_comma_list(scenarios),
        engines=_comma_list(engines),
        sizes=_comma_ints("--n-envs", n_envs),
        seconds=seconds,
        train=train,
        notes=notes,
    )
    typer.echo(format_table(rows))
    for note in notes:
        typer.echo(note)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([r.as_record() for r in rows], indent=2) + "\n")
        typer.echo(f"json: {json_out}")


def _comma_list(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def _comma_ints(option: str, value: str | None) -> list[int] | None:
    parts = _comma_list(value)
    if parts is None:
        return None
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise DriveError(f"{option} takes comma-separated whole numbers, got {value!r}") from None


@app.command("collect-frames")
def collect_frames(
    out: Annotated[
        Path, typer.Option(help="Folder of the frame store (resumed if it exists).", callback=_writable("--out", True))
    ],
    frames: Annotated[int, typer.Option(help="Frame stacks in total.")] = 20_000,
    env: Annotated[str, typer.Option(help="Scenario.")] = "highway",
    backend: Annotated[
        str, typer.Option(help="batched (fast, with the IDM target), envpool (drive[envpool]) or highway-env.")
    ] = "batched",
    policy: Annotated[str, typer.Option(help="random, idm, or a run folder trained on pixels.")] = "random",
    recipe: Annotated[
        str | None,
        typer.Option(help="Frames through this recipe's camera (driver); default: the pixels preset's."),
    ] = None,
    n_envs: Annotated[int, typer.Option(help="Envs stepped at once (batched and envpool backends).")] = 64,
    shard_size: Annotated[int, typer.Option(help="Frame stacks per shard.")] = 2048,
    seed: Seed = 0,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Write unlabeled pixel frame stacks in shards, with the ground truth beside them for probes."""
    from drive.perception.collect import collect_frames as collect

    store = collect(
        out=out,
        frames=frames,
        env=env,
        backend=backend,
        policy=policy,
        recipe=recipe,
        seed=seed,
        n_envs=n_envs,
        shard_size=shard_size,
        device=device,
        progress=not quiet,
    )
    typer.echo(f"frames: {store.count} in {len(store.manifest['shards'])} shards at {out}")


@app.command()
def pretrain(
    frames: Annotated[Path, typer.Option(help="Frame store from drive collect-frames.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: runs/pretrain-<method>-<time>).", callback=_writable("--out", True)),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="A preset from configs/pretrain/: a method (atc: augmented temporal contrast; spr: latent "
            "prediction with inverse dynamics, needs recorded actions) or a variant of one (atc-gap3)."
        ),
    ] = "atc",
    encoder: Annotated[str | None, typer.Option(help="nature, resnet or compact (default: the preset's).")] = None,
    features_dim: Annotated[
        int | None, typer.Option(help="Encoder output size.", callback=_in_range("--features-dim", 1))
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the frames.", callback=_in_range("--epochs", 1))
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Pairs per batch (ATC: the contrastive negatives).", callback=_in_range("--batch-size", 2)),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate, above 0.", callback=_positive("--lr"))] = None,
    gap: Annotated[
        int | None, typer.Option(help="Policy steps between the two stacks of a pair.", callback=_in_range("--gap", 1))
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value for any preset key (momentum=0.05, inverse_weight=0.5); repeatable."),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the encoder's initialisation, batch order and augmentations.",
            callback=_in_range("--seed", 0, MAX_SEED),
        ),
    ] = 0,
    device: Device = "auto",
    runs_dir: RunsDir = Path("runs"),
    quiet: Quiet = False,
) -> None:
    """Self-supervised pretraining of the CNN encoder; writes encoder.pt and TensorBoard logs.

    The preset (--method) gives every hyperparameter; --set overrides it, and the flags override both."""
    from drive.config import parse_set
    from drive.perception.pretrain import pretrain as run_pretrain

    flags = {"encoder": encoder, "features_dim": features_dim, "epochs": epochs, "batch_size": batch_size}
    flags |= {"lr": lr, "gap": gap}
    overrides = parse_set(set_ or []) | {k: v for k, v in flags.items() if v is not None}  # None: the preset's
    path = run_pretrain(
        frames=frames,
        method=method,
        out=out,
        runs_dir=runs_dir,
        seed=seed,
        device=device,
        progress=not quiet,
        overrides=overrides,
    )
    typer.echo(f"encoder: {path}")


@app.command()
def probe(
    frames: Annotated[Path, typer.Option(help="Frame store from drive collect-frames.")],
    encoder: Annotated[
        list[str],
        typer.Option(help="encoder.pt, a run folder, random (a Nature CNN), random:nature|resnet|compact; repeatable."),
    ],
    limit: Annotated[int, typer.Option(help="Frames used at most.", callback=_in_range("--limit", 1))] = 20_000,
    device: Device = "auto",
    runs_dir: RunsDir = Path("runs"),
    quiet: Quiet = False,
) -> None:
    """Linear probes of frozen encoders' features on held-out episodes, one column per encoder."""
    from drive.perception.probe_run import probe_encoders

    table, folder = probe_encoders(frames, encoder, limit=limit, device=device, runs_dir=runs_dir)
    typer.echo(table)
    typer.echo(f"probe: {folder / 'probe.json'}")


@app.command()
def sweep(
    config: Annotated[Path | None, typer.Option(help="Sweep YAML (see configs/sweeps/); flags override it.")] = None,
    env: Annotated[str | None, typer.Option(help="Scenario, as drive train-agent takes it.")] = None,
    recipe: Annotated[str | None, typer.Option(help="A recipe from configs/recipes/.")] = None,
    algo: Annotated[str | None, typer.Option(help="dqn or ppo.")] = None,
    obs: Annotated[str | None, typer.Option(help="pixels or kinematics.")] = None,
    backend: Annotated[str | None, typer.Option(help="highway-env, batched or envpool.")] = None,
    n_envs: Annotated[int | None, typer.Option(help="Parallel envs of each run.")] = None,
    timesteps: Annotated[int | None, typer.Option("--timesteps", "-n", help="Env steps of each run.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda, in every trial.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key.path=value for every trial; repeatable.")] = None,
    grid: Annotated[list[str] | None, typer.Option(help="key.path=v1,v2,...: the cross product; repeatable.")] = None,
    search: Annotated[list[str] | None, typer.Option(help="key.path=low:high[:log][:int]; repeatable.")] = None,
    trials: Annotated[int | None, typer.Option(help="Configurations a search samples (Optuna).")] = None,
    metric: Annotated[str | None, typer.Option(help="What a search optimises: eval/mean_return, ...")] = None,
    mode: Annotated[str | None, typer.Option(help="max or min.")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds of each configuration.")] = None,
    seed: Annotated[int | None, typer.Option(help="The first seed.", callback=_in_range("--seed", 0, MAX_SEED))] = None,
    name: Annotated[str | None, typer.Option(help="Names the folder runs/sweep-<name>-<time>.")] = None,
    address: Annotated[str | None, typer.Option(help="HOST:PORT or auto: join a running Ray cluster.")] = None,
    cpus_per_trial: Annotated[float | None, typer.Option(help="CPU cores each trial holds (default 1).")] = None,
    gpus_per_trial: Annotated[float | None, typer.Option(help="GPUs each trial holds (default 0).")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Trials at once (default: as cores allow).")] = None,
    resume: Annotated[Path | None, typer.Option(help="A stopped sweep's folder: run what is left.")] = None,
    runs_dir: RunsDir = Path("runs"),
    verbose: Annotated[bool, typer.Option(help="Ray's own status tables and the trials' output.")] = False,
    quiet: Quiet = False,
) -> None:
    """Many runs on Ray Tune: seeds, a grid or an Optuna search; writes runs/sweep-<name>-<time>/<trial>/."""
    from drive.sweep_run import prepare_sweep, resume_sweep_folder, run_prepared

    if resume is not None:
        given = [k for k, v in locals().items() if v not in (None, False, []) and k in _SWEEP_SPEC_OPTIONS]
        if given:
            option = "--" + given[0].rstrip("_").replace("_", "-")
            raise DriveError(f"--resume continues the sweep's saved spec; drop {option}")
        folder, spec, finished = resume_sweep_folder(resume)
    else:
        values = {
            "name": name,
            "seeds": seeds,
            "seed": seed,
            "trials": trials,
            "metric": metric,
            "mode": mode,
            "cpus_per_trial": cpus_per_trial,
            "gpus_per_trial": gpus_per_trial,
            "max_concurrent": max_concurrent,
        }
        train = {
            "env": env,
            "recipe": recipe,
            "algo": algo,
            "obs": obs,
            "backend": backend,
            "n_envs": n_envs,
            "timesteps": timesteps,
            "device": device,
            "set": set_ or [],
        }
        folder, spec, finished = prepare_sweep(config, values, train, grid or [], search or [], address, runs_dir)
    code = run_prepared(folder, spec, finished, address, verbose, progress=not quiet, echo=typer.echo)
    if code:
        raise typer.Exit(code)


_SWEEP_SPEC_OPTIONS = (
    "config",
    "env",
    "recipe",
    "algo",
    "obs",
    "backend",
    "n_envs",
    "timesteps",
    "device",
    "set_",
    "grid",
    "search",
    "trials",
    "metric",
    "mode",
    "seeds",
    "seed",
    "name",
    "cpus_per_trial",
    "gpus_per_trial",
    "max_concurrent",
)


def _show_warning(message, category, filename, lineno, file=None, line=None, _show=warnings.showwarning):
    """An ``EngineWarning`` as one ``warning:`` line (no file or source line); any other warning as Python shows it."""
    if issubclass(category, EngineWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        _show(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: DriveError -> one line and exit code 2."""
    from drive.agents.training import TrainingInterrupted

    warnings.showwarning = _show_warning
    try:
        code = app(args=argv, standalone_mode=False)  # a verb's typer.Exit(code) comes back as its return value
    except DriveError as err:
        typer.echo(f"error: {err}", err=True)
        return 2
    except TrainingInterrupted as err:
        typer.echo(str(err), err=True)
        return 130
    except typer.Exit as done:
        return done.exit_code
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C before a run folder exists: nothing to save
        typer.echo("aborted", err=True)
        return 130
    except Exception as err:  # usage errors from the CLI library
        from typer._click.exceptions import ClickException

        if isinstance(err, ClickException):
            typer.echo(f"error: {err.format_message()}", err=True)
            return err.exit_code
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
