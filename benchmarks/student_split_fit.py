"""Fresh students fitted on disjoint shares of one driver run's DAgger data: do students of different data make
different mistakes? Each student gets the states of every ``parts``-th env (env i's states go to student
i mod parts), new weights and ``--updates`` gradient steps with the recipe's loss; the checkpoints are saved for
``benchmarks/student_ensemble.py`` and ``drive evaluate --checkpoint``.

    python benchmarks/student_split_fit.py RUN --n-envs 1024 --parts 3 --updates 1600 --out /tmp/split
    python benchmarks/student_ensemble.py /tmp/split/part_0.zip /tmp/split/part_1.zip /tmp/split/part_2.zip

Measured this way (docs/driver.md, "Session of 2026-11-30 (late)"): three thirds of a 1,024-env run's data, 1,600
updates each: alone 3.0, 0.9 and 2.4 % crashes on 1,024 batched episodes, together 0.8 %.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from drive.agents.algos import build_model
from drive.agents.dagger import Dataset, fit, member_shares
from drive.agents.recipe import read_round_data, read_rounds
from drive.config import resolve
from drive.envs import make_venv


def share(run: Path, n_envs: int, parts: int, part: int) -> Dataset:
    """The states of envs ``part``, ``part + parts``, ... from every round's data (rows are step-major). Read again
    for each part: one part's frames in memory at a time, not the whole run's."""
    dataset = Dataset.empty()
    for k in range(len(read_rounds(run))):
        frames, values, gaps = read_round_data(run, k)
        keep = member_shares(len(values), n_envs, parts)[part].numpy()  # the recipe's rule (recipe.student.split)
        dataset.add(frames[keep], values[keep], None if gaps is None else gaps[keep])
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a --recipe driver run folder")
    parser.add_argument("--n-envs", type=int, required=True, help="the run's env.n_envs (its data's row stride)")
    parser.add_argument("--parts", type=int, default=3)
    parser.add_argument("--updates", type=int, default=1600, help="gradient steps per student")
    parser.add_argument("--out", type=Path, required=True, help="folder for part_<i>.zip")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    venv = make_venv("highway", "pixels", 2, backend="batched")  # the students' spaces; it never steps
    for part in range(args.parts):
        config = resolve("highway", recipe="driver", sets=["env.n_envs=2", f"train.seed={100 + part}"])
        dataset = share(args.run, args.n_envs, args.parts, part)
        model = build_model(config, venv, device="cpu")
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(7 + part)
        fitted = fit(model.policy, dataset, config.recipe.student, generator, args.updates)
        model.save(args.out / f"part_{part}.zip")
        print(f"part {part}: {len(dataset)} states, {fitted}, {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
