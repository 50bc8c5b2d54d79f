import json
import os
import subprocess
import sys
import zipfile

import cv2
import pytest
import torch

from drive.cli import main
from tests.conftest import SHORT_EPISODES, TINY_DQN


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny DQN pixels run shared by the evaluate/watch tests."""
    runs = tmp_path_factory.mktemp("runs")
    args = ["train-agent", "--env", "highway", "--algo", "dqn", "--obs", "pixels", "-n", "48", "--runs-dir", str(runs)]
    args.append("-q")
    assert main(args + _sets([*TINY_DQN, *SHORT_EPISODES, "train.eval_freq=48", "train.save_freq=48"])) == 0
    (run,) = runs.iterdir()
    return run


def test_train_agent_prints_where_the_logs_went(trained_run, capsys, tmp_path):
    runs = tmp_path / "runs"
    args = ["train-agent", "--algo", "dqn", "--obs", "kinematics", "-n", "40", "--runs-dir", str(runs), "-q"]
    assert main(args + _sets([*TINY_DQN, *SHORT_EPISODES])) == 0
    out = capsys.readouterr().out
    (run,) = runs.iterdir()
    assert f"run folder: {run}" in out and f"TensorBoard logs: {run / 'tb'}" in out
    assert "IDM driver" in out and "crash rate" in out  # the verdict beside the rule-based driver
    assert {"config.yaml", "command.txt", "versions.json", "tb", "checkpoints", "model.zip", "metrics.json"} <= {
        p.name for p in run.iterdir()
    }


def test_evaluate_writes_a_summary_that_matches_its_episodes(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["evaluate", "--policy", "idm", "--episodes", "3", "--runs-dir", str(runs), "-q"]
    assert main([*args, "--seed", "4"]) == 0
    (folder,) = runs.iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    summary, episodes = metrics["summary"], metrics["episodes"]
    assert set(summary) >= {
        "mean_return",
        "return_ci95",
        "crash_rate",
        "mean_speed",
        "mean_distance",
        "mean_lane_changes",
        "episodes",
    }
    assert summary["episodes"] == len(episodes) == 3
    assert summary["mean_return"] == pytest.approx(sum(e["episode_return"] for e in episodes) / 3)
    assert summary["crash_rate"] == pytest.approx(sum(e["crashed"] for e in episodes) / 3)
    assert [e["seed"] for e in episodes] == [4, 5, 6]
    assert list((folder / "tb").glob("events.out.tfevents.*"))
    assert "3 episodes: return" in capsys.readouterr().out


def test_evaluate_a_trained_run(trained_run, tmp_path):
    runs = tmp_path / "runs"
    assert main(["evaluate", "--run", str(trained_run), "--episodes", "1", "--runs-dir", str(runs), "-q"]) == 0
    (folder,) = runs.iterdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["policy"] == trained_run.name and metrics["obs"] == "pixels" and metrics["timesteps"] == 48


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_watch_writes_a_decodable_video_with_one_frame_per_decision(trained_run, tmp_path, suffix):
    out = tmp_path / f"watch{suffix}"
    assert main(["watch", "--run", str(trained_run), "--out", str(out), "-q"]) == 0
    capture = cv2.VideoCapture(str(out))
    frames = []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    # duration=5 s at 1 Hz: at most 5 decisions, plus the final state
    assert 2 <= len(frames) <= 6
    # colour render, the agent's four frames two per row (each ~2.3x its size), text panel
    assert frames[0].shape == (150 + 310 + 54, 600, 3)
    if suffix == ".mp4":  # H.264, which browsers play (OpenCV's mp4v is MPEG-4 Part 2, which they refuse)
        assert int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"h264"


def test_watch_of_a_baseline_shows_the_agent_frames(tmp_path):
    out = tmp_path / "idm.mp4"
    assert main(["watch", "--policy", "idm", "--episodes", "2", "--out", str(out), "-q", "--seed", "1"]) == 0
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) >= 4
    ok, frame = capture.read()
    assert ok and frame[150:460].std() > 5  # the agent's grayscale frames under the colour render are drawn


def test_watch_names_its_own_progress_bar(tmp_path, capsys):
    assert main(["watch", "--policy", "idm", "--out", str(tmp_path / "w.gif"), "--seed", "2"]) == 0
    err = capsys.readouterr().err
    assert "watch:" in err and "evaluate:" not in err


def test_watch_live_without_a_display_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["watch", "--policy", "idm", "--live", "-q"]) == 2
    assert "--live needs a display, and none was found" in capsys.readouterr().err


def _corrupt(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    return bad


def _kinematics_checkpoint(tmp_path):
    from stable_baselines3 import DQN

    from drive.envs import make_env

    model = DQN("MlpPolicy", make_env("highway", "kinematics"), buffer_size=10)
    path = tmp_path / "kin.zip"
    model.save(path)
    return path


BAD_INPUTS = [
    (["train-agent", "--env", "highwy"], "unknown env 'highwy' (did you mean 'highway'?); valid:"),
    (["train-agent", "--algo", "a2c"], "unknown algorithm 'a2c'; valid: dqn, ppo"),
    (["train-agent", "--obs", "lidar"], "unknown observation preset 'lidar'; valid: pixels, kinematics"),
    (["train-agent", "--backend", "gpu"], "unknown backend 'gpu'; valid: highway-env, batched"),
    (["train-agent", "--backend", "batched", "--env", "merge"], "backend 'batched' does not simulate env 'merge'"),
    (["watch", "--policy", "idm", "--backend", "batched", "--env", "racetrack"], "does not simulate env 'racetrack'"),
    (["train-agent", "--set", "train.lr=1"], "unknown config key 'train.lr'; valid:"),
    (["train-agent", "--set", "env.n_envs=two"], "config key 'env.n_envs' must be of type int, got 'two'"),
    (["train-agent", "--set", "env.config.lane_count=2"], "unknown highway env config key 'lane_count'"),
    (["train-agent", "--timesteps", "abc"], "Invalid value for '--timesteps'"),
    (["train-agent", "--resume", "nowhere"], "run folder 'nowhere' does not exist"),
    (["evaluate", "--checkpoint", "missing.zip"], "checkpoint 'missing.zip' does not exist"),
    (["evaluate", "--policy", "idm", "--env", "parking"], "policy 'idm' needs highway-env's DiscreteMetaAction"),
    (["evaluate", "--policy", "expert"], "unknown policy 'expert'; valid: random, idm"),
    (["evaluate"], "give exactly one of --run, --checkpoint, --policy (got none)"),
    (["watch", "--policy", "idm", "--out", "x.avi"], "unknown video format '.avi'; valid: .mp4, .gif"),
]
BAD_INPUTS += [  # values out of range, before any work or folder
    (["train-agent", "--set", "env.config.lanes_count=0"], "env config key 'lanes_count' must be above 0, got 0"),
    (["train-agent", "--set", "env.config.lanes_count=x"], "env config key 'lanes_count' must be an integer, got 'x'"),
    (["train-agent", "--set", "env.config.vehicles_count=x"], "'vehicles_count' must be an integer, got 'x'"),
    (["train-agent", "--set", "env.config.policy_frequency=0"], "'policy_frequency' must be above 0, got 0"),
    (["train-agent", "--set", "env.config.duration=abc"], "env config key 'duration' must be a number, got 'abc'"),
    (["train-agent", "--backend", "batched", "--set", "env.config.duration=-1"], "'duration' must be above 0, got -1"),
    (["train-agent", "--seed", "-1"], "--seed must be 0..4294967295, got -1"),
    (["evaluate", "--policy", "idm", "--seed", "4294967296"], "--seed must be 0..4294967295, got 4294967296"),
    (["collect-frames", "--seed", "-1"], "--seed must be 0..4294967295, got -1"),
    (["train-agent", "--set", "train.seed=-1"], "train.seed must be in 0..4294967295, got -1"),
    (["train-agent", "--set", "train.save_freq=0"], "train.save_freq must be at least 1, got 0"),
    (["train-agent", "--set", "train.eval_freq=-1"], "train.eval_freq must be at least 0 (0: only at the end), got -1"),
    (["train-agent", "--set", "algo.net_arch=[0]"], "algo.net_arch must be a list of layer sizes of at least 1"),
    (["train-agent", "--set", "algo.encoder.features_dim=0"], "algo.encoder.features_dim must be at least 1, got 0"),
    (["train-agent", "--algo", "ppo", "--set", "algo.hyperparams.batch_size=1"], "batch_size must be at least 2"),
    (["train-agent", "--set", "algo.hyperparams.learning_rate=-1"], "learning_rate must be above 0, got -1"),
    (["pretrain", "--frames", "nowhere", "--features-dim", "0"], "--features-dim must be at least 1, got 0"),
    (["pretrain", "--frames", "nowhere", "--lr", "0"], "--lr must be above 0, got 0.0"),
    (["probe", "--frames", "nowhere", "--encoder", "random", "--limit", "0"], "--limit must be at least 1, got 0"),
    (["bench", "--engines", "envpol"], "unknown bench engine 'envpol' (did you mean 'envpool'?); valid: highway-env,"),
    (["bench", "--scenarios", "highway,hihgway"], "unknown env 'hihgway' (did you mean 'highway'?); valid: highway,"),
    (["bench", "--n-envs", "64,0"], "--n-envs must each be at least 1, got 64,0"),
    (["bench", "--n-envs", "1k"], "--n-envs takes comma-separated whole numbers, got '1k'"),
    (["bench", "--seconds", "0"], "--seconds must be above 0, got 0.0"),
]
UNWRITABLE = "cannot be written (No such file or directory in '/proc'); choose another place"
BAD_INPUTS += [  # output paths that cannot be written, refused before the work (Linux's /proc takes no files)
    (["train-agent", "--runs-dir", "/proc/runs"], f"--runs-dir '/proc/runs' {UNWRITABLE}"),
    (["evaluate", "--policy", "idm", "--runs-dir", "/proc/runs"], f"--runs-dir '/proc/runs' {UNWRITABLE}"),
    (["watch", "--policy", "idm", "--out", "/proc/x.mp4"], f"--out '/proc/x.mp4' {UNWRITABLE}"),
    (["bench", "--json", "/proc/bench.json"], f"--json '/proc/bench.json' {UNWRITABLE}"),
    (["pretrain", "--frames", "nowhere", "--out", "/proc/p"], f"--out '/proc/p' {UNWRITABLE}"),
    (["collect-frames", "--out", "/proc/f"], f"--out '/proc/f' {UNWRITABLE}"),
]
NO_GPU = "device 'cuda' was asked for, but torch sees no CUDA GPU; valid here: auto, cpu"
BAD_INPUTS += [  # each verb and backend that takes a device; CI has no GPU, and the check is skipped on one
    (["train-agent", "--device", "cuda"], NO_GPU),
    (["train-agent", "--backend", "batched", "--device", "cuda"], NO_GPU),
    (["train-agent", "--set", "train.device=cuda"], NO_GPU),
    (["evaluate", "--policy", "idm", "--device", "cuda"], NO_GPU),
    (["watch", "--policy", "idm", "--device", "cuda"], NO_GPU),
    (["collect-frames", "--frames", "8", "--device", "cuda"], NO_GPU),
    (["pretrain", "--frames", "nowhere", "--device", "cuda"], NO_GPU),
    (["probe", "--frames", "nowhere", "--device", "cuda"], NO_GPU),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_code_2(args, message, capsys, tmp_path, monkeypatch):
    if message == NO_GPU and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # no run folder left behind


def test_an_output_path_with_a_file_in_the_way_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("a user's file")
    assert main(["train-agent", "--runs-dir", str(tmp_path / "taken"), "-q"]) == 2
    assert main(["collect-frames", "--out", str(tmp_path / "taken" / "frames"), "-q"]) == 2
    assert main(["watch", "--policy", "idm", "--out", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("is a file; give a folder") and err[1].endswith("taken' is a file")
    assert err[2].endswith("is a folder; give a file name") and len(err) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(_corrupt(tmp_path)), "--algo", "dqn"]) == 2
    assert "is not a readable dqn model" in capsys.readouterr().err


def test_checkpoint_from_another_observation_space_is_refused(tmp_path, capsys):
    args = ["evaluate", "--checkpoint", str(_kinematics_checkpoint(tmp_path)), "--algo", "dqn", "--obs", "pixels"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "was trained on observations Box" in err and "(5, 5)" in err and "(4, 128, 64)" in err
    assert not (tmp_path / "runs").exists()


def test_checkpoint_of_another_algorithm_is_refused(tmp_path, capsys):
    args = ["evaluate", "--checkpoint", str(_kinematics_checkpoint(tmp_path)), "--algo", "ppo", "--obs", "kinematics"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "is not a ppo model; give its algorithm (--algo dqn)" in err and err.count("\n") == 1


def test_corrupt_frame_stores_are_refused_in_one_line(tmp_path, capsys):
    from drive.perception.collect import collect_frames

    store = collect_frames(out=tmp_path / "frames", frames=8, n_envs=2, shard_size=8, progress=False)
    (store.root / "truth_00000.npz").unlink()
    assert main(["probe", "--frames", str(store.root), "--encoder", "random", "--runs-dir", str(tmp_path / "r")]) == 2
    (store.root / "manifest.json").write_text("{not json")
    assert main(["pretrain", "--frames", str(store.root), "--runs-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "shard 'truth_00000.npz' is missing or unreadable (FileNotFoundError)" in err[0]
    assert "has a corrupt manifest.json (JSONDecodeError)" in err[1] and len(err) == 2


def test_checkpoint_outside_a_run_needs_its_algorithm(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(_kinematics_checkpoint(tmp_path))]) == 2
    assert "is outside a run folder: give --algo (valid: dqn, ppo)" in capsys.readouterr().err


def test_resume_refuses_other_settings(trained_run, capsys):
    assert main(["train-agent", "--resume", str(trained_run), "--algo", "ppo"]) == 2
    assert "--resume continues the run's saved config; drop --algo" in capsys.readouterr().err


def test_installed_console_script_reports_errors_with_exit_code_2():
    script = os.path.join(os.path.dirname(sys.executable), "drive")
    result = subprocess.run([script, "train-agent", "--env", "nope"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("valid: highway, intersection, merge, parking, racetrack, roundabout")
    help_text = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120).stdout
    assert all(verb in help_text for verb in ("train-agent", "evaluate", "watch"))


def test_wheel_maps_the_folders_into_one_drive_namespace(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), root],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("drive-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in (
        "drive/cli.py",
        "drive/envs/factory.py",
        "drive/envs/batched/simulator.py",
        "drive/agents/training.py",
        "drive/perception/encoders.py",
        "drive/configs/algo/dqn-pixels.yaml",
        "drive/configs/env/highway.yaml",
    ):
        assert expected in names
    assert not any(n.startswith(("envs/", "agents/", "perception/", "configs/")) for n in names)


def test_collect_frames_through_a_recipes_camera_and_refusals_before_a_folder(tmp_path, capsys, trained_run):
    """``--recipe driver``: frames as the driver recipe's agent sees them (its 224 x 40 px camera), so that an
    encoder pretrained on them fits the recipe."""
    out = tmp_path / "frames"
    args = ["collect-frames", "--frames", "8", "--n-envs", "2", "--shard-size", "8", "-q"]
    assert main([*args, "--recipe", "driver", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["frame_shape"] == [4, 224, 40]
    assert manifest["config"]["observation"]["centering_position"] == [0.15, 0.5]
    refused = [["--recipe", "driver", "--env", "merge"], ["--recipe", "driver", "--policy", str(trained_run)]]
    for extra in refused:
        assert main([*args, *extra, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: recipe 'driver' drives env 'highway', not 'merge'; valid: --env highway"
    assert "sets the camera, and a run collects through its own" in err[1] and len(err) == 2
    assert not (tmp_path / "refused").exists()
