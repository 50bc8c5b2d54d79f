import json
import os
import signal

import pytest
import yaml
from stable_baselines3 import DQN, PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from drive.agents.training import resume, train
from drive.config import resolve
from drive.errors import DriveError
from drive.runs import latest_checkpoint
from tests.conftest import SHORT_EPISODES, TINY_DQN, TINY_PPO

EVAL_SCALARS = {"eval/mean_return", "eval/crash_rate", "eval/mean_speed", "eval/lane_changes"}


def _tb(run):
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


@pytest.mark.parametrize(
    ("algo", "obs", "tiny", "steps"),
    [
        ("dqn", "pixels", TINY_DQN, 64),
        ("dqn", "kinematics", TINY_DQN, 64),
        ("ppo", "pixels", TINY_PPO, 64),
        ("ppo", "kinematics", TINY_PPO, 64),
    ],
)
def test_a_short_run_writes_scalars_video_checkpoints_and_a_loadable_model(runs_dir, algo, obs, tiny, steps):
    sets = [*tiny, *SHORT_EPISODES, "env.n_envs=2", f"train.save_freq={steps // 2}", f"train.eval_freq={steps // 2}"]
    config = resolve("highway", algo, obs, flags={"train": {"timesteps": steps}}, sets=sets)
    run = train(config, runs_dir, progress=False)

    assert run.name.startswith(f"highway-{algo}-")
    assert yaml.safe_load((run / "config.yaml").read_text())["algo"]["name"] == algo
    events = _tb(run)
    assert EVAL_SCALARS <= set(events.Tags()["scalars"])
    assert {"rollout/ep_rew_mean", "rollout/reward_collision_reward"} <= set(events.Tags()["scalars"])
    assert events.Tags()["images"] == ["eval/video"]  # TensorBoard keeps videos as animated images
    assert [e.step for e in events.Scalars("eval/mean_return")] == [steps // 2, steps]
    # the IDM driver as a flat reference line over the same steps, drawn beside the agent by a custom layout
    reference = events.Scalars("reference/idm_mean_return")
    assert [e.step for e in reference] == [0, steps] and reference[0].value == reference[1].value
    assert "custom_scalars__config__" in events.Tags()["tensors"]

    model = {"dqn": DQN, "ppo": PPO}[algo].load(run / "model.zip")
    assert model.num_timesteps == steps
    assert latest_checkpoint(run)[2] == steps
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["timesteps"] == steps and metrics["summary"]["episodes"] == 1


def test_resume_continues_the_step_counter_optimizer_and_replay_buffer(runs_dir):
    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=40", "train.eval_freq=1000"]
    config = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 80}}, sets=sets)
    run = train(config, runs_dir, progress=False)
    (run / "checkpoints" / "model_80_steps.zip").unlink()  # as if stopped after the step-40 checkpoint
    (run / "model.zip").unlink()
    before = DQN.load(run / "checkpoints" / "model_40_steps.zip")

    resume(run, timesteps=120, progress=False)

    after = DQN.load(run / "model.zip")
    assert after.num_timesteps == 120
    assert after._n_updates > before._n_updates  # the update counter carried on
    assert [e.step for e in _tb(run).Scalars("eval/mean_return")][-1] == 120
    replay = list((run / "checkpoints").glob("model_replay_buffer_*_steps.pkl.gz"))
    assert [p.name for p in replay] == ["model_replay_buffer_120_steps.pkl.gz"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["timesteps"] == 120


def test_resume_refuses_a_folder_without_checkpoints(tmp_path):
    with pytest.raises(DriveError, match="does not exist"):
        resume(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DriveError, match=r"has no config\.yaml"):
        resume(tmp_path / "empty")


def test_dqn_refuses_continuous_actions_before_making_a_run_folder(runs_dir):
    config = resolve("racetrack", "dqn", "kinematics")
    with pytest.raises(DriveError, match="algorithm 'dqn' needs discrete actions, but env 'racetrack' has Box"):
        train(config, runs_dir, progress=False)
    assert not runs_dir.exists()


def _ctrl_c():
    raise KeyboardInterrupt


def _sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("interrupt", [_ctrl_c, _sigterm], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_checkpoints_and_resumes(runs_dir, monkeypatch, interrupt):
    from drive.agents import callbacks
    from drive.agents.training import TrainingInterrupted

    def stop_at_50(self):
        if self.num_timesteps >= 50:
            interrupt()
        return True

    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=1000", "train.eval_freq=1000"]
    config = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 90}}, sets=sets)
    with monkeypatch.context() as patch:
        patch.setattr(callbacks.RewardTermsCallback, "_on_step", stop_at_50)
        message = "interrupted at step 50; resume with: drive train-agent --resume"
        with pytest.raises(TrainingInterrupted, match=message):
            train(config, runs_dir, progress=False)
    (run,) = runs_dir.iterdir()
    assert latest_checkpoint(run)[2] == 50 and latest_checkpoint(run)[1] is not None
    resume(run, progress=False)
    assert DQN.load(run / "model.zip").num_timesteps == 90
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored after training


def test_a_run_stopped_in_its_final_evaluation_is_finished_by_resume(runs_dir, monkeypatch):
    from drive.agents import callbacks
    from drive.agents.training import TrainingInterrupted

    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=40", "train.eval_freq=1000"]
    config = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 40}}, sets=sets)
    with monkeypatch.context() as patch:
        patch.setattr(callbacks.PeriodicEvaluation, "run", lambda self: _sigterm())
        with pytest.raises(TrainingInterrupted, match="interrupted at step 40"):
            train(config, runs_dir, progress=False)
    (run,) = runs_dir.iterdir()
    assert latest_checkpoint(run)[2] == 40 and not (run / "metrics.json").exists()

    resume(run, progress=False)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["timesteps"] == 40 and metrics["summary"]["episodes"] == 1
    assert DQN.load(run / "model.zip").num_timesteps == 40
    with pytest.raises(DriveError, match=r"already has 40 of 40 steps; to train longer, pass --timesteps"):
        resume(run, progress=False)
    with pytest.raises(DriveError, match=r"\(--timesteps 30 is the new total\)"):
        resume(run, timesteps=30, progress=False)


def test_checkpoints_keep_only_the_filled_rows_of_the_replay_buffer(runs_dir):
    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=40", "train.eval_freq=1000"]
    sets.append("algo.hyperparams.buffer_size=5000")
    config = resolve("highway", "dqn", "pixels", flags={"train": {"timesteps": 40}}, sets=sets)
    run = train(config, runs_dir, progress=False)
    (buffer,) = (run / "checkpoints").glob("model_replay_buffer_*")
    full_size = 5000 * 2 * 4 * 128 * 64  # observations and next observations, preallocated
    assert buffer.stat().st_size < full_size / 100

    model = DQN.load(run / "model.zip")
    from drive.agents.replay import load_replay_buffer

    load_replay_buffer(model, buffer)
    assert model.replay_buffer.observations.shape[0] == 5000 and model.replay_buffer.pos == 40
    assert model.replay_buffer.observations[:40].any() and not model.replay_buffer.observations[40:].any()

    sets.append("train.save_replay_buffer=false")
    off = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 40}}, sets=sets)
    assert not list((train(off, runs_dir, progress=False) / "checkpoints").glob("model_replay_buffer_*"))


def test_a_corrupt_replay_buffer_is_refused_in_one_line(runs_dir):
    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=40", "train.eval_freq=1000"]
    config = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 40}}, sets=sets)
    run = train(config, runs_dir, progress=False)
    _, buffer, _ = latest_checkpoint(run)
    buffer.write_bytes(b"not a replay buffer")
    with pytest.raises(DriveError, match=r"replay buffer .* is unreadable \(BadGzipFile\); delete it to resume"):
        resume(run, timesteps=80, progress=False)


def test_a_run_in_use_is_refused_and_resume_keeps_the_history(runs_dir):
    from drive.runs import locked

    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=40", "train.eval_freq=40"]
    config = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 40}}, sets=sets)
    run = train(config, runs_dir, progress=False)
    commands, rows = (run / "command.txt").read_text(), (run / "tb" / "progress.csv").read_text().splitlines()
    with locked(run), pytest.raises(DriveError, match="is in use by another drive process"):
        resume(run, timesteps=80, progress=False)
    assert (run / "command.txt").read_text() == commands  # the refused command left nothing

    resume(run, timesteps=80, progress=False)

    assert (run / "command.txt").read_text().startswith(commands) and len(commands.splitlines()) == 1
    assert len((run / "command.txt").read_text().splitlines()) == 2
    after = (run / "tb" / "progress.csv").read_text().splitlines()
    assert after[1 : len(rows)] == rows[1:] and len(after) > len(rows)  # earlier rows kept, new ones after
    assert set(rows[0].split(",")) <= set(after[0].split(","))


def test_training_shows_one_tqdm_bar_over_env_steps(runs_dir, capsys):
    sets = [*TINY_DQN, *SHORT_EPISODES, "train.save_freq=1000", "train.eval_freq=0"]
    config = resolve("highway", "dqn", "kinematics", flags={"train": {"timesteps": 48}}, sets=sets)
    train(config, runs_dir, progress=True)
    err = capsys.readouterr().err
    assert "train: 100%" in err and "48/48" in err and "step/s" in err
