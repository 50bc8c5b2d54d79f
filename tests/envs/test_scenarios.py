import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from drive.envs import OBS_PRESETS, SCENARIOS, env_id, make_env, make_venv
from drive.envs.factory import highway_config
from drive.envs.scenarios import PIXELS
from drive.errors import DriveError

ALL = [(s, o) for s in SCENARIOS for o in OBS_PRESETS]


def test_every_scenario_and_preset_is_registered_in_the_drive_namespace():
    ids = {i for i in gym.registry if i.startswith("drive/")}
    assert ids == {env_id(s, o) for s, o in ALL}
    assert len(ids) == 12


@pytest.mark.parametrize(("scenario", "obs"), ALL)
def test_check_env_passes(scenario, obs):
    env = gym.make(env_id(scenario, obs))
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_pixels_are_stacked_uint8_grayscale_frames_that_show_the_road(scenario):
    env = make_env(scenario, "pixels")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 128, 64), np.uint8)
    assert obs.shape == (4, 128, 64) and obs.dtype == np.uint8
    # The newest frame is drawn (a blank frame once came from SDL's dummy video driver).
    assert obs[-1].std() > 5


def test_highway_kinematics_is_the_five_vehicle_table():
    env = make_env("highway", "kinematics")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5, 5) and obs.dtype == np.float32
    assert obs[0, 0] == 1.0  # presence of the ego


def test_parking_kinematics_keeps_its_goal():
    env = make_env("parking", "kinematics")
    assert set(env.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}


def test_vec_env_holds_n_seeded_copies():
    venv = make_venv("highway", "kinematics", n_envs=3, seed=7)
    obs = venv.reset()
    assert venv.num_envs == 3 and obs.shape == (3, 5, 5)
    # Different seeds per copy give different traffic.
    assert not np.allclose(obs[0], obs[1])
    again = make_venv("highway", "kinematics", n_envs=3, seed=7).reset()
    np.testing.assert_array_equal(obs, again)


def test_env_config_overrides_reach_highway_env():
    env = make_env("highway", "kinematics", config={"lanes_count": 2, "vehicles_count": 3})
    env.reset(seed=0)
    assert env.unwrapped.config["lanes_count"] == 2
    assert len(env.unwrapped.road.vehicles) == 4


def test_a_camera_in_the_env_config_moves_the_pixels_preset_and_keeps_the_rest():
    camera = {"observation_shape": [224, 40], "centering_position": [0.15, 0.5]}
    config = highway_config("highway", "pixels", {"observation": camera})
    assert config["observation"] == {**PIXELS, "observation_shape": (224, 40), "centering_position": [0.15, 0.5]}
    env = make_env("highway", "pixels", config={"observation": camera})
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (4, 224, 40)
    viewer = env.unwrapped.observation_type.viewer
    assert (viewer.config["scaling"], viewer.config["centering_position"]) == (1.75, [0.15, 0.5])
    for _ in range(5):  # to the far right lane: both road edges and the two lane lines still in view, 7 px apart
        obs, *_ = env.step(2)
    assert env.unwrapped.vehicle.lane_index[2] == 2
    assert np.flatnonzero((obs[-1] == 254).any(axis=0)).tolist() == [2, 9, 16, 23]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "hihgway"}, "unknown env 'hihgway' (did you mean 'highway'?); valid: highway, merge"),
        ({"scenario": "highway", "obs": "rgb"}, "unknown observation preset 'rgb'; valid: pixels, kinematics"),
        ({"scenario": "highway", "config": {"lanes": 3}}, "unknown highway env config key 'lanes'; valid: action"),
        ({"scenario": "highway", "backend": "gpu"}, "unknown backend 'gpu'; valid: highway-env"),
        ({"scenario": "highway", "n_envs": 0}, "n_envs must be at least 1, got 0"),
        (
            {"scenario": "highway", "config": {"observation": {"type": "Kinematics"}}},
            "env config key 'observation' takes the pixels camera only, got ['type']; valid keys: observation_shape,",
        ),
        (
            {"scenario": "highway", "obs": "kinematics", "config": {"observation": {"scaling": 1.0}}},
            "env config key 'observation' is set by the kinematics preset; choose --obs instead (with --obs pixels it",
        ),
        (
            {"scenario": "highway", "config": {"observation": {"observation_shape": [224, 8]}}},
            "env config key 'observation.observation_shape' must be two integers of at least 16, [W, H], got [224, 8]",
        ),
        (
            {"scenario": "highway", "config": {"observation": {"scaling": 0}}},
            "env config key 'observation.scaling' must be a number of pixels per metre above 0, got 0",
        ),
        (
            {"scenario": "highway", "config": {"observation": {"centering_position": [0.15, 1.5]}}},
            "env config key 'observation.centering_position' must be two numbers from 0 to 1, [along, across], got",
        ),
    ],
)
def test_bad_env_requests_name_the_value_and_the_choices(kwargs, message):
    with pytest.raises(DriveError) as err:
        make_venv(**kwargs)
    assert str(err.value).startswith(message)


def test_subprocess_vec_env_steps_like_the_dummy_one():
    actions = np.array([1, 3])
    dummy = make_venv("highway", "kinematics", n_envs=2, seed=3)
    subproc = make_venv("highway", "kinematics", n_envs=2, seed=3, vec_env="subproc")
    try:
        np.testing.assert_allclose(dummy.reset(), subproc.reset())
        dummy.step_async(actions)
        subproc.step_async(actions)
        np.testing.assert_allclose(dummy.step_wait()[0], subproc.step_wait()[0])
    finally:
        subproc.close()


def test_intersection_does_not_change_the_traffic_of_other_scenarios():
    from highway_env.vehicle.behavior import IDMVehicle

    before = (IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN)
    env = make_env("intersection", "kinematics")
    env.reset(seed=0)
    assert (IDMVehicle.DISTANCE_WANTED, IDMVehicle.COMFORT_ACC_MAX, IDMVehicle.COMFORT_ACC_MIN) == before
    others = [v for v in env.unwrapped.road.vehicles if v is not env.unwrapped.vehicle]
    assert others and all(v.COMFORT_ACC_MAX == 6 for v in others)  # intersection's own constants still apply
