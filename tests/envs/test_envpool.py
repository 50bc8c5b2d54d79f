"""``--backend envpool``: EnvPool's highway family as an SB3 VecEnv with SB3's semantics (the drive[envpool] extra)."""

import sys

import envpool
import numpy as np
import pytest
from stable_baselines3 import PPO

from drive.envs import SCENARIOS, make_env, make_venv
from drive.envs.envpool_vec import EnvPoolVecEnv
from drive.errors import DriveError

IDLE = 1


def _stack(venv, action):
    return np.stack([action] * venv.num_envs)


def test_finished_envs_reset_in_the_same_step_and_no_transition_is_lost_or_repeated():
    """Our stream is EnvPool's own with its reset step (reward 0, the new episode's first obs) folded into the
    step that ends the episode."""
    venv = make_venv("highway", "kinematics", 4, backend="envpool", seed=0, config={"duration": 3})
    raw = envpool.make("HighwayFast-v0", env_type="gymnasium", num_envs=4, seed=[0, 1, 2, 3], duration=3)
    obs, (raw_obs, _) = venv.reset(), raw.reset()
    np.testing.assert_array_equal(obs, raw_obs)
    actions = np.full(4, IDLE)
    for _episode in range(2):
        returns = np.zeros(4)
        for t in range(3):
            obs, rewards, dones, infos = venv.step(actions)
            raw_obs, raw_rewards, raw_terminated, raw_truncated, _ = raw.step(actions)
            np.testing.assert_array_equal(rewards, raw_rewards)
            np.testing.assert_array_equal(dones, raw_terminated | raw_truncated)
            returns += rewards
            if t < 2:
                np.testing.assert_array_equal(obs, raw_obs)
                assert not dones.any() and all("episode" not in info for info in infos)
        assert dones.all()  # IDLE for 3 s: nobody crashes, every env times out
        for k, info in enumerate(infos):
            np.testing.assert_array_equal(info["terminal_observation"], raw_obs[k])
            assert info["TimeLimit.truncated"] is True
            assert info["episode"]["l"] == 3 and info["episode"]["r"] == pytest.approx(returns[k])
            assert info["episode"]["crashed"] is False
            assert not np.array_equal(info["terminal_observation"], obs[k])
        reset_obs, reset_rewards, *_ = raw.step(actions)  # EnvPool's own reset step, which we skip
        assert (reset_rewards == 0).all()
        np.testing.assert_array_equal(obs, reset_obs)


def test_a_crash_is_terminated_not_truncated_and_the_episode_says_so():
    venv = make_venv("highway", "kinematics", 16, backend="envpool", seed=3)
    venv.reset()
    for _ in range(30):
        _, _, dones, infos = venv.step(np.full(16, 3))  # FASTER into traffic
        assert all(isinstance(i["speed"], float) and isinstance(i["crashed"], bool) for i in infos)
        crashed = [infos[k] for k in np.flatnonzero(dones) if infos[k]["episode"]["crashed"]]
        if crashed:
            for info in crashed:
                assert info["TimeLimit.truncated"] is False and info["crashed"] is True
                episode = info["episode"]
                assert 20 <= episode["mean_speed"] <= 40 and episode["distance"] > 0 and episode["l"] >= 1
            return
    pytest.fail("no crash in 30 steps of flat-out driving")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kinematics_spaces_equal_highway_envs_so_one_policy_fits_both(scenario):
    venv = make_venv(scenario, "kinematics", 2, backend="envpool", seed=0)
    reference = make_env(scenario, "kinematics")
    assert venv.observation_space == reference.observation_space
    assert venv.action_space == reference.action_space
    obs = venv.reset()
    if isinstance(obs, dict):  # parking: the same keys in the same order (MultiInputPolicy concatenates in it)
        assert list(venv.observation_space.spaces) == list(reference.observation_space.spaces)
        assert all(
            obs[k].shape == (2, *s.shape) and obs[k].dtype == s.dtype for k, s in reference.observation_space.items()
        )
    else:
        assert obs.shape == (2, *reference.observation_space.shape) and obs.dtype == reference.observation_space.dtype
        assert (obs[:, 0, 0] == 1).all()  # the ego's presence
    venv.close()


def test_racetrack_table_is_the_one_highway_env_computes_for_the_same_ego():
    """EnvPool observes an occupancy grid on racetrack; our table must be highway-env's Kinematics of that state."""
    venv = EnvPoolVecEnv("racetrack", 2, seed=0)
    reference = make_env("racetrack", "kinematics", config={"other_vehicles": 0}).unwrapped  # EnvPool's has none
    reference.reset(seed=0)
    venv.reset()
    for t in range(12):
        obs, *_ = venv.step(np.array([[0.8], [-0.5]]) * (t % 3 - 1))  # weave, so y, vx and vy change
        for k, state in enumerate(venv.pool.debug_states(venv.pool.all_env_ids)):
            ego, mine = state.vehicles[0], reference.vehicle
            mine.position, mine.heading, mine.speed = np.array([ego.x, ego.y]), ego.heading, ego.speed
            np.testing.assert_allclose(obs[k], reference.observation_type.observe(), atol=1e-6)
    assert np.abs(obs[:, 0, 2:]).max() > 0  # the ego turned: the check saw more than x


def test_seeds_give_env_i_seed_plus_i_and_seed_rebuilds_the_pool():
    a = make_venv("highway", "kinematics", 3, backend="envpool", seed=11)
    b = make_venv("highway", "kinematics", 3, backend="envpool", seed=12)
    first_a, first_b = a.reset(), b.reset()
    np.testing.assert_array_equal(first_a[1:], first_b[:2])  # env i of seed 11 is env i - 1 of seed 12
    a.step(np.full(3, IDLE))
    a.seed(12)  # SB3: seeds take effect at the next reset
    np.testing.assert_array_equal(a.reset(), first_b)


def test_keys_envpool_lacks_are_refused_naming_them():
    # other_vehicles is a highway-env racetrack key, but EnvPool's racetrack has no traffic to set
    with pytest.raises(DriveError, match=r"env config key 'other_vehicles' is not in EnvPool's Racetrack-v0; valid"):
        make_venv("racetrack", "kinematics", 2, backend="envpool", config={"other_vehicles": 2})
    with pytest.raises(DriveError, match="must be two numbers"):
        make_venv("highway", "kinematics", 2, backend="envpool", config={"reward_speed_range": 25})
    with pytest.raises(DriveError, match="unknown highway env config key 'lanes'"):  # highway-env's check first
        make_venv("highway", "kinematics", 2, backend="envpool", config={"lanes": 2})
    venv = make_venv("highway", "kinematics", 2, backend="envpool", config={"lanes_count": 2, "duration": 4})
    assert venv.pool.config["lanes_count"] == 2 and venv.pool.config["max_episode_steps"] == 4
    # highway-env's centering_position (where the pixels preset draws the ego) is EnvPool's _x and _y
    venv = make_venv("highway", "pixels", 2, backend="envpool", config={"centering_position": [0.5, 0.4]})
    assert (venv.pool.config["centering_position_x"], venv.pool.config["centering_position_y"]) == (0.5, 0.4)


def test_without_envpool_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "envpool", None)  # `import envpool` now raises ImportError
    with pytest.raises(DriveError) as err:
        make_venv("highway", "kinematics", 2, backend="envpool")
    assert (
        str(err.value) == 'backend envpool needs EnvPool: pip install -e ".[envpool]" (or pip install "drive[envpool]")'
    )


def test_the_cli_refuses_pixels_where_envpool_cannot_draw_them_in_one_line_before_a_run_folder(tmp_path, capsys):
    from drive.cli import main

    runs = tmp_path / "runs"
    args = ["train-agent", "--env", "merge", "--obs", "pixels", "--algo", "ppo", "--backend", "envpool"]
    assert main([*args, "--runs-dir", str(runs), "-q"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: backend 'envpool' cannot draw the pixels preset on env 'merge' (EnvPool renders it at its own scale);"
        " valid: --obs kinematics, or pixels on env highway"
    ]
    assert not runs.exists()


@pytest.mark.parametrize(("scenario", "policy"), [("highway", "MlpPolicy"), ("parking", "MultiInputPolicy")])
def test_sb3_ppo_learns_on_it_and_its_rollout_buffer_holds_the_envs_data(scenario, policy):
    venv = make_venv(scenario, "kinematics", 4, backend="envpool", seed=0, config={"duration": 3})
    model = PPO(policy, venv, n_steps=16, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(64)
    assert model.num_timesteps == 64
    buffer = model.rollout_buffer
    observations = buffer.observations if scenario == "highway" else buffer.observations["observation"]
    assert np.isfinite(observations).all() and np.abs(observations).sum() > 0
    assert np.isfinite(buffer.rewards).all() and np.abs(buffer.rewards).sum() > 0
    assert np.isfinite(buffer.values).all() and np.isfinite(buffer.returns).all()
    # 16 steps per env of 3- (highway) or 15-step (parking) episodes: SB3 saw the episodes end
    assert len(model.ep_info_buffer) >= 4 and all(info["l"] <= 15 for info in model.ep_info_buffer)


def test_evaluate_on_envpool_runs_one_episode_per_env_with_its_own_seed(tmp_path):
    from drive.agents.evaluate_run import evaluate_to_run

    result = evaluate_to_run(
        policy="random", env="merge", obs="kinematics", episodes=4, seed=7, backend="envpool", runs_dir=tmp_path
    )
    records = result.records
    assert [r.seed for r in records] == [7, 8, 9, 10]
    assert all(r.length >= 1 and np.isfinite(r.mean_speed) for r in records)
    assert result.folder.name.startswith("merge-eval-random-envpool")


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "--env", "highway", "--obs", "kinematics", "--runs-dir", "RUNS"],
        ["watch", "--out", "OUT/watch.mp4"],
        ["collect-frames", "--frames", "8", "--out", "OUT"],
    ],
)
def test_the_idm_driver_reads_our_simulators_state_so_every_verb_refuses_it_on_envpool(args, tmp_path, capsys):
    from drive.cli import main

    args = [a.replace("RUNS", str(tmp_path / "runs")).replace("OUT", str(tmp_path / "out")) for a in args]
    assert main([*args, "--policy", "idm", "--backend", "envpool"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "idm" in lines[0] and "envpool" in lines[0].lower()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


# --- drive watch and collect-frames on EnvPool -------------------------------------------------------------------


def test_a_rendering_pool_gives_the_colour_of_the_agents_frames_and_each_finished_episodes_last_one():
    """On a pixels pool the colour view is the camera the agent sees through: grayed, it is the newest frame of
    the stack, also for the last frame of a finished episode (``terminal_image``), drawn before the reset."""
    from drive.envs.envpool_vec import grayscale

    venv = make_venv("highway", "pixels", 4, backend="envpool", seed=0, render_mode="rgb_array")
    obs, rng, finished = venv.reset(), np.random.default_rng(0), 0
    assert [info["speed"] for info in venv.reset_infos] == [25.0] * 4  # highway-fast's ego starts at 25 m/s
    for _ in range(40):
        images = np.stack(venv.get_images())
        assert images.shape == (4, 64, 128, 3) and (images[..., 0] != images[..., 2]).any()  # colour: the ego
        np.testing.assert_array_equal(grayscale(images, PIXELS_WEIGHTS), obs[:, -1])
        obs, _, dones, infos = venv.step(rng.integers(0, 5, 4))
        for k in np.flatnonzero(dones):
            last = grayscale(infos[k]["terminal_image"][None], PIXELS_WEIGHTS)[0]
            np.testing.assert_array_equal(last, infos[k]["terminal_observation"][-1])
            assert not np.array_equal(last, obs[k, -1])  # the new episode's first frame is another
            assert venv.reset_infos[k]["speed"] == 25.0
            finished += 1
    assert finished >= 4


def test_watch_on_envpool_films_one_frame_per_decision_of_envpools_colour_view_and_the_final_state():
    from drive.agents.policies import BatchPolicy
    from drive.agents.rollout_video import record_envpool_rollouts

    def venv():
        return make_venv("highway", "kinematics", 1, backend="envpool", seed=7, render_mode="rgb_array")

    faster = BatchPolicy(lambda obs: np.array([3]))  # fast enough to crash into traffic now and then
    frames = record_envpool_rollouts(venv(), faster, episodes=2)
    reference, lengths = venv(), []
    first = reference.reset() is not None and reference.get_images()[0]
    while len(lengths) < 2:
        _, _, dones, infos = reference.step(np.array([3]))
        lengths += [infos[0]["episode"]["l"]] if dones[0] else []
    assert len(frames) == sum(lengths) + 2  # one per decision, and each episode's final state
    assert first.shape == (150, 600, 3)  # EnvPool's highway view, on top of the frame
    np.testing.assert_array_equal(frames[0][:150], first)
    assert frames[0].shape[1] == 600 and frames[0].shape[0] > 150 + 54  # the vehicle table and the text below


def test_the_ground_truth_read_from_envpools_state_is_highway_envs_for_the_same_vehicles():
    """``collect-frames``' truth from EnvPool's debug states, against highway-env's truth (its own lane indices,
    from its road network) for EnvPool's vehicles loaded into a highway-env road."""
    import torch

    from drive.envs.batched.highway_state import snapshot, stack_snapshots
    from drive.perception.collect import _envpool_truth, _truth

    venv = make_venv("highway", "pixels", 8, backend="envpool", seed=0)
    reference = make_env("highway", "pixels", config={"vehicles_count": 0}).unwrapped
    reference.reset(seed=0)
    venv.reset()
    rng, ahead, rows = np.random.default_rng(0), 0, 0
    for _ in range(10):
        ours = _envpool_truth(venv)
        for k, state in enumerate(venv.pool.debug_states(venv.pool.all_env_ids)):
            _highway_env_frame(reference, state)
            reference.vehicle.on_state_update()  # the ego's lane from its new position, as the others' are made
            theirs = _truth(stack_snapshots([snapshot(reference)], dtype=torch.float32))
            for name, value in theirs.items():
                np.testing.assert_allclose(ours[name][k], value[0], atol=1e-4, err_msg=name)
            ahead += theirs["front_distance"][0] < 50
            rows += 1
        venv.step(rng.integers(0, 5, 8))
    assert rows == 80 and ahead >= 10  # vehicles ahead were in range, not only the empty-road default


def test_collect_frames_on_envpool_stores_frames_and_truth_and_resumes(tmp_path, capsys):
    from drive.cli import main
    from drive.perception.frame_store import FrameStore

    out = tmp_path / "frames"
    args = ["collect-frames", "--backend", "envpool", "--n-envs", "8", "--shard-size", "64", "--out", str(out), "-q"]
    assert main([*args, "--frames", "64"]) == 0
    assert main([*args, "--frames", "128"]) == 0  # resumed: one more shard
    store = FrameStore.open(out)
    assert store.count == 128 and store.manifest["backend"] == "envpool" and len(store.manifest["shards"]) == 2
    data = store.load(truth=True)
    frames, step = data.pop("frames"), data.pop("step")
    truth = {k: v for k, v in data.items() if k != "episode"}
    assert frames.shape == (128, 4, 128, 64) and frames.dtype == np.uint8
    assert set(truth) == {
        "lane",
        "speed",
        "front_distance",
        "front_relative_speed",
        "left_occupied",
        "right_occupied",
        "reward",
        "action",
    }  # no idm_action: EnvPool shares no state for it
    assert set(np.unique(truth["lane"])) <= {0, 1, 2} and (truth["front_distance"] <= 50).all()
    first = step == 0
    assert first.any() and not frames[first, :-1].any()  # an episode's first stack: zeros then its first frame


# --- the pixels preset (highway) ---------------------------------------------------------------------------------

PIXELS_WEIGHTS = [0.2989, 0.5870, 0.1140]
TURNED = 2 * np.pi / 180  # highway-env draws a vehicle at its heading past this, else straight (graphics.py)
LANE_LINE = 254  # the gray of the white lane lines in a pixels frame


def _highway_env_gray(rgb):
    """highway-env's GrayscaleObservation._render_to_grayscale of each (H, W, 3) frame, one at a time."""
    return np.stack([np.dot(np.moveaxis(f, 0, 1)[..., :3], PIXELS_WEIGHTS).clip(0, 255).astype(np.uint8) for f in rgb])


def _newest(venv):
    return _highway_env_gray(venv.pool.render(venv.pool.all_env_ids))


def test_pixels_space_is_highway_envs_and_scenarios_envpool_cannot_draw_are_refused_in_one_line():
    venv = make_venv("highway", "pixels", 2, backend="envpool", seed=0)
    reference = make_env("highway", "pixels").observation_space
    assert venv.observation_space == reference and venv.observation_space.shape == (4, 128, 64)
    assert venv.observation_space.dtype == np.uint8
    assert (venv.observation_space.low == reference.low).all() and (venv.observation_space.high == reference.high).all()
    assert venv.reset().shape == (2, 4, 128, 64) and venv.reset().dtype == np.uint8
    config = venv.pool.config
    assert (config["screen_width"], config["screen_height"], config["scaling"]) == (128, 64, 1.75)
    venv.close()
    for scenario in [s for s in SCENARIOS if s != "highway"]:
        with pytest.raises(DriveError) as err:
            make_venv(scenario, "pixels", 2, backend="envpool")
        assert str(err.value) == (
            f"backend 'envpool' cannot draw the pixels preset on env {scenario!r} (EnvPool renders it at its own"
            " scale); valid: --obs kinematics, or pixels on env highway"
        )


def test_pixels_grayscale_is_highway_envs_arithmetic_on_every_colour_level():
    from drive.envs.envpool_vec import grayscale

    rgb = np.random.default_rng(0).integers(0, 256, (4, 64, 128, 3), dtype=np.uint8)
    pixels, levels = rgb.reshape(-1, 3), np.arange(256)
    pixels[:256] = levels[:, None]  # every gray, then every level of red, green and blue alone
    for c in range(3):
        pixels[256 * (c + 1) : 256 * (c + 2)] = 0
        pixels[256 * (c + 1) : 256 * (c + 2), c] = levels
    np.testing.assert_array_equal(grayscale(rgb, PIXELS_WEIGHTS), _highway_env_gray(rgb))


def test_pixels_stack_rolls_with_the_newest_frame_last():
    venv = make_venv("highway", "pixels", 4, backend="envpool", seed=0)
    obs = venv.reset()
    for _ in range(4):
        new, *_ = venv.step(np.full(4, IDLE))
        np.testing.assert_array_equal(new[:, :-1], obs[:, 1:])  # frame t is at index 2 of step t + 1's stack
        np.testing.assert_array_equal(new[:, -1], _newest(venv))
        assert all(not np.array_equal(new[k, -1], obs[k, -1]) for k in range(4))  # the scene moved
        obs = new


def test_a_reset_stack_is_highway_envs_zeros_then_the_first_frame_also_in_the_same_step_reset():
    first, _ = make_env("highway", "pixels").reset(seed=0)
    assert not first[:-1].any() and first[-1].min() > 0  # highway-env: a new observation, its first frame last
    venv = make_venv("highway", "pixels", 8, backend="envpool", seed=3)
    obs = venv.reset()
    assert not obs[:, :-1].any() and (obs[:, -1].min(axis=(1, 2)) > 0).all()
    np.testing.assert_array_equal(obs[:, -1], _newest(venv))
    for _ in range(30):  # FASTER into traffic until some envs crash and the others drive on
        new, _, dones, infos = venv.step(np.full(8, 3))
        if dones.any() and not dones.all():
            break
        obs = new
    else:
        pytest.fail("no step with some envs crashed and others driving in 30 steps of flat-out driving")
    newest = _newest(venv)  # the new episodes' first frames, and the others' current ones
    for k in range(8):
        np.testing.assert_array_equal(new[k, -1], newest[k])
        if dones[k]:
            terminal = infos[k]["terminal_observation"]  # the finished episode's last stack
            np.testing.assert_array_equal(terminal[:-1], obs[k, 1:])
            assert terminal.shape == (4, 128, 64) and terminal.dtype == np.uint8 and terminal[-1].min() > 0
            assert not np.array_equal(terminal[-1], new[k, -1])
            assert not new[k, :-1].any()
        else:
            np.testing.assert_array_equal(new[k, :-1], obs[k, 1:])
    after, *_ = venv.step(np.full(8, IDLE))  # a reset stack then rolls as any other
    np.testing.assert_array_equal(after[:, :-1], new[:, 1:])


def _highway_env_frame(reference, state):
    """highway-env's GrayscaleObservation frame of EnvPool's vehicles (``debug_states``: the ego first)."""
    from highway_env.vehicle.behavior import IDMVehicle

    ego, ours = state.vehicles[0], reference.vehicle
    ours.position, ours.heading, ours.speed = np.array([ego.x, ego.y]), ego.heading, ego.speed
    ours.crashed = ego.crashed
    reference.road.vehicles = [ours]
    for other in state.vehicles[1:]:
        vehicle = IDMVehicle(reference.road, [other.x, other.y], other.heading, other.speed)
        vehicle.crashed = other.crashed
        reference.road.vehicles.append(vehicle)
    return reference.observation_type._render_to_grayscale()


def test_pixels_frames_are_highway_envs_for_the_same_vehicles():
    """highway-env's observation viewer on EnvPool's road, ego and traffic: the same pixels while the vehicles in
    view drive straight; a vehicle at a heading is rasterised a little differently (measured: 0.4 % of the pixels,
    0.95 % at worst)."""
    venv = make_venv("highway", "pixels", 8, backend="envpool", seed=0)
    reference = make_env("highway", "pixels", config={"vehicles_count": 0}).unwrapped
    reference.reset(seed=0)
    obs, rng = venv.reset(), np.random.default_rng(0)
    straight, turned = [], []
    for _ in range(12):
        for k, state in enumerate(venv.pool.debug_states(venv.pool.all_env_ids)):
            equal = (obs[k, -1] == _highway_env_frame(reference, state)).mean()
            ego_x = state.vehicles[0].x  # the frame spans 73 m, from 22 m behind the ego
            headings = [abs(v.heading) for v in state.vehicles if -30 < v.x - ego_x < 60]
            (turned if max(headings) > TURNED else straight).append(equal)
        obs, *_ = venv.step(rng.integers(0, 5, 8))  # lane changes turn the vehicles
    assert len(straight) >= 24 and len(turned) >= 12
    assert min(straight) == 1.0
    assert min(turned) >= 0.985 and np.mean(turned) >= 0.993


def test_a_camera_in_the_env_config_draws_highway_envs_frame_but_for_the_dashes_phase():
    """``env.config.observation`` moves the camera in EnvPool too: its size, scale and the ego's place. Measured:
    EnvPool then draws the lane lines' dashes at another phase along the road than highway-env (2 to 4 px off; with
    the preset's camera they coincide), all else pixel for pixel while the vehicles in view drive straight."""
    camera = {"observation_shape": [224, 40], "centering_position": [0.15, 0.5]}  # 109 m ahead, 19 m behind
    venv = make_venv("highway", "pixels", 8, backend="envpool", seed=0, config={"observation": camera})
    config = venv.pool.config
    assert (config["screen_width"], config["screen_height"], config["scaling"]) == (224, 40, 1.75)
    assert (config["centering_position_x"], config["centering_position_y"]) == (0.15, 0.5)
    reference = make_env("highway", "pixels", config={"observation": camera, "vehicles_count": 0}).unwrapped
    reference.reset(seed=0)
    obs, rng, compared = venv.reset(), np.random.default_rng(0), 0
    assert obs.shape == (8, 4, 224, 40)
    for _ in range(6):
        for k, state in enumerate(venv.pool.debug_states(venv.pool.all_env_ids)):
            ego_x = state.vehicles[0].x
            if max(abs(v.heading) for v in state.vehicles if -25 < v.x - ego_x < 115) > TURNED:
                continue
            ours, ref = obs[k, -1], _highway_env_frame(reference, state)
            lines = ours == LANE_LINE
            assert np.array_equal(lines.any(axis=0), (ref == LANE_LINE).any(axis=0))  # the same lines
            assert np.array_equal(ours[~lines & (ref != LANE_LINE)], ref[~lines & (ref != LANE_LINE)])
            compared += 1
        obs, *_ = venv.step(rng.integers(0, 5, 8))
    assert compared >= 12


def test_sb3_ppo_with_our_compact_encoder_learns_on_envpool_pixels():
    from drive.agents.algos import build_model
    from drive.config import resolve
    from drive.perception.encoders import CompactEncoder

    sets = ["env.backend=envpool", "env.n_envs=4", "algo.encoder.name=compact", "algo.encoder.features_dim=32"]
    sets += ["algo.hyperparams.n_steps=16", "algo.hyperparams.batch_size=32", "algo.hyperparams.n_epochs=1"]
    config = resolve("highway", "ppo", "pixels", sets=sets)
    env = config.env
    venv = make_venv(env.name, env.obs, env.n_envs, backend=env.backend, seed=0, config={"duration": 3})
    model = build_model(config, venv, device="cpu")
    assert isinstance(model.policy.features_extractor, CompactEncoder)
    model.learn(64)
    assert model.num_timesteps == 64
    buffer = model.rollout_buffer
    observations = buffer.observations  # 16 steps x 4 envs, flattened by the update
    assert observations.shape == (64, 4, 128, 64) and np.isfinite(observations).all()
    assert observations[:, -1].min() > 0  # every newest frame drawn
    assert np.isfinite(buffer.rewards).all() and np.isfinite(buffer.values).all() and np.isfinite(buffer.returns).all()
    assert len(model.ep_info_buffer) >= 4
