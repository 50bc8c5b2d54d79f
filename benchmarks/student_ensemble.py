"""Students acting together: several pixel PPO checkpoints choose by the sum of their log-probabilities, on the
batched simulator, one episode per env (the same episodes as ``drive evaluate --backend batched --seed S``).

    python benchmarks/student_ensemble.py R0/student/round_04.zip R1/student/round_04.zip --episodes 1024 --seed 500000

Measured this way (docs/driver.md, "Session of 2026-11-30 (evening)"): the three benchmark seeds' students crash
5 to 6 % of 1,024 episodes alone and 1.3 % together, which is what ``algo.encoder.members`` builds into one policy.
"""

from __future__ import annotations

import argparse
import json

import torch

from drive.agents.dagger import policy_logits
from drive.agents.evaluation import evaluate_batched, summarize
from drive.agents.policies import load_model, policy_source
from drive.envs import make_venv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="model .zip files of pixel PPO students")
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=500_000)
    args = parser.parse_args()
    models = [load_model(path, "ppo", device="cpu") for path in args.checkpoints]
    camera = policy_source(checkpoint=args.checkpoints[0], algo="ppo").env_config  # the first one's run's
    venv = make_venv("highway", "pixels", args.episodes, backend="batched", device="cpu", config=camera)

    def act(obs):
        with torch.inference_mode():
            frames = torch.from_numpy(obs)
            votes = sum(torch.log_softmax(policy_logits(m.policy, frames), -1) for m in models)
            return votes.argmax(-1).numpy()

    summary = summarize(evaluate_batched(venv, act, args.episodes, args.seed))
    keys = ("episodes", "mean_return", "crash_rate", "mean_speed")
    print(json.dumps({"checkpoints": args.checkpoints, **{k: summary[k] for k in keys}}, indent=2))


if __name__ == "__main__":
    main()
