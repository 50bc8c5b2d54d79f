"""Statistical agreement of EnvPool's ports (and, on highway, our batched simulator) with highway-env, per scenario.

    python benchmarks/envpool_agreement.py                                      # 500 episodes, everything
    python benchmarks/envpool_agreement.py --episodes 4 --scenarios highway merge --out /tmp/look.md   # a look

For each scenario and each driver an engine can run, N episodes per engine on the kinematics preset, and for mean
return, crash rate, mean speed (m/s, over policy steps) and episode length (policy steps) each engine's mean with
its 95% interval (normal approximation; Wilson's interval for the crash rate), then per metric a verdict against
highway-env: whether the two intervals overlap, and the difference (engine - highway-env) with its 95% interval.

Drivers: ``random`` (uniform random actions, seeded), ``constant`` (IDLE on the discrete meta-action scenarios; a
fixed zero action on racetrack's steering and parking's acceleration and steering) and ``idm`` (highway-env's
IDM/MOBIL driving the ego: highway-env on highway, merge, roundabout and intersection; our batched simulator's
port of it on highway). IDM reads the simulator's state, which EnvPool does not share, so EnvPool runs ``random``
and ``constant`` only; a (scenario, driver) with a single engine is listed as not compared, not run.

Seeds: episode ``i`` of every engine is seeded ``--seed + i`` (default 700000: no training or evaluation in this
project uses them); the random driver's actions are seeded ``--seed`` too. The engines' random streams differ, so
the same seed gives other traffic on each: only the statistics can agree.

EnvPool 1.2.5's roundabout, intersection and racetrack ignore their seeds (every episode starts the same). The
script hashes every episode's first observation and reports the distinct starts per engine, and the distinct
episodes (their metrics): where every episode is the same, the interval is that one episode's value, not a sample
of the scenario's traffic, and the table says so instead of a verdict.

Writes the markdown tables to ``--out`` (default ``docs/envpool_agreement.md``) and the records as JSON beside it
(``--json``, default: ``--out`` with ``.json``), each headed by the command that produced it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from drive.agents.baselines import IDMPolicy, RandomPolicy
from drive.agents.evaluation import EpisodeRecord, evaluate_batched, run_episode
from drive.envs import make_env, make_venv
from drive.envs.scenarios import BATCHED_SCENARIOS, ENVPOOL_SCENARIOS, SCENARIOS

SEED = 700_000
VERDICTS = Path("envs/envpool_agreement.json")  # read by drive.envs.envpool_caveats: its warnings' figures
DRIVER_WORDS = {"random": "random actions", "constant": "a constant action", "idm": "the IDM driver"}
DRIVERS = ("random", "constant", "idm")
ENGINES = ("highway-env", "envpool", "batched")
IDM_SCENARIOS = ("highway", "merge", "roundabout", "intersection")  # highway-env's DiscreteMetaAction ego
IDLE = 1  # DiscreteMetaAction's IDLE, in highway-env's and in EnvPool's ports (both action orders agree)
# metric name, EpisodeRecord field, whether it is a rate (Wilson interval), digits in the table
METRICS = (
    ("return", "episode_return", False, 3),
    ("crash rate", "crashed", True, 3),
    ("mean speed (m/s)", "mean_speed", False, 2),
    ("length (steps)", "length", False, 1),
)


# --- drivers -------------------------------------------------------------------------------------------


class ConstantPolicy:
    """The same action every step: IDLE for discrete meta-actions, zeros for continuous actions."""

    name, values_label = "constant", ""

    def __init__(self, env, seed: int | None = None):
        self.action = constant_action(env.action_space)

    def act(self, obs):
        return self.action

    def action_values(self, obs):
        return None


def constant_action(space):
    if hasattr(space, "n"):
        return IDLE
    return np.zeros(space.shape, dtype=space.dtype)


def supported(engine: str, scenario: str, driver: str) -> bool:
    if engine == "envpool":
        return scenario in ENVPOOL_SCENARIOS and driver != "idm"
    if engine == "batched":
        return scenario in BATCHED_SCENARIOS
    return driver != "idm" or scenario in IDM_SCENARIOS


def batch_driver(driver: str, venv, seed: int):
    """One action per env of a VecEnv, from all their observations at once."""
    space, n = venv.action_space, venv.num_envs
    if driver == "idm":  # the batched simulator's port of highway-env's IDM/MOBIL ego
        from drive.envs.batched.ego_idm import idm_meta_actions

        return lambda obs: idm_meta_actions(venv.sim).cpu().numpy()
    if driver == "constant":
        action = constant_action(space)
        return lambda obs: np.full(n, action) if np.isscalar(action) else np.tile(action, (n, 1))
    rng = np.random.default_rng(seed)
    if hasattr(space, "n"):
        return lambda obs: rng.integers(0, space.n, n)
    return lambda obs: rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)


# --- engines -------------------------------------------------------------------------------------------


def digest(obs) -> str:
    """A hash of one observation (a table, or parking's dict of arrays)."""
    parts = [obs[k] for k in sorted(obs)] if isinstance(obs, dict) else [obs]
    h = hashlib.sha1()
    for part in parts:
        h.update(np.ascontiguousarray(part, dtype=np.float32).tobytes())
    return h.hexdigest()


def run_highway_env(scenario: str, driver: str, episodes: int, seed: int):
    """Episodes on highway-env, one env, episode ``i`` reset with ``seed + i``; and each one's first observation."""
    env = make_env(scenario, "kinematics")
    policy = {"random": RandomPolicy, "constant": ConstantPolicy, "idm": IDMPolicy}[driver](env, seed=seed)
    records, starts = [], []
    for i in range(episodes):
        first: list[str] = []

        def on_step(env, obs, action, policy, first=first):
            if not first:
                first.append(digest(obs))

        records.append(run_episode(env, policy, seed + i, on_step))
        starts.append(first[0])
    env.close()
    return records, starts


def run_vec(engine: str, scenario: str, driver: str, episodes: int, seed: int):
    """Episodes on a VecEnv of one env per episode (env ``i`` seeded ``seed + i``), and their first observations."""
    venv = make_venv(scenario, "kinematics", episodes, backend=engine, seed=seed)
    act, starts = batch_driver(driver, venv, seed), []

    def act_batch(obs):
        if not starts:  # the first call sees the reset's observations
            starts.extend(digest(_row(obs, k)) for k in range(episodes))
        return act(obs)

    records = evaluate_batched(venv, act_batch, episodes, seed)
    venv.close()
    return records, starts


def _row(obs, k: int):
    return {key: value[k] for key, value in obs.items()} if isinstance(obs, dict) else obs[k]


# --- statistics ----------------------------------------------------------------------------------------


def interval(values, rate: bool) -> dict:
    """Mean and 95% interval: Wilson's for a rate, else the normal approximation."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(values.mean())
    if rate:
        z, k = 1.96, values.sum()
        centre = (k + z * z / 2) / (n + z * z)
        half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
        low, high = centre - half, centre + half
        se = math.sqrt(mean * (1 - mean) / n)
    else:
        se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        low, high = mean - 1.96 * se, mean + 1.96 * se
    return {"mean": mean, "low": float(low), "high": float(high), "se": se}


def verdict(reference: dict, other: dict) -> dict:
    """Whether the intervals overlap, and the difference ``other - reference`` with its 95% half-width."""
    overlap = reference["low"] <= other["high"] and other["low"] <= reference["high"]
    half = 1.96 * math.hypot(reference["se"], other["se"])
    return {"overlap": bool(overlap), "difference": other["mean"] - reference["mean"], "difference_ci95": half}


def summary(records: list[EpisodeRecord], starts: list[str], seconds: float) -> dict:
    outcomes = {(r.episode_return, r.crashed, r.mean_speed, r.length) for r in records}
    return {
        "episodes": len(records),
        "distinct_starts": len(set(starts)),
        "distinct_episodes": len(outcomes),
        "seconds": seconds,
        "metrics": {name: interval([getattr(r, f) for r in records], rate) for name, f, rate, _ in METRICS},
    }


# --- the run and its tables ----------------------------------------------------------------------------


def measure(args) -> dict:
    results, skipped = [], []
    for scenario in args.scenarios:
        for driver in args.drivers:
            engines = [e for e in args.engines if supported(e, scenario, driver)]
            if len(engines) < 2 or "highway-env" not in engines:
                reason = "IDM reads the simulator's state, which EnvPool does not share" if driver == "idm" else ""
                skipped.append({"scenario": scenario, "driver": driver, "engines": engines, "reason": reason})
                print(f"{scenario} {driver}: not compared (engines: {', '.join(engines) or 'none'})", flush=True)
                continue
            entry = {"scenario": scenario, "driver": driver, "engines": {}, "verdicts": {}}
            for engine in engines:
                start = time.perf_counter()
                if engine == "highway-env":
                    records, starts = run_highway_env(scenario, driver, args.episodes, args.seed)
                else:
                    records, starts = run_vec(engine, scenario, driver, args.episodes, args.seed)
                entry["engines"][engine] = summary(records, starts, time.perf_counter() - start)
                s = entry["engines"][engine]
                print(
                    f"{scenario} {driver} {engine}: {s['seconds']:.1f} s, {s['distinct_starts']} distinct starts, "
                    f"{s['distinct_episodes']} distinct episodes of {args.episodes}",
                    flush=True,
                )
            reference = entry["engines"]["highway-env"]["metrics"]
            for engine in engines[1:]:
                other = entry["engines"][engine]["metrics"]
                comparable = degenerate(entry["engines"][engine]) != IDENTICAL  # one episode repeated: no sample
                entry["verdicts"][engine] = {
                    name: {**verdict(reference[name], other[name]), "comparable": comparable} for name in reference
                }
            results.append(entry)
    return {"results": results, "not_compared": skipped}


IDENTICAL = "seed ignored: every episode identical"


def degenerate(engine_summary: dict) -> str | None:
    """Why an engine's intervals are not a sample of the scenario's traffic (one start), or None."""
    s = engine_summary
    if s["episodes"] < 2 or s["distinct_starts"] > 1:
        return None
    return IDENTICAL if s["distinct_episodes"] == 1 else "seed ignored: one start"


def note(engine_summary: dict) -> str:
    s = engine_summary
    if s["episodes"] > 1 and s["distinct_starts"] > 1 and s["distinct_episodes"] == 1:
        return "the same metrics in every episode, from distinct starts"
    return degenerate(s) or ""


def cell(m: dict, digits: int) -> str:
    return f"{m['mean']:.{digits}f} [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"


def verdict_cell(v: dict, digits: int, why: str | None) -> str:
    if why == IDENTICAL:
        return f"no verdict: {why}"
    word = "overlap" if v["overlap"] else "**differ**"
    text = f"{word}, diff {v['difference']:+.{digits}f} ± {v['difference_ci95']:.{digits}f}"
    return f"{text} ({why})" if why else text


def markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [
        "# EnvPool against highway-env: statistical agreement",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} ({meta['machine']}; EnvPool {meta['envpool']}, "
        f"highway-env {meta['highway_env']}). {meta['episodes']} episodes per engine, seeds {meta['seed']} to "
        f"{meta['seed'] + meta['episodes'] - 1}, kinematics preset. Each cell: mean [95% interval] (Wilson's for the "
        "crash rate); a verdict: do the intervals overlap, and the difference (engine - highway-env) ± its 95% "
        "half-width.",
        "",
    ]
    engines = [e for e in ENGINES if any(e in r["engines"] for r in report["results"])]
    others = [e for e in engines if e != "highway-env"]
    head = ["scenario", "driver", "metric", *engines, *(f"{e} vs highway-env" for e in others)]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in report["results"]:
        for name, _, _, digits in METRICS:
            row = [r["scenario"], r["driver"], name]
            row += [cell(r["engines"][e]["metrics"][name], digits) if e in r["engines"] else "" for e in engines]
            row += [
                verdict_cell(r["verdicts"][e][name], digits, degenerate(r["engines"][e])) if e in r["verdicts"] else ""
                for e in others
            ]
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## Episodes per engine",
        "",
        "| scenario | driver | engine | episodes | distinct starts | distinct episodes | wall-clock (s) | note |",
        "|" + " --- |" * 8,
    ]
    for r in report["results"]:
        for e, s in r["engines"].items():
            row = [r["scenario"], r["driver"], e, s["episodes"], s["distinct_starts"], s["distinct_episodes"]]
            lines.append("| " + " | ".join(map(str, [*row, f"{s['seconds']:.1f}", note(s)])) + " |")
    if report["not_compared"]:
        lines += ["", "Not compared (fewer than two engines run the driver there):", ""]
        for s in report["not_compared"]:
            engines_run = ", ".join(s["engines"]) or "none"
            lines.append(
                f"- {s['scenario']}, {s['driver']}: {engines_run}" + (f" ({s['reason']})" if s["reason"] else "")
            )
    flagged = [
        f"{r['scenario']} ({e}, {r['driver']}): {degenerate(s)}"
        for r in report["results"]
        for e, s in r["engines"].items()
        if degenerate(s)
    ]
    if flagged:
        lines += [
            "",
            "These engines ignored the seeds (one distinct first observation among all the episodes): their "
            "intervals measure the driver's randomness on one traffic situation, not the scenario's traffic, and "
            "where every episode was identical they are one episode's value, with no verdict:",
            "",
            *(f"- {f}" for f in flagged),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500, help="episodes per engine (default 500)")
    parser.add_argument("--scenarios", nargs="+", default=list(ENVPOOL_SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--drivers", nargs="+", default=list(DRIVERS), choices=DRIVERS)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="highway-env is needed")
    parser.add_argument("--seed", type=int, default=SEED, help=f"first episode's seed (default {SEED})")
    parser.add_argument("--out", type=Path, default=Path("docs/envpool_agreement.md"), help="markdown tables")
    parser.add_argument("--json", type=Path, help="records (default: --out with .json)")
    parser.add_argument(
        "--verdicts",
        type=Path,
        default=VERDICTS,
        help=f"the disagreements, per scenario measured, merged into this file; drive warns with them when EnvPool "
        f"is chosen for that scenario (default {VERDICTS}; 'none' to skip)",
    )
    args = parser.parse_args(argv)
    if args.episodes < 2:
        parser.error("--episodes must be at least 2 (an interval needs two episodes)")
    if "highway-env" not in args.engines:
        parser.error("--engines must include highway-env, the reference")
    command = shlex.join(["python", "benchmarks/envpool_agreement.py", *(sys.argv[1:] if argv is None else argv)])
    report = {
        "meta": {
            "command": command,
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, {_cores()} cores",
            "envpool": _version("envpool"),
            "highway_env": _version("highway-env"),
            "episodes": args.episodes,
            "seed": args.seed,
        },
        **measure(args),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report))
    json_path = args.json or args.out.with_suffix(".json")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} and {json_path}")
    if str(args.verdicts) != "none":
        old = json.loads(args.verdicts.read_text()) if args.verdicts.is_file() else {}
        args.verdicts.write_text(json.dumps({**old, **verdicts(report)}, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.verdicts}")


def verdicts(report: dict) -> dict:
    """Per scenario measured, EnvPool's metrics whose interval does not overlap highway-env's (comparable runs
    only: not where every episode was the same), as the lines ``drive.envs.envpool_caveats`` warns with."""
    meta, out = report["meta"], {}
    for r in report["results"]:
        entry = out.setdefault(
            r["scenario"],
            {"episodes": meta["episodes"], "date": meta["date"][:10], "command": meta["command"], "differences": []},
        )
        for name, _, _, digits in METRICS:
            v = r["verdicts"].get("envpool", {}).get(name)
            if v is None or v["overlap"] or not v["comparable"]:
                continue
            ours, reference = r["engines"]["envpool"]["metrics"][name], r["engines"]["highway-env"]["metrics"][name]
            entry["differences"].append(
                f"{DRIVER_WORDS[r['driver']]}, {name} {ours['mean']:.{digits}f} against {reference['mean']:.{digits}f} "
                f"({v['difference']:+.{digits}f} ± {v['difference_ci95']:.{digits}f})"
            )
    return out


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "not installed"


if __name__ == "__main__":
    main()
