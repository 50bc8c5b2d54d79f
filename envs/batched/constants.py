"""highway-env's constants (highway-env 1.12.1), in one place; a test checks them against highway-env's classes."""

import math

# vehicle/kinematics.py Vehicle, road/lane.py AbstractLane, road/road.py straight_road_network
LENGTH = 5.0
WIDTH = 2.0
MAX_SPEED = 40.0
MIN_SPEED = -40.0
LANE_WIDTH = 4.0
ROAD_LENGTH = 10000.0
SPEED_LIMIT = 30.0
DIAGONAL = math.sqrt(LENGTH**2 + WIDTH**2)

# vehicle/controller.py ControlledVehicle, MDPVehicle
TAU_ACC = 0.6
TAU_HEADING = 0.2
TAU_LATERAL = 0.6
TAU_PURSUIT = 0.5 * TAU_HEADING
KP_A = 1 / TAU_ACC
KP_HEADING = 1 / TAU_HEADING
KP_LATERAL = 1 / TAU_LATERAL
MAX_STEERING_ANGLE = math.pi / 3
TARGET_SPEEDS = (20.0, 25.0, 30.0)

# vehicle/behavior.py IDMVehicle
ACC_MAX = 6.0
COMFORT_ACC_MAX = 3.0
COMFORT_ACC_MIN = -5.0
DISTANCE_WANTED = 5.0 + LENGTH
TIME_WANTED = 1.5
DELTA_RANGE = (3.5, 4.5)
POLITENESS = 0.0
LANE_CHANGE_MIN_ACC_GAIN = 0.2
LANE_CHANGE_MAX_BRAKING_IMPOSED = 2.0
LANE_CHANGE_DELAY = 1.0

# envs/common/observation.py, envs/common/abstract.py
PERCEPTION_DISTANCE = 5.0 * MAX_SPEED

# envs/common/action.py DiscreteMetaAction.ACTIONS_ALL
LANE_LEFT, IDLE, LANE_RIGHT, FASTER, SLOWER = range(5)
ACTION_NAMES = ("LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER")
