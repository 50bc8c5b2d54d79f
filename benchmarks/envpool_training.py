"""Training on EnvPool's port against training on highway-env: the same agent, the same env steps, judged on
highway-env.

For one scenario (default merge, kinematics), ``drive train-agent`` twice with the same algorithm, seed, envs and
env steps, once per backend; each run's wall-clock is the whole command. Both final policies then play the same
``--episodes`` episodes of highway-env's own scenario (seeds from 100,000, which no training uses), and so do the
random policy and, where the scenario has one, the IDM driver, for scale.

    python benchmarks/envpool_training.py --out docs/envpool_training.md
    python benchmarks/envpool_training.py --env intersection --timesteps 20000 --out /tmp/look.md

Run it with nothing else on the machine: the minutes are the point.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from driving_quality import EVAL_SEED, judge
from envpool_agreement import IDM_SCENARIOS

from drive.agents.baselines import IDMPolicy, RandomPolicy
from drive.agents.policies import AgentPolicy, load_model


def train(args, backend: str) -> tuple[Path, float]:
    runs = args.runs / backend
    cli = ["train-agent", "--env", args.env, "--algo", args.algo, "--obs", "kinematics", "--backend", backend]
    cli += ["--n-envs", str(args.n_envs), "--timesteps", str(args.timesteps), "--seed", str(args.seed)]
    cli += ["--runs-dir", str(runs), "--quiet", *(a for s in args.set for a in ("--set", s))]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "drive.cli", *cli], check=True)
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="merge")
    parser.add_argument("--algo", default="ppo", choices=["ppo", "dqn"])
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="--set overrides for both runs")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--runs", type=Path, default=Path("runs/envpool-training"))
    parser.add_argument("--out", type=Path, default=Path("docs/envpool_training.md"))
    args = parser.parse_args()
    rows = []
    for backend in ("envpool", "highway-env"):
        run, seconds = train(args, backend)
        model = load_model(run / "model.zip", args.algo, device="cpu")
        rows.append(
            (
                f"{args.algo.upper()} trained on {backend}",
                seconds / 60,
                judge(AgentPolicy(model), args.episodes, env_name=args.env, obs="kinematics"),
            )
        )
        print(rows[-1], flush=True)
    baselines = {"random": RandomPolicy, **({"IDM/MOBIL": IDMPolicy} if args.env in IDM_SCENARIOS else {})}
    for name, cls in baselines.items():
        rows.append((name, 0.0, judge(cls, args.episodes, env_name=args.env)))
    command = shlex.join(["python", "benchmarks/envpool_training.py", *sys.argv[1:]])
    lines = [
        f"`{command}` ({args.timesteps:,} env steps, {args.n_envs} envs, seed {args.seed}; {args.episodes} episodes of "
        f"highway-env's {args.env} from seed {EVAL_SEED}, kinematics preset):",
        "",
        "| policy | minutes (whole command) | return | crash rate | speed (m/s) |",
        "|---|---|---|---|---|",
    ]
    for name, minutes, s in rows:
        lines.append(
            f"| {name} | {minutes:.1f} | {s['mean_return']:.2f} | {s['crash_rate']:.2f} | {s['mean_speed']:.1f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
