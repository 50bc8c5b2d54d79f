"""Does self-supervised pretraining make the driver learn faster? The driver recipe from a pretrained encoder
against the same recipe from scratch, judged on highway-env.

Variants, each ``drive train-agent --env highway --recipe driver --seed S`` with the same budgets:

    scratch         the recipe as it is: a random compact encoder, every fitted batch randomly shifted (DrQ)
    scratch-noaug   the same without the shift (``recipe.student.shift=0``)
    frozen          the pretrained encoder, kept fixed (``--encoder E --freeze-encoder``): only the heads learn
    finetuned       the pretrained encoder, trained on with the heads (``--encoder E``)

The pretrained encoder comes from ``--encoder`` (and ``--encoder-seconds``, what making it took), or the script
collects ``--frames`` frame stacks through the recipe's camera on the batched backend with ``--frames-policy`` and
pretrains with the ``--method`` preset (``configs/pretrain/``), once, into
``--logdir``; that wall-clock is added to the pretrained variants' minutes.

Per variant: the env steps of the first round whose student, alone on the recipe's validation traffic (batched),
meets the driver bar (crash rate at most ``--max-crash``, return at least ``--min-return``), or the budget when no
round does (flagged); the minutes its rounds' collection and fitting took (pretraining added); and the final
student on highway-env's ``highway-fast-v0`` (``--episodes`` episodes from seed 100,000, which no training uses;
``benchmarks/driving_quality.py``'s judge).

    python benchmarks/pretraining_driver.py --logdir runs/pretraining-driver --seeds 0 1 2
    python benchmarks/pretraining_driver.py --seeds 0 --variants scratch finetuned --recipe-set recipe.student.rounds=3

A variant's finished run under ``--logdir/<variant>/seed<S>/`` is judged again, not retrained; a stopped one is
resumed (``drive train-agent --resume``); both keep the config they were started with, whatever ``--recipe-set``
says now. ``results.json`` and ``table.md`` keep the variants and seeds that earlier invocations measured into the
same ``--logdir``; ``table.md`` also gives each round's student on the validation traffic, per variant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "scratch": [],
    "scratch-noaug": ["--set", "recipe.student.shift=0"],
    "frozen": ["--freeze-encoder"],  # and --encoder
    "finetuned": [],  # and --encoder
}
PRETRAINED = ("frozen", "finetuned")


def steps_to_bar(rounds: list[dict], max_crash: float, min_return: float) -> int | None:
    """Env steps of the first round whose student alone met the bar on the validation traffic, or None."""
    for record in rounds:
        alone = record.get("alone", {})
        if alone.get("crash_rate", 1.0) <= max_crash and alone.get("mean_return", -np.inf) >= min_return:
            return int(record["env_steps"])
    return None


def pretrained_encoder(args) -> tuple[Path, float]:
    """``--encoder``, or collect frames through the recipe's camera and pretrain once into the log dir; and the
    seconds that took (``--encoder-seconds`` for a given encoder, the recorded seconds when an earlier invocation
    made it)."""
    if args.encoder is not None:
        return args.encoder, args.encoder_seconds
    folder = args.logdir / "pretrain"
    record = folder / "seconds.json"
    if record.is_file():
        return folder / "encoder.pt", json.loads(record.read_text())["seconds"]
    from drive.perception.collect import collect_frames
    from drive.perception.pretrain import pretrain

    start = time.perf_counter()
    frames = args.logdir / "frames"
    collect_frames(
        out=frames, frames=args.frames, policy=args.frames_policy, recipe="driver", backend="batched", progress=True
    )
    encoder = pretrain(frames=frames, out=folder, method=args.method)
    seconds = time.perf_counter() - start
    record.write_text(json.dumps({"seconds": seconds, "frames": args.frames, "method": args.method}) + "\n")
    return encoder, seconds


def train(args, variant: str, seed: int, encoder: Path) -> tuple[Path, float]:
    """The recipe for one variant and seed, in ``--logdir/<variant>/seed<S>/``: trained, resumed where an earlier
    invocation was stopped, or kept when finished; its run folder and its ``train_seconds`` (every round's
    collection and fit, summed over resumes; the rounds' validation and the final evaluation not counted)."""
    runs = args.logdir / variant / f"seed{seed}"
    started = [p for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []
    if len(started) > 1:
        raise SystemExit(f"{runs} holds {len(started)} run folders; keep the one to judge")
    if not started:
        cli = ["train-agent", "--env", "highway", "--recipe", "driver", "--seed", str(seed), "--runs-dir", str(runs)]
        cli += VARIANTS[variant] + (["--encoder", str(encoder)] if variant in PRETRAINED else [])
        cli += [a for s in args.recipe_set for a in ("--set", s)]
        _drive(*cli)
    elif not (started[0] / "metrics.json").is_file():  # stopped mid-run: finished, not started over
        _drive("train-agent", "--resume", str(started[0]))
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return run, json.loads((run / "metrics.json").read_text())["train_seconds"]


def _drive(*cli: str) -> None:
    subprocess.run([sys.executable, "-m", "drive.cli", *cli, "--quiet"], check=True)


def merged(earlier: list[dict], new: list[dict]) -> list[dict]:
    """The records of both invocations, a (variant, seed) measured again taking its new record."""
    redone = {(r["variant"], r["seed"]) for r in new}
    return [r for r in earlier if (r["variant"], r["seed"]) not in redone] + new


def by_variant(records: list[dict]) -> dict[str, list[dict]]:
    """The records of each variant measured, in ``VARIANTS``' order, each variant's in seed order."""
    return {
        v: sorted((r for r in records if r["variant"] == v), key=lambda r: r["seed"])
        for v in VARIANTS
        if any(r["variant"] == v for r in records)
    }


def summarise(records: list[dict]) -> list[dict]:
    """One row per variant (in ``VARIANTS``' order): means over its seeds; a seed that never reached the bar
    counts its whole budget."""
    rows = []
    for variant, per_seed in by_variant(records).items():
        rows.append(
            {
                "variant": variant,
                "seeds": len(per_seed),
                "minutes": float(np.mean([r["minutes"] for r in per_seed])),
                "steps": float(np.mean([r["reached"] or r["budget"] for r in per_seed])),
                "reached": sum(r["reached"] is not None for r in per_seed),
                "return": float(np.mean([r["mean_return"] for r in per_seed])),
                "crash_rate": float(np.mean([r["crash_rate"] for r in per_seed])),
                "speed": float(np.mean([r["mean_speed"] for r in per_seed])),
            }
        )
    return rows


def table(rows: list[dict], budget_label: str) -> str:
    lines = [
        f"| variant | seeds | minutes (with pretraining) | env steps to the bar ({budget_label}) | vs scratch "
        "| return | crash rate | speed (m/s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    scratch = next((r for r in rows if r["variant"] == "scratch"), None)
    for r in rows:
        ratio = _ratio(r, scratch) if scratch else "n/a"
        lines.append(
            f"| {r['variant']} | {r['seeds']} | {r['minutes']:.1f} | {r['steps']:,.0f} ({r['reached']}/{r['seeds']} "
            f"reached) | {ratio} | {r['return']:.2f} | {r['crash_rate']:.3f} | {r['speed']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def rounds_table(records: list[dict]) -> str:
    """Each round's student alone on the validation traffic: return / crash rate, the mean over a variant's seeds,
    each seed's crash rate in brackets when there are several (a seed without that round is left out)."""
    per_variant = by_variant(records)
    variants = list(per_variant)
    header = " | ".join(f"{v}, {len(per_variant[v])} seed{'s' * (len(per_variant[v]) > 1)}" for v in variants)
    lines = [f"| round (env steps) | {header} |", "|---|" + "---|" * len(variants)]
    for k in range(max((len(r.get("validation", [])) for r in records), default=0)):
        steps = next(s["env_steps"] for r in records if (s := _student(r, k)))
        cells = [_round_cell([s for r in per_variant[v] if (s := _student(r, k))]) for v in variants]
        lines.append(f"| {k} ({steps:,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _student(record: dict, k: int) -> dict | None:
    """Round ``k``'s validation of a run, or None (a run stopped earlier; older records have no validation)."""
    validation = record.get("validation", [])
    return validation[k] if k < len(validation) else None


def _round_cell(students: list[dict]) -> str:
    if not students or any("crash_rate" not in s for s in students):  # a round validated without the student alone
        return ""
    crashes = [100 * s["crash_rate"] for s in students]
    cell = f"{np.mean([s['mean_return'] for s in students]):.2f} / {np.mean(crashes):.1f} %"
    return cell + (f" ({', '.join(f'{c:.1f}' for c in crashes)})" if len(students) > 1 else "")


def _ratio(row: dict, scratch: dict) -> str:
    """Env steps to the bar against scratch's. A seed that never reached the bar counts its budget, which is only a
    lower bound of its steps: the ratio is then a bound (``>=``, ``<=``), or nothing when both sides are bounds."""
    ratio = f"{row['steps'] / scratch['steps']:.2f}x"
    if row is scratch:
        return ratio
    mine, theirs = row["reached"] == row["seeds"], scratch["reached"] == scratch["seeds"]
    return ratio if mine and theirs else f"<= {ratio}" if mine else f">= {ratio}" if theirs else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, default=Path("runs/pretraining-driver"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--encoder", type=Path, help="a pretrained encoder.pt (compact); default: pretrain one")
    parser.add_argument(
        "--encoder-seconds", type=float, default=0.0, help="the wall-clock that made --encoder: frames and pretraining"
    )
    parser.add_argument("--method", default="atc", help="pretraining preset (configs/pretrain/)")
    parser.add_argument("--frames", type=int, default=100_000, help="frame stacks collected for pretraining")
    parser.add_argument("--frames-policy", default="idm", help="who drives while frames are collected")
    parser.add_argument("--recipe-set", nargs="*", default=[], help="--set overrides for every variant's recipe")
    parser.add_argument("--max-crash", type=float, default=0.02)
    parser.add_argument("--min-return", type=float, default=23.0)
    parser.add_argument("--episodes", type=int, default=100, help="highway-env evaluation episodes per run")
    args = parser.parse_args()
    from driving_quality import camera_of, judge, policy_of  # here: the tests import this module as benchmarks.<name>

    args.logdir.mkdir(parents=True, exist_ok=True)
    needs_encoder = any(v in PRETRAINED for v in args.variants)
    encoder, pretrain_seconds = pretrained_encoder(args) if needs_encoder else (Path(), 0.0)
    records = []
    for variant in args.variants:
        for seed in args.seeds:
            run, seconds = train(args, variant, seed, encoder)
            rounds = json.loads((run / "student" / "rounds.json").read_text())
            reached = steps_to_bar(rounds, args.max_crash, args.min_return)
            extra = pretrain_seconds if variant in PRETRAINED else 0.0
            judged = judge(policy_of(run, "ppo"), args.episodes, camera=camera_of(run))
            validation = [{"env_steps": r["env_steps"], **r.get("alone", {})} for r in rounds]  # each round's student
            records.append({"variant": variant, "run": str(run), "seed": seed, "minutes": (seconds + extra) / 60,
                            "reached": reached, "budget": rounds[-1]["env_steps"], **judged,
                            "validation": validation})  # fmt: skip
            print(f"{variant} seed {seed}: {records[-1]}", flush=True)
    results = args.logdir / "results.json"
    if results.is_file():  # an earlier invocation's other variants and seeds stay in the table
        records = merged(json.loads(results.read_text())["runs"], records)
    rows = summarise(records)
    text = table(rows, f"validation crash <= {args.max_crash:g}, return >= {args.min_return:g}")
    text += "\nEach round's student alone on the validation traffic (return / crash rate):\n\n" + rounds_table(records)
    (args.logdir / "table.md").write_text(text)
    results.write_text(json.dumps({"rows": rows, "runs": records}, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
