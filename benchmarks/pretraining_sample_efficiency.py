"""Does self-supervised pretraining make the agents learn from fewer env steps?

For each algorithm (PPO, DQN; pixels, highway) and seed, trains three agents with the same budget on the
batched backend, evaluated on highway-env (fixed evaluation seeds) every ``--eval-freq`` steps:

    scratch    the CNN learnt end to end from a random initialisation
    frozen     the pretrained encoder, kept fixed (only the heads learn)
    finetuned  the pretrained encoder, trained on with the heads

Learning curves land in TensorBoard under one log dir (``<logdir>/<algo>/<variant>/seed<k>``); the summary
table gives, per algorithm and variant, the mean over seeds of the env steps to the first evaluation whose mean
return reaches ``--target`` (runs that never reach it count as the budget and are flagged), the final return and
the final crash rate. For scale: a random policy returns about 8.6 and IDM/MOBIL 22.0 (README baselines), and
always braking (SLOWER) returns 20.9 without a crash on these evaluation seeds: the cautious policy short runs
tend to settle on. The default target, 15, about halfway from random to IDM, reads "has learnt not to crash".
Without ``--encoder`` it first collects frames and pretrains one (``drive collect-frames`` and ``drive pretrain``
with the options below).

    python benchmarks/pretraining_sample_efficiency.py --logdir runs/sample-efficiency
    tensorboard --logdir runs/sample-efficiency
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from drive.agents.training import train
from drive.config import resolve
from drive.perception.checkpoint import load_encoder

VARIANTS = {"scratch": None, "frozen": True, "finetuned": False}  # variant -> freeze (None: no pretrained encoder)


def pretrained_encoder(args) -> Path:
    """The log dir's encoder if pretraining finished there (the runs already made used it), else pretrain one."""
    from drive.perception.checkpoint import load_encoder
    from drive.perception.collect import collect_frames
    from drive.perception.pretrain import pretrain

    done = args.logdir / "pretrain" / "encoder.pt"
    if done.is_file() and load_encoder(done)[1]["epochs"] == args.pretrain_epochs:
        return done
    frames = args.logdir / "frames"
    collect_frames(out=frames, frames=args.frames, policy="random", backend="batched", progress=True)
    return pretrain(frames=frames, out=args.logdir / "pretrain", epochs=args.pretrain_epochs, lr=args.pretrain_lr)


def run_one(algo: str, variant: str, seed: int, encoder: Path, args) -> Path:
    freeze = VARIANTS[variant]
    flags = {
        "env": {"backend": "batched", "n_envs": args.n_envs[algo]},
        "train": {
            "timesteps": args.timesteps[algo],
            "seed": seed,
            "eval_freq": args.eval_freq[algo],
            "eval_episodes": args.eval_episodes,
            "save_freq": args.timesteps[algo],
            "video_steps": 0,
            "device": args.device,
        },
    }
    if freeze is not None:
        flags["algo"] = {"encoder": {"pretrained": str(encoder), "freeze": freeze}}
    else:  # scratch: the pretrained encoder's architecture, not the scenario's default, so that only the start differs
        metadata = load_encoder(encoder)[1]
        flags["algo"] = {"encoder": {"name": metadata["encoder"], "features_dim": metadata["features_dim"]}}
    config = resolve("highway", algo, "pixels", flags=flags)
    folder = args.logdir / algo / variant
    run = train(config, runs_root=folder, progress=not args.quiet)
    return run.rename(folder / f"seed{seed}")


def curve(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean return, crash rate) at each evaluation of a run, from its TensorBoard events."""
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0}).Reload()
    returns, crashes = events.Scalars("eval/mean_return"), events.Scalars("eval/crash_rate")
    values = [np.array([e.value for e in scalars]) for scalars in (returns, crashes)]
    return np.array([e.step for e in returns]), *values


def summarize(runs: list[Path], target: float, budget: int) -> dict:
    reached, final, crash = [], [], []
    for run in runs:
        steps, returns, crashes = curve(run)
        hit = np.flatnonzero(returns >= target)
        reached.append(float(steps[hit[0]]) if len(hit) else None)
        final.append(float(returns[-1]))
        crash.append(float(crashes[-1]))
    to_target = [s if s is not None else budget for s in reached]
    return {
        "seeds": len(runs),
        "steps_to_target": float(np.mean(to_target)),
        "reached": sum(s is not None for s in reached),
        "final_return": float(np.mean(final)),
        "final_return_sd": float(np.std(final, ddof=1)) if len(final) > 1 else 0.0,
        "final_crash_rate": float(np.mean(crash)),
    }


def table(summary: dict, target: float) -> str:
    lines = [
        f"| algo | variant | env steps to eval return >= {target:g} (seeds that reached it) | vs scratch "
        "| final return (sd over seeds) | final crash rate |",
        "|---|---|---|---|---|---|",
    ]
    for (algo, variant), s in summary.items():
        ratio = s["steps_to_target"] / summary[(algo, "scratch")]["steps_to_target"]
        lines.append(
            f"| {algo} | {variant} | {s['steps_to_target']:,.0f} ({s['reached']}/{s['seeds']}) | {ratio:.2f}x "
            f"| {s['final_return']:.2f} ({s['final_return_sd']:.2f}) | {s['final_crash_rate']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", type=Path, default=Path("runs/sample-efficiency"))
    parser.add_argument("--encoder", type=Path, help="a pretrained encoder.pt; default: collect frames and pretrain")
    parser.add_argument("--frames", type=int, default=20000, help="frame stacks collected for pretraining")
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--pretrain-lr", type=float, default=3e-4)
    parser.add_argument("--algos", nargs="+", default=["ppo", "dqn"], choices=["ppo", "dqn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ppo-timesteps", type=int, default=15000)
    parser.add_argument("--dqn-timesteps", type=int, default=15000)
    parser.add_argument("--ppo-n-envs", type=int, default=4)
    parser.add_argument("--dqn-n-envs", type=int, default=4)
    parser.add_argument("--evals", type=int, default=15, help="evaluations per run, evenly spaced")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--target", type=float, default=15.0, help="evaluation return counted as learnt (halfway from random to IDM)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    args.timesteps = {"ppo": args.ppo_timesteps, "dqn": args.dqn_timesteps}
    args.n_envs = {"ppo": args.ppo_n_envs, "dqn": args.dqn_n_envs}
    args.eval_freq = {algo: steps // args.evals for algo, steps in args.timesteps.items()}
    encoder = args.encoder or pretrained_encoder(args)
    summary = {}
    for algo in args.algos:
        for variant in VARIANTS:
            runs = []
            for seed in args.seeds:
                done = args.logdir / algo / variant / f"seed{seed}"
                runs.append(done if (done / "metrics.json").exists() else run_one(algo, variant, seed, encoder, args))
                print(f"{algo} {variant} seed {seed}: final eval {curve(runs[-1])[1][-1]:.2f}", flush=True)
            summary[(algo, variant)] = summarize(runs, args.target, args.timesteps[algo])
    print(table(summary, args.target))
    records = [{"algo": a, "variant": v, **s} for (a, v), s in summary.items()]
    (args.logdir / "summary.json").write_text(json.dumps({"target": args.target, "rows": records}, indent=2))


if __name__ == "__main__":
    main()
