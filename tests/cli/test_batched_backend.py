"""``--backend batched`` through every verb: train-agent, evaluate, watch and bench (and the bench's EnvPool rows)."""

import json
import sys

import cv2
import numpy as np
import pytest
import yaml

from drive.cli import main
from tests.cli.test_cli import _sets
from tests.conftest import SHORT_EPISODES, TINY_PPO


def _frames(path):
    capture, frames = cv2.VideoCapture(str(path)), []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    return frames


def test_train_agent_on_the_batched_backend_evaluates_on_highway_env(tmp_path, monkeypatch):
    from drive.agents.callbacks import PeriodicEvaluation

    evaluated_on, real_run = [], PeriodicEvaluation.run

    def spy(self):
        evaluated_on.append(type(self.eval_env.unwrapped).__module__)
        return real_run(self)

    monkeypatch.setattr(PeriodicEvaluation, "run", spy)
    runs = tmp_path / "runs"
    args = ["train-agent", "--algo", "ppo", "--obs", "pixels", "--backend", "batched", "--n-envs", "8"]
    sets = [*TINY_PPO, *SHORT_EPISODES, "train.eval_freq=128", "train.save_freq=128"]
    assert main([*args, "-n", "128", "--runs-dir", str(runs), "-q", *_sets(sets)]) == 0
    (run,) = runs.iterdir()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["env"]["backend"] == "batched" and config["env"]["n_envs"] == 8
    assert (run / "model.zip").is_file() and list((run / "checkpoints").glob("*.zip"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0}).Reload()
    assert {"eval/mean_return", "eval/crash_rate", "rollout/ep_rew_mean"} <= set(events.Tags()["scalars"])
    # trained on our simulator, evaluated on highway-env's own environment
    assert evaluated_on and all(module.startswith("highway_env.envs") for module in evaluated_on)


def test_evaluate_on_the_batched_backend_writes_one_record_per_episode(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["evaluate", "--policy", "idm", "--backend", "batched", "--episodes", "6", "--runs-dir", str(runs), "-q"]
    assert main(args) == 0
    (folder,) = runs.iterdir()
    assert "-batched-" in folder.name
    metrics = json.loads((folder / "metrics.json").read_text())
    episodes = metrics["episodes"]
    assert metrics["summary"]["episodes"] == len(episodes) == 6
    # highway-fast: 30 s at 1 Hz; the IDM baseline does not crash, so every episode runs to the time limit.
    assert [e["length"] for e in episodes] == [30] * 6 and metrics["summary"]["crash_rate"] == 0.0
    assert 20 <= metrics["summary"]["mean_speed"] <= 30


def test_watch_on_the_batched_backend_shows_our_frames(tmp_path):
    out = tmp_path / "ours.mp4"
    assert main(["watch", "--policy", "idm", "--backend", "batched", "--out", str(out), "-q"]) == 0
    frames = _frames(out)
    assert len(frames) == 30 + 1  # one per decision, and the final state
    assert frames[0].shape == (150 + 310 + 54, 600, 3)  # our colour view, our agent frames (2 x 2), text panel
    road = frames[0][:150]
    assert np.abs(road.astype(int) - 100).max(axis=-1).mean() < 40  # mostly highway-env's grey ground
    assert frames[0][150:460].std() > 5  # the agent's grayscale frames are drawn


def test_bench_quick_writes_json_records(tmp_path):
    from drive.bench import envpool_missing

    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out), "-q"]) == 0
    records = json.loads(out.read_text())
    assert all(set(r) >= {"backend", "obs", "n_envs", "device", "steps_per_s", "what", "scenario"} for r in records)
    keys = {(r["what"], r["backend"], r["obs"], r["n_envs"], r["device"]) for r in records}
    assert {("env", "highway-env", "pixels", 1, "cpu"), ("env", "batched", "pixels", 1024, "cpu")} <= keys
    if envpool_missing() is None:  # the quick bench's EnvPool row, beside highway-env's with the same table
        assert {("env", "highway-env", "kinematics", 1, "cpu"), ("env", "envpool", "kinematics", 1024, "cpu")} <= keys
    assert {r["scenario"] for r in records} == {"highway"}
    # Speed itself is measured by the benchmark, not asserted here: a shared CI machine can be slow at any time.
    assert all(r["steps_per_s"] > 0 for r in records)


TINY_BENCH = ["bench", "--n-envs", "1,2", "--seconds", "0.05", "--no-train", "-q"]


def test_bench_has_envpool_rows_for_every_scenario_beside_highway_env(tmp_path, capsys):
    pytest.importorskip("envpool")
    from drive.bench import envpool_refuses
    from drive.envs.scenarios import ENVPOOL_SCENARIOS

    out = tmp_path / "bench.json"
    assert main([*TINY_BENCH, "--engines", "highway-env,envpool", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    # pixels rows appear for each scenario EnvPool draws the preset on; for the others the bench says why in a line
    stdout = capsys.readouterr().out.splitlines()
    measured = {scenario: ["kinematics"] for scenario in ENVPOOL_SCENARIOS}
    for scenario in ENVPOOL_SCENARIOS:
        refused = envpool_refuses(scenario, "pixels")
        if refused:
            assert refused in stdout
        else:
            measured[scenario].append("pixels")
    assert len(records) == sum(len(obs_list) for obs_list in measured.values()) * 3
    for scenario, obs_list in measured.items():
        for obs in obs_list:
            rows = [r for r in records if r["scenario"] == scenario and r["obs"] == obs]
            (reference,) = [r for r in rows if r["backend"] == "highway-env"]
            assert (reference["what"], reference["n_envs"], reference["device"], reference["ratio"]) == (
                "env",
                1,
                "cpu",
                1,
            )
            ours = [r for r in rows if r["backend"] == "envpool"]
            assert [(r["what"], r["n_envs"], r["device"]) for r in ours] == [("env", 1, "cpu"), ("env", 2, "cpu")]
            for r in ours:
                assert r["steps_per_s"] > 0
                assert r["ratio"] == pytest.approx(r["steps_per_s"] / reference["steps_per_s"])


def test_bench_without_envpool_says_so_in_one_line_and_measures_the_rest(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "envpool", None)  # import envpool now fails, as where it is not installed
    out = tmp_path / "bench.json"
    assert main([*TINY_BENCH, "--scenarios", "highway,merge", "--n-envs", "1", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("envpool")] == [
        "envpool rows skipped: backend envpool needs EnvPool: "
        'pip install -e ".[envpool]" (or pip install "drive[envpool]")'
    ]
    records = json.loads(out.read_text())
    assert {(r["scenario"], r["backend"], r["obs"]) for r in records} == {
        ("highway", backend, obs) for backend in ("highway-env", "batched") for obs in ("kinematics", "pixels")
    }  # merge has no engine but highway-env without EnvPool: nothing to compare, so no row


def test_bench_training_rows_compare_equal_learning_work_per_sample():
    from drive.bench import learning_work

    preset = {"batch_size": 32, "train_freq": 1, "gradient_steps": 1}
    one_env = learning_work("dqn", preset, n_envs=1)
    many_envs_default = learning_work("dqn", preset, n_envs=64)
    many_envs_matched = learning_work("dqn", {**preset, "gradient_steps": -1}, n_envs=64)
    assert one_env == many_envs_matched == 32 and many_envs_default == 0.5
    assert learning_work("ppo", {"n_epochs": 4}, n_envs=64) == 4
