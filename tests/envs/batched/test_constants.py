"""Our copy of highway-env's constants against highway-env's own classes (constants.py promises this check)."""

import pytest
from highway_env.envs.common.action import DiscreteMetaAction
from highway_env.road.lane import AbstractLane
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import ControlledVehicle, MDPVehicle
from highway_env.vehicle.kinematics import Vehicle

from drive.envs.batched import constants as C


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("LENGTH", Vehicle.LENGTH),
        ("WIDTH", Vehicle.WIDTH),
        ("MAX_SPEED", Vehicle.MAX_SPEED),
        ("MIN_SPEED", Vehicle.MIN_SPEED),
        ("LANE_WIDTH", AbstractLane.DEFAULT_WIDTH),
        ("TAU_ACC", ControlledVehicle.TAU_ACC),
        ("TAU_HEADING", ControlledVehicle.TAU_HEADING),
        ("TAU_LATERAL", ControlledVehicle.TAU_LATERAL),
        ("TAU_PURSUIT", ControlledVehicle.TAU_PURSUIT),
        ("KP_A", ControlledVehicle.KP_A),
        ("KP_HEADING", ControlledVehicle.KP_HEADING),
        ("KP_LATERAL", ControlledVehicle.KP_LATERAL),
        ("MAX_STEERING_ANGLE", ControlledVehicle.MAX_STEERING_ANGLE),
        ("TARGET_SPEEDS", tuple(MDPVehicle.DEFAULT_TARGET_SPEEDS)),
        ("ACC_MAX", IDMVehicle.ACC_MAX),
        ("COMFORT_ACC_MAX", IDMVehicle.COMFORT_ACC_MAX),
        ("COMFORT_ACC_MIN", IDMVehicle.COMFORT_ACC_MIN),
        ("DISTANCE_WANTED", IDMVehicle.DISTANCE_WANTED),
        ("TIME_WANTED", IDMVehicle.TIME_WANTED),
        ("DELTA_RANGE", tuple(IDMVehicle.DELTA_RANGE)),
        ("POLITENESS", IDMVehicle.POLITENESS),
        ("LANE_CHANGE_MIN_ACC_GAIN", IDMVehicle.LANE_CHANGE_MIN_ACC_GAIN),
        ("LANE_CHANGE_MAX_BRAKING_IMPOSED", IDMVehicle.LANE_CHANGE_MAX_BRAKING_IMPOSED),
        ("LANE_CHANGE_DELAY", IDMVehicle.LANE_CHANGE_DELAY),
    ],
)
def test_constant_matches_highway_env(ours, theirs):
    value = getattr(C, ours)
    if isinstance(theirs, tuple):
        assert tuple(float(v) for v in value) == pytest.approx(tuple(float(v) for v in theirs))
    else:
        assert value == pytest.approx(theirs)


def test_action_indices_match_discrete_meta_action():
    assert dict(enumerate(C.ACTION_NAMES)) == DiscreteMetaAction.ACTIONS_ALL
    assert [C.LANE_LEFT, C.IDLE, C.LANE_RIGHT, C.FASTER, C.SLOWER] == [
        C.ACTION_NAMES.index(name) for name in ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")
    ]
