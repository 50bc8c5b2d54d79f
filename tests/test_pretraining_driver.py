"""benchmarks/pretraining_driver.py: when a recipe run counts as having reached the driver bar, and the table."""

import pytest

from benchmarks.pretraining_driver import merged, steps_to_bar, summarise, table


def _round(k: int, crash: float, ret: float) -> dict:
    return {"round": k, "env_steps": (k + 1) * 100, "alone": {"crash_rate": crash, "mean_return": ret}}


def test_the_first_round_meeting_both_bars_counts():
    rounds = [_round(0, 0.20, 20.0), _round(1, 0.01, 22.9), _round(2, 0.03, 23.5), _round(3, 0.02, 23.0)]
    assert steps_to_bar(rounds, max_crash=0.02, min_return=23.0) == 400  # safe but slow, fast but unsafe: no
    assert steps_to_bar(rounds[:3], max_crash=0.02, min_return=23.0) is None
    assert steps_to_bar([{"round": 0, "env_steps": 100}], 0.02, 23.0) is None  # no validation recorded


def test_the_table_compares_each_variant_with_scratch():
    row = {"seeds": 3, "minutes": 20.0, "reached": 2, "return": 23.1, "crash_rate": 0.01, "speed": 22.0}
    text = table([{**row, "variant": "scratch", "steps": 400.0}, {**row, "variant": "finetuned", "steps": 200.0}], "b")
    assert "| finetuned | 3 | 20.0 | 200 (2/3 reached) | 0.50x |" in text


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
