"""How well does each way of training drive? The driver recipe against the anchors, judged on highway-env.

For each training seed: the driver recipe (`drive train-agent --recipe driver`), and the anchors trained for the
same wall-clock budget (stopped by SIGTERM, which checkpoints the run): DQN from pixels as highway-env's
``scripts/sb3_highway_dqn_cnn.py`` configures it (our ``dqn-pixels`` preset is that script's configuration,
with its 100k-step exploration schedule) and the ``ppo-pixels`` preset, both on highway-env. Then every final
policy and the IDM, always-SLOWER and random drivers play the same evaluation episodes on highway-env's
``highway-fast-v0`` (default config, seeds from 100,000: neither training nor the in-training evaluation
uses them), and again on ``lanes_count: 4, vehicles_density: 1.5``. Checkpoints along the way give the
learning curves (return and crash rate against minutes).

    python benchmarks/driving_quality.py --out runs/driving-quality            # everything, a few hours
    python benchmarks/driving_quality.py --seeds 0 --anchor-minutes 5          # a shorter look
    python benchmarks/driving_quality.py --reuse-anchors docs/driving_quality.json  # the recipe only

A seed whose run folder under ``--out/driver-<seed>/`` is finished is not retrained: its entry in ``--out``'s
``results.json`` is kept if an earlier invocation judged it (so seeds can be added one invocation at a time, each
timed as it trained), else it is judged again (its minutes then are the rounds' alone, from its metrics.json).

Writes ``results.json``, ``table.md`` and ``curves.png`` into ``--out`` (copy the last two into ``docs/``).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from drive.agents.baselines import IDMPolicy, RandomPolicy
from drive.agents.evaluation import evaluate, summarize
from drive.agents.policies import AgentPolicy, load_model
from drive.cores import usable_cores
from drive.envs import make_env
from drive.runs import latest_checkpoint, read_run_config

EVAL_SEED = 100_000
DENSE = {"lanes_count": 4, "vehicles_density": 1.5}


class AlwaysSlower:
    name, values_label = "always-slower", ""

    def __init__(self, env, seed=None):
        pass

    def act(self, obs):
        return 4  # SLOWER

    def action_values(self, obs):
        return None


PPO_PRESET_ONLY = ["--backend", "highway-env", "--n-envs", "4", "--set", "algo.encoder.name=nature"]
PPO_PRESET_ONLY += ["--set", "algo.encoder.features_dim=512"]


def train(args, label: str, cli: list[str], seconds: float | None, out: Path) -> tuple[Path, float]:
    """Run ``drive train-agent`` into ``out/<label>``; SIGTERM at ``seconds`` (it checkpoints and stops)."""
    runs = out / label
    # Every core, named: with train.threads auto, a run takes the cores free when it starts, and this process may
    # still be busy then (a seed-1 recipe that started as the seed-0 judging ended ran on one thread, 1.8x slower).
    cli = [*cli, "--set", f"train.threads={usable_cores()}"]
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "drive.cli", "train-agent", *cli, "--runs-dir", str(runs), "-q"])
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        process.wait()
    elapsed = time.perf_counter() - start
    (run,) = runs.iterdir()
    return run, elapsed


def policy_of(run: Path, algo: str, checkpoint: Path | None = None):
    path = checkpoint or (run / "model.zip" if (run / "model.zip").is_file() else latest_checkpoint(run)[0])
    return AgentPolicy(load_model(path, algo, device="cpu"))


def camera_of(run: Path) -> dict:
    """The run's pixels camera (``env.config.observation``), which its policies must see through; the rest of
    the judging config stays highway-env's."""
    camera = read_run_config(run).env.config.get("observation")
    return {"observation": camera} if camera else {}


def judge(
    policy_or_class, episodes: int, config: dict | None = None, env_name: str = "highway", obs=None, camera=None
) -> dict:
    """A policy (or a baseline's class) on ``episodes`` episodes of highway-env from ``EVAL_SEED``; ``obs``
    defaults to pixels for a trained policy, kinematics for a baseline; ``camera``: a run's (``camera_of``)."""
    obs = obs or ("pixels" if isinstance(policy_or_class, AgentPolicy) else "kinematics")
    env = make_env(env_name, obs, config={**(config or {}), **(camera or {})})
    policy = policy_or_class if isinstance(policy_or_class, AgentPolicy) else policy_or_class(env, seed=EVAL_SEED)
    summary = summarize(evaluate(env, policy, episodes, EVAL_SEED))
    env.close()
    return {k: summary[k] for k in ("mean_return", "crash_rate", "mean_speed", "episodes")}


def recipe_curve(run: Path, episodes: int) -> list[dict]:
    rounds = json.loads((run / "student" / "rounds.json").read_text())
    curve, camera = [], camera_of(run)
    for record in rounds:
        checkpoint = run / "student" / f"round_{record['round']:02d}.zip"
        point = judge(policy_of(run, "ppo", checkpoint), episodes, camera=camera)
        curve.append({**point, "minutes": record["seconds_total"] / 60, "env_steps": record["env_steps"]})
    refit = run / "student" / "refit.json"
    if refit.is_file():  # recipe.refit: the fresh ensemble after the last round, on the same data
        record = json.loads(refit.read_text())
        point = judge(policy_of(run, "ppo", run / "student" / "refit.zip"), episodes, camera=camera)
        curve.append({**point, "minutes": record["seconds_total"] / 60, "env_steps": rounds[-1]["env_steps"]})
    chosen = run / "student" / "chosen.json"
    if chosen.is_file() and "vote" in json.loads(chosen.read_text()):  # select: vote, model.zip is the committee
        point = judge(policy_of(run, "ppo", run / "model.zip"), episodes, camera=camera)
        last = curve[-1]  # assembled, not trained: it ends where the stages it votes over ended
        curve.append({**point, "minutes": last["minutes"], "env_steps": last["env_steps"], "vote": True})
    return curve


def anchor_curve(run: Path, algo: str, started: float, episodes: int, points: int = 4) -> list[dict]:
    """A few of the anchor's checkpoints, at the minute their file was written."""
    found = sorted((run / "checkpoints").glob("model_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1]))
    chosen = [found[i] for i in sorted({round(j * (len(found) - 1) / max(points - 1, 1)) for j in range(points)})]
    curve = []
    for checkpoint in chosen if found else []:
        point = judge(policy_of(run, algo, checkpoint), episodes)
        steps = int(checkpoint.stem.split("_")[1])
        curve.append({**point, "minutes": (checkpoint.stat().st_mtime - started) / 60, "env_steps": steps})
    return curve


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def table(results: dict) -> str:
    lines = [
        "| driver | seeds | minutes | env steps | return | crash rate | speed (m/s) "
        "| dense: return | crash rate | speed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():

        def get(split: str, key: str, runs: list[dict] = runs) -> list[float]:
            return [r[split][key] for r in runs]

        minutes = [r.get("minutes", 0.0) for r in runs]
        steps = [r.get("env_steps", 0) for r in runs]
        lines.append(
            f"| {name} | {len(runs)} | {np.mean(minutes):.1f} | {np.mean(steps):,.0f} | "
            f"{mean_sd(get('default', 'mean_return'))} | {mean_sd(get('default', 'crash_rate'))} | "
            f"{mean_sd(get('default', 'mean_speed'))} | {mean_sd(get('dense', 'mean_return'))} | "
            f"{mean_sd(get('dense', 'crash_rate'))} | {mean_sd(get('dense', 'mean_speed'))} |"
        )
    return "\n".join(lines) + "\n"


def plot(curves: dict, baselines: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_return, ax_crash) = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in curves.items():
        for i, curve in enumerate(runs):
            minutes = [p["minutes"] for p in curve]
            kw = {"label": name if i == 0 else None, "color": f"C{list(curves).index(name)}", "marker": "o"}
            ax_return.plot(minutes, [p["mean_return"] for p in curve], **kw)
            ax_crash.plot(minutes, [p["crash_rate"] for p in curve], **kw)
    for k, (name, summary) in enumerate(baselines.items()):
        style = {"color": f"C{len(curves) + k}", "linestyle": "--", "label": name}
        ax_return.axhline(summary["default"]["mean_return"], **style)
        ax_crash.axhline(summary["default"]["crash_rate"], **style)
    ax_return.set(xlabel="wall-clock minutes (2 CPU cores)", ylabel="evaluation return", title="return")
    ax_crash.set(xlabel="wall-clock minutes (2 CPU cores)", ylabel="crash rate", title="crash rate")
    ax_return.legend(fontsize=8)
    fig.suptitle("highway-fast-v0 from pixels, evaluated on highway-env (unseen seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/driving-quality"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per policy and config")
    parser.add_argument("--dense-episodes", type=int, default=None, help="on the denser traffic (default: --episodes)")
    parser.add_argument("--curve-episodes", type=int, default=20, help="episodes per learning-curve point")
    parser.add_argument("--report-only", action="store_true", help="table and curves from --out's results.json")
    parser.add_argument("--anchor-minutes", type=float, default=None, help="default: the recipe's mean time")
    parser.add_argument("--anchor-seeds", type=int, nargs="*", default=None, help="default: --seeds")
    parser.add_argument("--recipe-set", nargs="*", default=[], help="--set overrides for the recipe")
    parser.add_argument(
        "--reuse-anchors",
        type=Path,
        default=None,
        help="a results.json whose anchors and baselines to keep (same evaluation seeds), training only the recipe",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        saved = json.loads((args.out / "results.json").read_text())
        report(args.out, saved["results"], saved["curves"])
        return
    dense_episodes = args.dense_episodes or args.episodes
    results: dict[str, list[dict]] = {}
    curves: dict[str, list[list[dict]]] = {}

    def record(name: str, entry: dict, curve: list[dict]) -> None:
        results.setdefault(name, []).append(entry)
        curves.setdefault(name, []).append(curve)
        (args.out / "results.json").write_text(json.dumps({"results": results, "curves": curves}, indent=2))

    sets = [a for s in args.recipe_set for a in ("--set", s)]
    judged = _judged_recipe_runs(args.out)
    for seed in args.seeds:
        finished = list((args.out / f"driver-{seed}").glob("*/metrics.json"))
        if finished and str(finished[0].parent) in judged:  # trained and judged by an earlier invocation: kept
            record("driver recipe", *judged[str(finished[0].parent)])
            continue
        if finished:  # trained by an earlier invocation: judged again, not retrained
            run = finished[0].parent
            elapsed = json.loads(finished[0].read_text())["train_seconds"]  # the rounds only, without evaluation
        else:
            run, elapsed = train(
                args, f"driver-{seed}", ["--recipe", "driver", "--seed", str(seed), *sets], None, args.out
            )
        rounds = json.loads((run / "student" / "rounds.json").read_text())
        policy = policy_of(run, "ppo")
        entry = {"run": str(run), "minutes": elapsed / 60, "env_steps": rounds[-1]["env_steps"]}  # the whole command
        camera = camera_of(run)
        entry.update(
            default=judge(policy, args.episodes, camera=camera),
            dense=judge(policy, dense_episodes, DENSE, camera=camera),
        )
        record("driver recipe", entry, recipe_curve(run, args.curve_episodes))

    if args.reuse_anchors is not None:
        earlier = json.loads(args.reuse_anchors.read_text())
        for name, entries in earlier["results"].items():
            if name != "driver recipe":
                results[name] = entries
                if name in earlier["curves"]:
                    curves[name] = earlier["curves"][name]
        (args.out / "results.json").write_text(json.dumps({"results": results, "curves": curves}, indent=2))
        report(args.out, results, curves)
        return
    budget = 60 * (args.anchor_minutes or np.mean([r["minutes"] for r in results["driver recipe"]]))
    anchors = {
        "DQN as sb3_highway_dqn_cnn.py (dqn-pixels preset)": ("dqn", ["--algo", "dqn", "--timesteps", "100000"]),
        # the algorithm's preset alone: highway's own PPO settings (the quickstart's batched backend) left out
        "PPO, ppo-pixels preset": ("ppo", ["--algo", "ppo", "--timesteps", "1000000", *PPO_PRESET_ONLY]),
    }
    periodic = ["--set", "train.eval_freq=0", "--set", "train.save_freq=2000", "--set", "train.eval_episodes=1"]
    for name, (algo, cli) in anchors.items():
        for seed in args.anchor_seeds if args.anchor_seeds is not None else args.seeds:
            label = f"{algo}-{seed}"
            started = time.time()
            command = [*cli, "--obs", "pixels", "--seed", str(seed), *periodic]
            run, elapsed = train(args, label, command, budget, args.out)
            _, _, steps = latest_checkpoint(run)
            policy = policy_of(run, algo)
            entry = {"run": str(run), "minutes": elapsed / 60, "env_steps": steps}
            entry.update(default=judge(policy, args.episodes), dense=judge(policy, dense_episodes, DENSE))
            record(name, entry, anchor_curve(run, algo, started, args.curve_episodes))

    baselines = {"IDM/MOBIL": IDMPolicy, "always SLOWER": AlwaysSlower, "random": RandomPolicy}
    for name, cls in baselines.items():
        entry = {"default": judge(cls, args.episodes), "dense": judge(cls, dense_episodes, DENSE)}
        results[name] = [entry]
    (args.out / "results.json").write_text(json.dumps({"results": results, "curves": curves}, indent=2))
    report(args.out, results, curves)
    print(f"budget per anchor {budget / 60:.1f} min")


def _judged_recipe_runs(out: Path) -> dict[str, tuple[dict, list[dict]]]:
    """The recipe's entries (and curves) that an earlier invocation wrote into ``out/results.json``, by run folder:
    seeds can be added one invocation at a time, each timed as it was trained (the whole command)."""
    path = out / "results.json"
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    entries, curves = saved["results"].get("driver recipe", []), saved["curves"].get("driver recipe", [])
    return {e["run"]: (e, c) for e, c in zip(entries, curves, strict=True)}


def report(out: Path, results: dict, curves: dict) -> None:
    (out / "table.md").write_text(table(results))
    baselines = {k: v[0] for k, v in results.items() if k not in curves}
    plot(curves, baselines, out / "curves.png")
    print(table(results))
    print(f"wrote {out / 'table.md'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
