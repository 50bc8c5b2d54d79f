"""Vehicle models of highway-env, batched: kinematic bicycle, lane/speed controllers, IDM and MOBIL.

Each function mirrors one highway-env method (named in its docstring). Every vehicle of every env is
computed densely and the decisions are masked (e.g. MOBIL's result is kept only for the vehicles whose
lane-change timer is due), so that a whole simulation step is one fixed-shape graph that torch.compile can
fuse. -1 stands for "no vehicle", as highway-env's None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from drive.envs.batched import constants as C
from drive.envs.batched.state import TrafficState

_AB = math.sqrt(-C.COMFORT_ACC_MAX * C.COMFORT_ACC_MIN)


def not_zero(x: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """utils.not_zero"""
    return torch.where(x.abs() > eps, x, torch.where(x >= 0, eps, -eps).to(x.dtype))


def wrap_to_pi(x: torch.Tensor) -> torch.Tensor:
    """utils.wrap_to_pi"""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def closest_lane(y: torch.Tensor, lanes_count: int) -> torch.Tensor:
    """RoadNetwork.get_closest_lane_index on parallel straight lanes: nearest centre, the lower index on a tie."""
    return torch.ceil(y / C.LANE_WIDTH - 0.5).clamp(0, lanes_count - 1).long()


def direction(heading: torch.Tensor) -> torch.Tensor:
    return torch.stack((torch.cos(heading), torch.sin(heading)), dim=-1)


@dataclass
class Frame:
    """What the decisions of one simulation step read, computed once: all (N, V[, 2])."""

    x: torch.Tensor
    y: torch.Tensor
    speed: torch.Tensor
    direction: torch.Tensor
    velocity: torch.Tensor
    target_speed: torch.Tensor  # clipped to the lane's speed limit, as IDM reads it
    on_road_x: torch.Tensor  # longitudinally within a lane's on_lane bounds

    @classmethod
    def of(cls, state: TrafficState) -> Frame:
        x, y = state.position[..., 0], state.position[..., 1]
        d = direction(state.heading)
        return cls(
            x=x,
            y=y,
            speed=state.speed,
            direction=d,
            velocity=state.speed[..., None] * d,
            target_speed=state.target_speed.clamp(0, C.SPEED_LIMIT),
            on_road_x=(x >= -C.LENGTH) & (x < C.ROAD_LENGTH + C.LENGTH),
        )


def neighbours(frame: Frame, env: torch.Tensor, vehicle: torch.Tensor, lane: torch.Tensor):
    """Road.neighbour_vehicles for K queries: the preceding and following vehicle of ``vehicle`` on ``lane``.

    A vehicle is on a lane within 1 m beyond its half-width (``on_lane(margin=1)``); distances are
    longitudinal. (On an exact tie of two vehicles' positions highway-env keeps the later front vehicle, we the
    earlier: vehicles at one position have collided anyway.)
    """
    return _nearest(
        frame.x[env],
        frame.y[env],
        frame.on_road_x[env],
        frame.x[env, vehicle][:, None],
        vehicle[:, None],
        lane[:, None],
    )


def all_neighbours(frame: Frame, lane: torch.Tensor):
    """``neighbours`` of every vehicle of every env on ``lane`` (N, V), by broadcasting: (N, V) each."""
    n_vehicles = frame.x.shape[1]
    me = torch.arange(n_vehicles, device=lane.device)[None, :, None]
    return _nearest(
        frame.x[:, None, :], frame.y[:, None, :], frame.on_road_x[:, None, :], frame.x[..., None], me, lane[..., None]
    )


def _nearest(x_other, y_other, on_road, x_me, me, lane):
    """Front and rear vehicle indices over the last axis (the other vehicles), -1 where none."""
    n_vehicles = x_other.shape[-1]
    on = ((y_other - C.LANE_WIDTH * lane).abs() <= C.LANE_WIDTH / 2 + 1) & on_road
    on &= torch.arange(n_vehicles, device=on.device) != me
    dx = x_other - x_me
    inf = torch.tensor(math.inf, dtype=dx.dtype, device=dx.device)
    best, front = torch.where(on & (dx >= 0), dx, inf).min(-1)
    front = torch.where(best < inf, front, -1)
    best, rear = torch.where(on & (dx < 0), -dx, inf).min(-1)
    rear = torch.where(best < inf, rear, -1)
    return front, rear


def desired_gap(frame: Frame, env, ego, front) -> torch.Tensor:
    """IDMVehicle.desired_gap (projected), for index tensors of one shape."""
    speed = frame.speed[env, ego]
    ego_dir = frame.direction[env, ego]
    dv = ((frame.velocity[env, ego] - frame.velocity[env, front.clamp(min=0)]) * ego_dir).sum(-1)
    return C.DISTANCE_WANTED + speed * C.TIME_WANTED + speed * dv / (2 * _AB)


def idm_acceleration(frame: Frame, env, ego, front, delta) -> torch.Tensor:
    """IDMVehicle.acceleration(ego_vehicle, front_vehicle), with the deciding vehicle's exponent ``delta``."""
    e = ego.clamp(min=0)
    speed = frame.speed[env, e]
    acc = C.COMFORT_ACC_MAX * (1 - torch.pow(speed.clamp(min=0) / not_zero(frame.target_speed[env, e]).abs(), delta))
    gap = frame.x[env, front.clamp(min=0)] - frame.x[env, e]
    brake = C.COMFORT_ACC_MAX * torch.pow(desired_gap(frame, env, e, front) / not_zero(gap), 2)
    acc = acc - torch.where(front >= 0, brake, 0.0)
    return torch.where(ego >= 0, acc, 0.0)


def mobil(frame: Frame, delta, env, me, candidate, own_front, own_rear, new=None) -> torch.Tensor:
    """IDMVehicle.mobil: would ``me`` gain by moving to lane ``candidate`` without making its new follower
    brake harder than LANE_CHANGE_MAX_BRAKING_IMPOSED? ``own_*``: neighbours on its lane; ``new``: on the
    candidate lane, if already known."""
    new_front, new_rear = new if new is not None else neighbours(frame, env, me, candidate)
    new_rear_a = idm_acceleration(frame, env, new_rear, new_front, delta)
    new_rear_pred_a = idm_acceleration(frame, env, new_rear, me, delta)
    safe = ~(new_rear_pred_a < -C.LANE_CHANGE_MAX_BRAKING_IMPOSED)
    self_pred_a = idm_acceleration(frame, env, me, new_front, delta)
    self_a = idm_acceleration(frame, env, me, own_front, delta)
    old_rear_a = idm_acceleration(frame, env, own_rear, me, delta)
    old_rear_pred_a = idm_acceleration(frame, env, own_rear, own_front, delta)
    jerk = self_pred_a - self_a + C.POLITENESS * (new_rear_pred_a - new_rear_a + old_rear_pred_a - old_rear_a)
    return safe & ~(jerk < C.LANE_CHANGE_MIN_ACC_GAIN)


def change_lane_policy(state: TrafficState, frame: Frame, active: torch.Tensor, own, lanes_count: int) -> None:
    """IDMVehicle.change_lane_policy for the ``active`` IDM vehicles, in place on ``target_lane`` and ``timer``.

    A vehicle mid-change aborts if another vehicle, not yet on its target lane but heading there, is ahead
    within its desired gap. The others decide with MOBIL once their timer passes LANE_CHANGE_DELAY, checking
    the left lane then the right one (a right lane that passes overrides the left, as in highway-env's loop).
    Computed densely for all vehicles and masked, so that the whole step is one fixed-shape graph.
    """
    n_envs, n_vehicles = state.lane.shape
    changing = state.lane != state.target_lane
    target = state.target_lane
    merging = (target[:, None, :] == target[:, :, None]) & (state.lane[:, None, :] != target[:, :, None])
    merging &= ~torch.eye(n_vehicles, dtype=torch.bool, device=target.device)
    d = frame.x[:, None, :] - frame.x[:, :, None]  # (N, i, j): j ahead of i
    dv = ((frame.velocity[:, :, None, :] - frame.velocity[:, None, :, :]) * frame.direction[:, :, None, :]).sum(-1)
    speed = frame.speed[:, :, None]
    gap = C.DISTANCE_WANTED + speed * C.TIME_WANTED + speed * dv / (2 * _AB)
    abort = (merging & (d > 0) & (d < gap)).any(-1)
    target = torch.where(active & changing & abort, state.lane, target)

    due = active & ~changing & (state.timer > C.LANE_CHANGE_DELAY)
    state.timer = torch.where(due, torch.zeros_like(state.timer), state.timer)
    can = due & (frame.speed.abs() >= 1) & (frame.x >= 0) & (frame.x < C.ROAD_LENGTH + C.LENGTH)
    env = torch.arange(n_envs, device=target.device)[:, None].expand(n_envs, n_vehicles)
    me = torch.arange(n_vehicles, device=target.device).expand(n_envs, n_vehicles)
    for side in (-1, 1):
        candidate = state.lane + side
        exists = (candidate >= 0) & (candidate < lanes_count)
        candidate = candidate.clamp(0, lanes_count - 1)
        new = all_neighbours(frame, candidate)
        ok = can & exists & mobil(frame, state.delta, env, me, candidate, *own, new=new)
        target = torch.where(ok, candidate, target)
    state.target_lane = target


def steering_control(state: TrafficState, target_lane: torch.Tensor) -> torch.Tensor:
    """ControlledVehicle.steering_control towards the centre of ``target_lane``, clipped."""
    lateral = state.position[..., 1] - C.LANE_WIDTH * target_lane
    speed = not_zero(state.speed)
    heading_command = torch.arcsin((-C.KP_LATERAL * lateral / speed).clamp(-1, 1))
    heading_ref = heading_command.clamp(-math.pi / 4, math.pi / 4)  # a straight lane's heading is 0
    heading_rate = C.KP_HEADING * wrap_to_pi(heading_ref - state.heading)
    slip = torch.arcsin((C.LENGTH / 2 / speed * heading_rate).clamp(-1, 1))
    steering = torch.arctan(2 * torch.tan(slip))
    return steering.clamp(-C.MAX_STEERING_ANGLE, C.MAX_STEERING_ANGLE)


def speed_control(state: TrafficState) -> torch.Tensor:
    """ControlledVehicle.speed_control"""
    return C.KP_A * (state.target_speed - state.speed)


def idm_act(state: TrafficState, is_idm: torch.Tensor, lanes_count: int) -> None:
    """IDMVehicle.act for every IDM vehicle that has not crashed: MOBIL, then steering and IDM acceleration."""
    active = is_idm & ~state.crashed
    frame = Frame.of(state)
    n_envs, n_vehicles = state.heading.shape
    env = torch.arange(n_envs, device=active.device)[:, None].expand(n_envs, n_vehicles)
    me = torch.arange(n_vehicles, device=active.device).expand(n_envs, n_vehicles)
    own = all_neighbours(frame, state.lane)
    change_lane_policy(state, frame, active, own, lanes_count)
    acc = idm_acceleration(frame, env, me, own[0], state.delta)
    changing = active & (state.lane != state.target_lane)
    target_front, _ = all_neighbours(frame, state.target_lane)
    acc = torch.where(changing, torch.minimum(acc, idm_acceleration(frame, env, me, target_front, state.delta)), acc)
    state.steering = torch.where(active, steering_control(state, state.target_lane), state.steering)
    state.acceleration = torch.where(active, acc.clamp(-C.ACC_MAX, C.ACC_MAX), state.acceleration)


def controlled_act(state: TrafficState, is_controlled: torch.Tensor) -> None:
    """ControlledVehicle.act(None) for the ego: follow the target lane at the target speed."""
    state.steering = torch.where(is_controlled, steering_control(state, state.target_lane), state.steering)
    state.acceleration = torch.where(is_controlled, speed_control(state), state.acceleration)


def bicycle_step(state: TrafficState, dt: float, lanes_count: int) -> None:
    """Vehicle.step: clip_actions, the kinematic bicycle model, pending impacts, and the new closest lane."""
    steering = torch.where(state.crashed, torch.zeros_like(state.steering), state.steering)
    acc = torch.where(state.crashed, -state.speed, state.acceleration)
    acc = torch.where(state.speed > C.MAX_SPEED, torch.minimum(acc, C.MAX_SPEED - state.speed), acc)
    acc = torch.where(state.speed < C.MIN_SPEED, torch.maximum(acc, C.MIN_SPEED - state.speed), acc)
    state.steering, state.acceleration = steering, acc  # clip_actions writes back into the stored action
    beta = torch.arctan(0.5 * torch.tan(steering))
    velocity = state.speed[..., None] * direction(state.heading + beta)
    position = state.position + velocity * dt
    position = position + torch.where(state.has_impact[..., None], state.impact, 0.0)
    state.crashed = state.crashed | state.has_impact
    state.has_impact = torch.zeros_like(state.has_impact)
    state.heading = state.heading + state.speed * torch.sin(beta) / (C.LENGTH / 2) * dt
    state.speed = state.speed + acc * dt
    state.position = position
    state.lane = closest_lane(position[..., 1], lanes_count)


def frame_dynamics(tensors: tuple, is_idm: torch.Tensor, is_ego: torch.Tensor, dt: float, lanes_count: int) -> tuple:
    """One simulation step's decisions and motion (Road.act then each Vehicle.step), without collisions.

    A pure function of the state's tensors (``TrafficState`` field order), so that it can be compiled whole.
    """
    state = TrafficState(*tensors)
    controlled_act(state, is_ego)
    idm_act(state, is_idm, lanes_count)
    state.timer = torch.where(is_idm, state.timer + dt, state.timer)  # IDMVehicle.step
    bicycle_step(state, dt, lanes_count)
    return state.tensors()
