"""Every bad input of issue 9 thrown at the real ``drive`` command: exit code, message, traceback, leftovers.

    python benchmarks/bad_inputs.py [--out docs/bad_inputs.md]

Each command runs in a fresh empty folder (with a file named ``taken`` in it, for the "file in the way" rows);
"leftovers" are the files and folders the refused command made there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = [
    "train-agent --set env.config.lanes_count=0",
    "train-agent --set env.config.lanes_count=-1",
    "train-agent --set env.config.lanes_count=x",
    "train-agent --set env.config.vehicles_count=x",
    "train-agent --set env.config.policy_frequency=0",
    "train-agent --set env.config.duration=abc",
    "train-agent --set env.config.duration=-1",
    "train-agent --backend batched --set env.config.lanes_count=0",
    "train-agent --backend batched --set env.config.duration=-1",
    "train-agent --set env.config.observation.scaling=0",
    "train-agent --set env.config.observation.observation_shape=[224,8]",
    "train-agent --set env.config.observation.centering_position=[0.15,1.5]",
    "train-agent --set env.config.observation.type=Kinematics",
    "train-agent --obs kinematics --set env.config.observation.scaling=1",
    "train-agent --seed -1",
    "train-agent --seed 4294967296",
    "evaluate --policy idm --seed -1",
    "watch --policy idm --seed -1",
    "collect-frames --seed -1",
    "pretrain --frames f --seed -1",
    "train-agent --set train.save_freq=0",
    "train-agent --set train.eval_freq=-1",
    "train-agent --set algo.net_arch=[0]",
    "train-agent --set algo.net_arch=[a]",
    "train-agent --set algo.encoder.features_dim=0",
    "train-agent --algo ppo --set algo.hyperparams.batch_size=1",
    "train-agent --set algo.hyperparams.learning_rate=-1",
    "pretrain --frames f --features-dim 0",
    "pretrain --frames f --lr 0",
    "probe --frames f --encoder random --limit 0",
    "train-agent --runs-dir taken",
    "train-agent --runs-dir /proc/runs",
    "evaluate --policy idm --runs-dir /proc/runs",
    "watch --policy idm --out /proc/x.mp4",
    "watch --policy idm --out .",
    "bench --json /proc/bench.json",
    "pretrain --frames f --out /proc/p",
    "collect-frames --out taken/frames",
    "collect-frames --out /proc/frames",
    "collect-frames --out frames --env bogus --frames 8",
    "train-agent --device cuda",
    "train-agent --backend batched --device cuda",
    "evaluate --policy idm --device cuda",
    "watch --policy idm --device cuda",
    "collect-frames --device cuda",
    "pretrain --frames f --device cuda",
    "probe --frames f --encoder random --device cuda",
    "train-agent --set train.threads=-1",
    "sweep --grid algo.learnin=1,2",
    "sweep --grid algo.hyperparams.learnin=1,2",
    "sweep --grid algo.hyperparams.gamma=",
    "sweep --search algo.hyperparams.gamma=0.99:0.9 --trials 2",
    "sweep --search algo.hyperparams.gamma=0.9:0.99",
    "sweep --grid train.seed=1,2",
    "sweep --seeds 0",
    "sweep --address 127.0.0.1:1",
    "sweep --runs-dir /proc/runs",
    "sweep --resume nowhere",
    "train-agent --env merge --obs pixels --backend envpool",
    "train-agent --env merge --obs kinematics --backend envpool --set env.config.lanes_count=2",
    "evaluate --policy idm --obs kinematics --backend envpool",
    "watch --policy idm --backend envpool",
    "watch --policy random --env merge --backend envpool",
    "collect-frames --policy idm --backend envpool --out f",
    "bench --engines nope",
    "train-agent --recipe driver --set algo.encoder.members=0",
    "train-agent --algo dqn --set algo.encoder.members=2",
    "train-agent --recipe driver --set recipe.student.gap_weight=-1",
    "train-agent --recipe driver --set recipe.student.lr_end=2",
    "train-agent --recipe driver --set recipe.student.precision=half",
    "train-agent --recipe driver --set recipe.student.split=true",
    "train-agent --recipe driver --set algo.encoder.members=3 --set recipe.student.split=true"
    " --set recipe.student.gap_weight=1",
    "train-agent --recipe driver --set recipe.refit.members=1",
    "train-agent --recipe driver --set recipe.refit.members=3 --set env.n_envs=2",
    "train-agent --recipe driver --set recipe.student.select=vote --set recipe.student.vote_rounds=8",
    "train-agent --recipe driver --set recipe.student.select=vote --set recipe.student.vote_rounds=1",
]


def run(case: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "taken").write_text("a user's file")
        before = set(Path(folder).rglob("*"))
        done = subprocess.run(
            [sys.executable, "-m", "drive.cli", *case.split(), "-q"], cwd=folder, capture_output=True, text=True
        )
        left = sorted(str(p.relative_to(folder)) for p in set(Path(folder).rglob("*")) - before)
    err = done.stderr.strip().splitlines()
    return {
        "case": case,
        "code": done.returncode,
        "message": err[-1] if err else "",
        "lines": len(err),
        "traceback": "Traceback" in done.stderr,
        "leftovers": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = ["| command | exit | lines | traceback | leftovers | message |", "|---|---|---|---|---|---|"]
    for case in CASES:
        r = run(case)
        left = ", ".join(r["leftovers"]) or "none"
        rows.append(
            f"| `drive {case}` | {r['code']} | {r['lines']} | {'yes' if r['traceback'] else 'no'} | {left} | "
            f"{r['message'].replace('|', '/')} |"
        )
        print(rows[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
