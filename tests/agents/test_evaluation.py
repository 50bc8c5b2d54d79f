import math

import numpy as np
import pytest

from drive.agents.baselines import IDMPolicy, RandomPolicy
from drive.agents.evaluation import EpisodeRecord, _changed_lane, evaluate, summarize
from drive.envs import make_env
from drive.errors import DriveError


def _record(ret, crashed=False, speed=20.0, distance=100.0, lane_changes=0, length=10):
    return EpisodeRecord(ret, crashed, speed, distance, lane_changes, length, seed=0)


def test_summary_is_the_mean_of_the_records_with_a_95_percent_interval():
    records = [_record(1.0, True, 10.0, 50.0, 2), _record(3.0, False, 20.0, 150.0, 0)]
    s = summarize(records)
    assert s["mean_return"] == 2.0 and s["crash_rate"] == 0.5 and s["mean_speed"] == 15.0
    assert s["mean_distance"] == 100.0 and s["mean_lane_changes"] == 1.0 and s["episodes"] == 2
    half = 1.96 * np.std([1.0, 3.0], ddof=1) / math.sqrt(2)
    assert s["return_ci95"] == pytest.approx([2.0 - half, 2.0 + half])


def test_lane_changes_count_a_new_lane_on_the_same_road_segment_only():
    assert _changed_lane(("0", "1", 0), ("0", "1", 1))
    assert not _changed_lane(("0", "1", 1), ("1", "2", 1))  # the road moves on
    assert not _changed_lane(("0", "1", 1), ("0", "1", 1))


def test_records_follow_the_episode():
    env = make_env("highway", "kinematics", config={"duration": 6})
    (record,) = evaluate(env, RandomPolicy(env, seed=0), episodes=1, seed=3)
    assert 1 <= record.length <= 6 and record.seed == 3
    assert record.distance > 0 and 0 < record.mean_speed < 45
    if not record.crashed:
        assert record.length == 6


def test_same_seed_gives_the_same_episode():
    env = make_env("highway", "kinematics", config={"duration": 8})
    first = evaluate(env, IDMPolicy(env), episodes=2, seed=1)
    again = evaluate(env, IDMPolicy(env), episodes=2, seed=1)
    assert first == again


def test_idm_drives_highway_without_crashing_and_beats_random():
    env = make_env("highway", "kinematics", config={"duration": 15})
    idm = summarize(evaluate(env, IDMPolicy(env), episodes=4, seed=0))
    rand = summarize(evaluate(env, RandomPolicy(env, seed=0), episodes=4, seed=0))
    assert idm["crash_rate"] == 0.0
    assert idm["mean_return"] > rand["mean_return"]


def test_idm_changes_lanes_with_mobil():
    env = make_env("highway", "kinematics", config={"duration": 30})
    records = evaluate(env, IDMPolicy(env), episodes=3, seed=0)
    assert sum(r.lane_changes for r in records) > 0


def test_idm_refuses_continuous_scenarios():
    env = make_env("parking", "kinematics")
    with pytest.raises(DriveError, match="policy 'idm' needs highway-env's DiscreteMetaAction; valid envs: highway"):
        IDMPolicy(env)


def test_the_idm_verdict_of_a_run_with_its_own_camera_drives_that_runs_road():
    """IDM reads the road through the kinematics preset: a pixels run's camera is left out, its traffic kept."""
    from drive.agents.verdict import idm_summary
    from drive.config import resolve

    camera = ["env.config.observation.observation_shape=[224,40]", "env.config.observation.scaling=1.5"]
    config = resolve("highway", "ppo", "pixels", sets=[*camera, "env.config.duration=2"])
    summary = idm_summary(config, 2)
    assert summary["episodes"] == 2
    assert summary["mean_return"] <= 2  # two steps of at most 1 each: the run's duration, not highway's 30
