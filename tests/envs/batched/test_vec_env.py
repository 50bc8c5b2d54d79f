import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO

from drive.envs import make_env, make_venv
from drive.envs.batched.vec_env import BatchedVecEnv
from drive.errors import DriveError


@pytest.mark.parametrize("obs", ["pixels", "kinematics"])
def test_spaces_match_highway_env_so_one_policy_fits_both(obs):
    venv = make_venv("highway", obs, 3, backend="batched")
    reference = make_env("highway", obs)
    assert venv.observation_space == reference.observation_space
    assert venv.action_space == reference.action_space
    first = venv.reset()
    assert first.shape == (3, *reference.observation_space.shape) and first.dtype == reference.observation_space.dtype


def test_finished_envs_reset_in_the_same_step_with_sb3_infos():
    venv = BatchedVecEnv(4, config={"duration": 3}, seed=0)
    venv.reset()
    for t in range(3):
        obs, _rewards, dones, infos = venv.step(np.full(4, 1))  # IDLE: nobody crashes in 3 s
        if t < 2:
            assert not dones.any() and all(info == {} for info in infos)
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (5, 5)
        episode = info["episode"]
        assert episode["l"] == 3 and 0 < episode["r"] <= 3 and episode["crashed"] is False
        assert set(info["rewards"]) == {"collision_reward", "right_lane_reward", "high_speed_reward", "on_road_reward"}
    assert not np.array_equal(obs[0], infos[0]["terminal_observation"])  # already the next episode
    assert venv.sim.state.time.eq(0).all()


def test_crash_ends_the_episode_as_terminated_not_truncated():
    venv = BatchedVecEnv(16, seed=3)
    venv.reset()
    for _ in range(30):
        _, _, _, infos = venv.step(np.full(16, 3))  # FASTER into traffic
        crashed = [info for info in infos if info and info["episode"]["crashed"]]
        if crashed:
            assert all(info["TimeLimit.truncated"] is False for info in crashed)
            return
    pytest.fail("no crash in 30 steps of flat-out driving")


def test_seed_makes_resets_reproducible():
    a, b = BatchedVecEnv(3), BatchedVecEnv(3)
    a.seed(11), b.seed(11)
    np.testing.assert_array_equal(a.reset(), b.reset())
    b.seed(12)
    assert not np.array_equal(a.reset(), b.reset())


@pytest.mark.parametrize("algo", [PPO, DQN])
def test_sb3_trains_on_it_unchanged(algo):
    venv = make_venv("highway", "kinematics", 8, backend="batched", config={"duration": 5})
    kwargs = {"n_steps": 8, "batch_size": 32} if algo is PPO else {"learning_starts": 16, "buffer_size": 200}
    model = algo("MlpPolicy", venv, policy_kwargs={"net_arch": [16]}, **kwargs)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(128)
    assert model.num_timesteps >= 128
    # 16 steps per env of 5-step episodes: every env ended episodes, and SB3's Monitor-style records saw them
    assert len(model.ep_info_buffer) >= 8
    assert all(0 < info["l"] <= 5 and 0 <= info["r"] <= 5 for info in model.ep_info_buffer)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))  # it learnt


def test_batched_backend_covers_highway_only():
    with pytest.raises(DriveError, match="backend 'batched' does not simulate env 'merge'; valid: highway"):
        make_venv("merge", "kinematics", 2, backend="batched")


def test_attributes_and_methods_reach_all_envs_or_are_refused():
    venv = make_venv("highway", "kinematics", 4, backend="batched")
    assert venv.get_attr("num_envs", indices=[1, 2]) == [4, 4]
    venv.set_attr("note", "all", indices=None)
    assert venv.get_attr("note") == ["all"] * 4
    with pytest.raises(DriveError, match="set_attr on some of the batched envs: they share one simulator"):
        venv.set_attr("note", "some", indices=[0])
    with pytest.raises(DriveError, match="env_method on some of the batched envs"):
        venv.env_method("seed", 3, indices=[1, 3])
    assert venv.get_attr("note") == ["all"] * 4
