"""benchmarks/envpool_agreement.py: its statistics, and that it reports seeds EnvPool ignores instead of averaging."""

import json
import math

import pytest

from benchmarks.envpool_agreement import degenerate, interval, main, supported, verdict, verdicts


def test_intervals_are_normal_for_means_and_wilson_for_rates():
    m = interval([1.0, 2.0, 3.0], rate=False)
    assert m["mean"] == 2 and m["high"] - m["mean"] == pytest.approx(1.96 * 1 / math.sqrt(3))
    none_crashed = interval([False] * 4, rate=True)
    assert none_crashed["mean"] == none_crashed["low"] == 0 and none_crashed["high"] == pytest.approx(0.49, abs=0.01)
    v = verdict(interval([1.0, 2.0, 3.0], False), interval([10.0, 11.0, 12.0], False))
    assert not v["overlap"] and v["difference"] == 9
    assert verdict(m, m)["overlap"] and verdict(m, m)["difference"] == 0


def test_idm_runs_where_the_state_is_shared():
    assert supported("highway-env", "intersection", "idm") and not supported("highway-env", "parking", "idm")
    assert supported("batched", "highway", "idm") and not supported("envpool", "highway", "idm")
    assert supported("envpool", "parking", "constant") and not supported("batched", "merge", "random")


def test_one_start_is_flagged_and_identical_episodes_get_no_verdict():
    one_start = {"episodes": 8, "distinct_starts": 1, "distinct_episodes": 8}
    assert degenerate(one_start) == "seed ignored: one start"
    assert degenerate({**one_start, "distinct_episodes": 1}) == "seed ignored: every episode identical"
    assert degenerate({**one_start, "distinct_starts": 8, "distinct_episodes": 1}) is None  # a real property


def test_envpools_roundabout_is_reported_as_ignoring_its_seeds(tmp_path):
    pytest.importorskip("envpool")
    out = tmp_path / "agreement.md"
    args = ["--episodes", "2", "--scenarios", "roundabout", "--drivers", "constant", "--out", str(out)]
    args += ["--verdicts", str(tmp_path / "verdicts.json")]
    main([*args, "--engines", "highway-env", "envpool"])
    report = json.loads(out.with_suffix(".json").read_text())
    (result,) = report["results"]
    assert result["engines"]["highway-env"]["distinct_starts"] == 2
    assert result["engines"]["envpool"]["distinct_starts"] == result["engines"]["envpool"]["distinct_episodes"] == 1
    assert not any(v["comparable"] for v in result["verdicts"]["envpool"].values())
    table = out.read_text()
    assert "`python benchmarks/envpool_agreement.py --episodes 2 --scenarios roundabout" in table
    assert table.count("no verdict: seed ignored: every episode identical") == 4  # one per metric
    saved = json.loads((tmp_path / "verdicts.json").read_text())
    assert saved["roundabout"]["differences"] == [] and saved["roundabout"]["episodes"] == 2  # no verdict, no claim


def _engine(values: dict) -> dict:
    return {"metrics": {name: interval(v, rate=name == "crash rate") for name, v in values.items()}}


def test_only_metrics_whose_intervals_do_not_overlap_become_warnings():
    same = {"return": [10.0, 11.0, 12.0], "crash rate": [0, 1, 0], "mean speed (m/s)": [20, 21, 22]}
    same["length (steps)"] = [30, 30, 29]
    faster = {**same, "mean speed (m/s)": [30, 31, 32]}
    result = {"scenario": "merge", "driver": "random", "engines": {"highway-env": _engine(same)}}
    result["engines"]["envpool"] = _engine(faster)
    ref, other = result["engines"]["highway-env"]["metrics"], result["engines"]["envpool"]["metrics"]
    result["verdicts"] = {"envpool": {k: {**verdict(ref[k], other[k]), "comparable": True} for k in ref}}
    meta = {"episodes": 3, "date": "2026-11-30 18:00", "command": "python benchmarks/envpool_agreement.py"}
    (line,) = verdicts({"meta": meta, "results": [result]})["merge"]["differences"]
    assert line.startswith("random actions, mean speed (m/s) 31.00 against 21.00 (+10.00 ± ")
    for entry in result["verdicts"]["envpool"].values():
        entry["comparable"] = False  # every episode the same: no verdict, no warning
    assert verdicts({"meta": meta, "results": [result]})["merge"]["differences"] == []
