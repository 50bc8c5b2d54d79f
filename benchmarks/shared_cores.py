"""Torch threads under shared cores: a short pixel-DQN run (the quickstart's setup, fewer steps) alone and beside
another training that keeps both cores busy, with ``train.threads`` 2 (torch's default here) and 0 (auto: the
cores free when the run starts). Wall-clock and CPU time of the short run; run it with nothing else on the cores.

    python benchmarks/shared_cores.py [--timesteps 800] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

BUSY = [  # the other process: PPO from pixels on the batched simulator, 2 threads, long enough to outlast us
    "train-agent", "--env", "highway", "--algo", "ppo", "--backend", "batched", "--n-envs", "64",
    "--timesteps", "10000000", "--set", "train.threads=2", "--set", "train.eval_freq=0", "--quiet",
]  # fmt: skip


def short_run(timesteps: int, threads: int, runs: str) -> dict:
    command = [sys.executable, "-m", "drive.cli", "train-agent", "--env", "highway", "--algo", "dqn"]
    command += ["--timesteps", str(timesteps)]
    command += ["--set", "train.eval_episodes=2", "--set", f"train.threads={threads}", "--quiet", "--runs-dir", runs]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"threads": threads, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=800)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as runs:
        for threads in (2, 0):
            results.append({"beside": "nothing", **short_run(args.timesteps, threads, runs)})
        busy = subprocess.Popen([sys.executable, "-m", "drive.cli", *BUSY, "--runs-dir", runs])
        try:
            time.sleep(30)  # past its start-up, into steady training
            for threads in (2, 0):
                results.append({"beside": "a 2-thread training", **short_run(args.timesteps, threads, runs)})
        finally:
            busy.terminate()
            busy.wait()
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
