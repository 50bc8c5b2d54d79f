"""benchmarks/pretraining_driver.py: when a recipe run counts as having reached the driver bar, the table, and
which runs it trains, resumes or keeps."""

import json
from argparse import Namespace
from pathlib import Path

import pytest

from benchmarks import pretraining_driver
from benchmarks.pretraining_driver import merged, rounds_table, steps_to_bar, summarise, table, train


def _round(k: int, crash: float, ret: float) -> dict:
    return {"round": k, "env_steps": (k + 1) * 100, "alone": {"crash_rate": crash, "mean_return": ret}}


def test_the_first_round_meeting_both_bars_counts():
    rounds = [_round(0, 0.20, 20.0), _round(1, 0.01, 22.9), _round(2, 0.03, 23.5), _round(3, 0.02, 23.0)]
    assert steps_to_bar(rounds, max_crash=0.02, min_return=23.0) == 400  # safe but slow, fast but unsafe: no
    assert steps_to_bar(rounds[:3], max_crash=0.02, min_return=23.0) is None
    assert steps_to_bar([{"round": 0, "env_steps": 100}], 0.02, 23.0) is None  # no validation recorded


def test_the_table_compares_each_variant_with_scratch_and_says_when_the_ratio_is_only_a_bound():
    row = {"seeds": 3, "minutes": 20.0, "reached": 3, "return": 23.1, "crash_rate": 0.01, "speed": 22.0}
    scratch = {**row, "variant": "scratch", "steps": 400.0}
    text = table([scratch, {**row, "variant": "finetuned", "steps": 200.0}], "b")
    assert "| finetuned | 3 | 20.0 | 200 (3/3 reached) | 0.50x |" in text
    text = table([scratch, {**row, "variant": "frozen", "steps": 400.0, "reached": 2}], "b")
    assert "| frozen | 3 | 20.0 | 400 (2/3 reached) | >= 1.00x |" in text  # a seed's budget, not its steps
    text = table([{**scratch, "reached": 1}, {**row, "variant": "finetuned", "steps": 200.0}], "b")
    assert "| finetuned | 3 | 20.0 | 200 (3/3 reached) | <= 0.50x |" in text
    assert "| scratch | 3 | 20.0 | 400 (1/3 reached) | 1.00x |" in text
    text = table([{**scratch, "reached": 0}, {**row, "variant": "frozen", "steps": 400.0, "reached": 0}], "b")
    assert "| frozen | 3 | 20.0 | 400 (0/3 reached) | n/a |" in text


def test_a_stopped_run_is_resumed_a_finished_one_kept_and_a_missing_one_trained(tmp_path, monkeypatch):
    calls = []

    def drive(*cli):  # stands in for the CLI: a run folder that finishes with its train_seconds
        calls.append(cli)
        folder = Path(cli[2]) if cli[1] == "--resume" else Path(cli[cli.index("--runs-dir") + 1]) / "run"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps({"train_seconds": 120.0}))

    monkeypatch.setattr(pretraining_driver, "_drive", drive)
    args = Namespace(logdir=tmp_path, recipe_set=["recipe.student.rounds=4"])
    stopped = tmp_path / "scratch" / "seed0" / "run-a"
    stopped.mkdir(parents=True)
    finished = tmp_path / "scratch" / "seed1" / "run-b"
    finished.mkdir(parents=True)
    (finished / "metrics.json").write_text(json.dumps({"train_seconds": 60.0}))

    assert train(args, "scratch", 0, Path()) == (stopped, 120.0)
    assert calls == [("train-agent", "--resume", str(stopped))]
    assert train(args, "scratch", 1, Path()) == (finished, 60.0) and len(calls) == 1
    run, _ = train(args, "finetuned", 2, Path("e.pt"))
    assert run == tmp_path / "finetuned" / "seed2" / "run"
    cli = " ".join(calls[-1])
    assert "--seed 2" in cli and "--encoder e.pt" in cli and "--set recipe.student.rounds=4" in cli
    (tmp_path / "scratch" / "seed0" / "run-c").mkdir()
    with pytest.raises(SystemExit, match="holds 2 run folders"):  # which one to judge is not guessed
        train(args, "scratch", 0, Path())


def test_a_later_invocation_keeps_earlier_variants_and_replaces_a_seed_it_measures_again():
    def record(variant, seed, reached, ret):
        return {"variant": variant, "seed": seed, "minutes": 10.0 * (seed + 1), "reached": reached, "budget": 400,
                "mean_return": ret, "crash_rate": 0.0, "mean_speed": 22.0}  # fmt: skip

    earlier = [record("finetuned", 0, None, 22.0), record("scratch", 0, 300, 23.0), record("scratch", 1, 200, 23.2)]
    records = merged(earlier, [record("scratch", 1, 100, 23.4), record("frozen", 0, 400, 23.0)])
    assert [(r["variant"], r["seed"]) for r in records] == [
        ("finetuned", 0),
        ("scratch", 0),
        ("scratch", 1),
        ("frozen", 0),
    ]
    rows = {r["variant"]: r for r in summarise(records)}
    assert list(rows) == ["scratch", "frozen", "finetuned"]  # the benchmark's order, not the records'
    assert (
        rows["scratch"]["steps"] == 200
        and rows["scratch"]["return"] == pytest.approx(23.2)
        and rows["scratch"]["seeds"] == 2
    )
    assert rows["finetuned"]["steps"] == 400 and rows["finetuned"]["reached"] == 0  # the budget when never reached


def test_the_rounds_table_gives_each_round_the_mean_over_seeds_and_each_seeds_crash_rate():
    def record(variant, seed, crashes, returns):
        validation = [{"env_steps": 1000 * (k + 1), "crash_rate": c, "mean_return": r}
                      for k, (c, r) in enumerate(zip(crashes, returns, strict=True))]  # fmt: skip
        return {"variant": variant, "seed": seed, "validation": validation}

    records = [
        record("finetuned", 0, [0.10, 0.02], [21.0, 23.0]),
        record("scratch", 1, [0.30, 0.04], [19.0, 22.0]),
        record("scratch", 0, [0.20], [20.0]),  # stopped after its first round
    ]
    lines = rounds_table(records).splitlines()
    assert lines[0] == "| round (env steps) | scratch, 2 seeds | finetuned, 1 seed |"  # VARIANTS' order
    assert lines[2] == "| 0 (1,000) | 19.50 / 25.0 % (20.0, 30.0) | 21.00 / 10.0 % |"  # seeds in order
    assert lines[3] == "| 1 (2,000) | 22.00 / 4.0 % | 23.00 / 2.0 % |"  # only the seed that ran it
    earlier = {"variant": "scratch", "seed": 2}  # results.json records older than the validation field
    assert rounds_table([*records, earlier]).splitlines()[2].startswith("| 0 (1,000) | 19.50 / 25.0 % (20.0, 30.0) |")
