"""benchmarks/envpool_agreement.py: its statistics, and that it reports seeds EnvPool ignores instead of averaging."""

import json
import math

import pytest

from benchmarks.envpool_agreement import degenerate, interval, main, supported, verdict


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
    main([*args, "--engines", "highway-env", "envpool"])
    report = json.loads(out.with_suffix(".json").read_text())
    (result,) = report["results"]
    assert result["engines"]["highway-env"]["distinct_starts"] == 2
    assert result["engines"]["envpool"]["distinct_starts"] == result["engines"]["envpool"]["distinct_episodes"] == 1
    assert not any(v["comparable"] for v in result["verdicts"]["envpool"].values())
    table = out.read_text()
    assert "`python benchmarks/envpool_agreement.py --episodes 2 --scenarios roundabout" in table
    assert table.count("no verdict: seed ignored: every episode identical") == 4  # one per metric
