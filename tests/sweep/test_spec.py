"""The sweep's input, trials and summary, without Ray: what is refused, what a grid expands to, the figures."""

import json

import pytest

from drive.errors import DriveError
from drive.sweep import (
    Range,
    build_spec,
    check_key,
    grid_trials,
    load_spec,
    parse_grid,
    parse_search,
    read_spec_file,
    save_spec,
    search_trial,
)
from drive.sweep_summary import interval95, summarize


def test_a_grid_is_the_cross_product_times_the_seeds():
    spec = build_spec(grid=parse_grid(["algo.hyperparams.learning_rate=1e-3,3e-4", "algo.net_arch=[64],[32]"]), seeds=3)
    trials = grid_trials(spec)
    assert len(trials) == 2 * 2 * 3
    assert len({t.name for t in trials}) == len(trials)  # one run folder each
    assert {t.seeds for t in trials} == {(0,), (1,), (2,)}
    assert len({t.label for t in trials}) == 4  # the summary's rows: configurations, not seeds
    assert trials[0].sets == ("algo.hyperparams.learning_rate=0.001", "algo.net_arch=[64]")


def test_grid_values_are_numbers_even_without_a_dot():
    assert parse_grid(["algo.hyperparams.learning_rate=1e-3,2"]) == {"algo.hyperparams.learning_rate": [0.001, 2]}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("algo.hyperparams.learning_rate=", "has no values"),
        ("learning_rate", "expects key.path=v1,v2"),
    ],
)
def test_bad_grids_are_refused(item, message):
    with pytest.raises(DriveError, match=message):
        parse_grid([item])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("algo.hyperparams.learning_rate=1e-2:1e-4", "low must be below high"),
        ("algo.hyperparams.learning_rate=0:1:log", "log range needs low above 0"),
        ("algo.hyperparams.learning_rate=a:b", "must be numbers"),
        ("algo.hyperparams.learning_rate=1", "low:high"),
        ("algo.hyperparams.learning_rate=1:2:cube", "low:high"),
    ],
)
def test_malformed_ranges_are_refused(item, message):
    with pytest.raises(DriveError, match=message):
        parse_search([item])


@pytest.mark.parametrize(
    "key", ["algo.hyperparams.anything", "env.config.lanes_count", "recipe.student.rounds", "train.timesteps"]
)
def test_keys_that_set_accepts_are_known(key):
    check_key(key)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("algo.learnin_rate", "unknown config key 'algo.learnin_rate'"),
        ("bogus", "unknown config key 'bogus'"),
        ("train.timesteps.x", "is a value, not a section"),
        ("algo.encoder", "is a section"),
    ],
)
def test_unknown_keys_are_refused_before_anything_starts(key, message):
    with pytest.raises(DriveError, match=message):
        build_spec(grid={key: [1, 2]})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"grid": {"train.seed": [1, 2]}}, "sweep's own axis"),
        ({"search": {"algo.gamma": Range(0.9, 0.99)}}, "unknown config key"),
        ({"search": {"algo.hyperparams.gamma": Range(0.9, 0.99)}}, "needs --trials"),
        ({"trials": 4}, "counts a search's samples"),
        (
            {"grid": {"algo.hyperparams.gamma": [0.9]}, "search": {"algo.hyperparams.gamma": Range(0.9, 0.99)}},
            "a grid or a search",
        ),
        ({"seeds": 0}, "--seeds must be at least 1"),
        ({"metric": "eval/fun"}, "eval/mean_return"),
        ({"mode": "best"}, "max, min"),
        ({"cpus_per_trial": 0}, "--cpus-per-trial must be above 0"),
        ({"name": "a b"}, "sweep name 'a b'"),
        ({"train": {"recipe": "driver", "timesteps": 10}}, "budgeted in rounds"),
    ],
)
def test_bad_sweeps_are_refused(values, message):
    with pytest.raises(DriveError, match=message):
        build_spec(**values)


def test_a_search_trial_has_every_seed_and_rounds_integer_ranges():
    spec = build_spec(
        search={"algo.hyperparams.n_epochs": Range(1, 10, integer=True), "algo.hyperparams.gamma": Range(0.9, 0.99)},
        trials=3,
        seeds=2,
        seed=5,
    )
    trial = search_trial(spec, "abc_00001", {"algo.hyperparams.n_epochs": 3.7, "algo.hyperparams.gamma": 0.95})
    assert trial.seeds == (5, 6)
    assert "algo.hyperparams.n_epochs=4" in trial.sets


def test_a_sweep_file_is_read_strictly(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "name: lr\ntrain: {algo: ppo, set: {train.eval_episodes: 3}}\nseeds: 2\n"
        "grid: {algo.hyperparams.learning_rate: [1.0e-3, 3.0e-4]}\nresources: {cpus_per_trial: 2}\n"
    )
    spec = build_spec(**read_spec_file(good))
    assert spec.train["set"] == ["train.eval_episodes=3"] and spec.cpus_per_trial == 2 and len(grid_trials(spec)) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("seedz: 2\n")
    with pytest.raises(DriveError, match="unknown sweep key 'seedz'"):
        read_spec_file(bad)
    bad.write_text("train: {timestep: 2}\n")
    with pytest.raises(DriveError, match="unknown train key 'timestep'"):
        read_spec_file(bad)
    bad.write_text("grid: {algo.hyperparams.gamma: []}\n")
    with pytest.raises(DriveError, match="non-empty list"):
        read_spec_file(bad)


def test_the_example_sweep_file_is_valid():
    from drive.config import CONFIG_DIR

    for path in (CONFIG_DIR / "sweeps").iterdir():
        if path.name.endswith(".yaml"):
            assert grid_trials(build_spec(**read_spec_file(path)))


def test_a_saved_spec_loads_back_equal(tmp_path):
    spec = build_spec(search={"algo.hyperparams.gamma": Range(0.9, 0.99, log=True)}, trials=2, name="s")
    save_spec(tmp_path, spec)
    assert load_spec(tmp_path) == spec
    (tmp_path / "sweep.json").write_text("{")
    with pytest.raises(DriveError, match="not a sweep file"):
        load_spec(tmp_path)


def test_interval95_uses_students_t():
    mean, half = interval95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-3)
    assert interval95([5.0]) == (5.0, 0.0)


def test_the_summary_groups_seeds_by_configuration_and_counts_failures():
    spec = build_spec(grid={"algo.hyperparams.gamma": [0.9, 0.99]}, seeds=2)
    run = lambda r, c, s: {"mean_return": r, "crash_rate": c, "mean_speed": s}  # noqa: E731
    records = [
        {"label": "a", "params": {"g": 0.9}, "runs": [run(20.0, 0.1, 21.0)]},
        {"label": "a", "params": {"g": 0.9}, "runs": [run(22.0, 0.3, 23.0)]},
        {"label": "b", "params": {"g": 0.99}, "runs": [run(10.0, 1.0, 20.0)]},
        {"label": "b", "params": {"g": 0.99}, "error": "boom"},
    ]
    rows = {r["configuration"]: r for r in summarize(records, spec)}
    assert rows["a"]["seeds"] == 2 and rows["a"]["mean_return"] == 21.0
    assert rows["a"]["crash_rate"] == pytest.approx(0.2)
    assert rows["b"]["seeds"] == 1 and rows["b"]["failed"] == 1 and rows["b"]["mean_return_ci95"] == 0.0
    json.dumps(rows)  # summary.json holds them


def _python(code: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_core_never_imports_ray():
    code = (
        "import sys; import drive.cli, drive.agents.training, drive.agents.recipe, drive.sweep, drive.sweep_run;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna')))"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_the_extra_drive_sweep_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; from drive.cli import main;"
        f"sys.exit(main(['sweep', '--seeds', '2', '--runs-dir', {str(tmp_path / 'runs')!r}]))"
    )
    done = _python(code)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == 'error: drive sweep needs Ray Tune and Optuna: pip install -e ".[ray]" (or pip install "drive[ray]")'
    )
    assert not (tmp_path / "runs").exists()
