"""The simulator's lane gaps: the driver's auxiliary targets, on a planted traffic state."""

import pytest
import torch

from drive.envs import make_venv
from drive.perception.truth import GAP_NAMES, lane_gaps


def _planted(ego_lane: int):
    """Ego at x=0, 25 m/s in ``ego_lane``; a car 20 m ahead in its lane at 20 m/s; one 10 m behind in the lane to
    its left at 30 m/s; every other car 1 km away."""
    venv = make_venv("highway", "kinematics", 1, backend="batched", seed=0)
    venv.reset()
    state = venv.sim.state.clone()
    state.position[0, :, 0] = 1_000.0
    state.position[0, 0, 0], state.speed[0, 0], state.lane[0, 0] = 0.0, 25.0, ego_lane
    state.position[0, 1, 0], state.speed[0, 1], state.lane[0, 1] = 20.0, 20.0, ego_lane
    state.position[0, 2, 0], state.speed[0, 2], state.lane[0, 2] = -10.0, 30.0, ego_lane - 1
    return state, venv.sim.config.lanes_count


def test_lane_gaps_read_distances_and_closing_speeds_ahead_and_behind():
    state, lanes = _planted(ego_lane=1)
    gaps = dict(zip(GAP_NAMES, lane_gaps(state, lanes)[0].tolist(), strict=True))
    expected = {
        "own_front_gap": 20 / 50,
        "own_front_closing": 0.5,  # 5 m/s faster than the car ahead
        "left_rear_gap": 10 / 20,
        "left_rear_closing": 0.5,  # the car behind comes 5 m/s faster
        "left_front_gap": 1.0,
        "left_front_closing": 0.0,  # nothing in range
        "right_front_gap": 1.0,
        "right_rear_gap": 1.0,
        "own_rear_gap": 1.0,
        "ego_speed": 0.5,
    }
    for name, value in expected.items():
        assert gaps[name] == pytest.approx(value, abs=1e-5), name


def test_a_lane_off_the_road_reads_as_blocked():
    state, lanes = _planted(ego_lane=0)  # the car "to the left" is in lane -1: off the road, not seen
    gaps = dict(zip(GAP_NAMES, lane_gaps(state, lanes)[0].tolist(), strict=True))
    assert gaps["left_front_gap"] == 0.0 and gaps["left_rear_gap"] == 0.0
    assert gaps["left_rear_closing"] == 0.0 and gaps["right_front_gap"] == 1.0
    assert torch.isfinite(lane_gaps(state, lanes)).all()
