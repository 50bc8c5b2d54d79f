"""Vehicle models of highway-env, batched: kinematic bicycle, lane/speed controllers, IDM and MOBIL.

Each function mirrors one highway-env method (named in its docstring) over all vehicles of all environments
at once. Index tensors use -1 for "no vehicle", as highway-env uses None.
"""

from __future__ import annotations

import math

import torch

from drive.envs.batched import constants as C
from drive.envs.batched.state import TrafficState


def not_zero(x: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """utils.not_zero"""
    return torch.where(x.abs() > eps, x, torch.where(x >= 0, eps, -eps).to(x.dtype))


def wrap_to_pi(x: torch.Tensor) -> torch.Tensor:
    """utils.wrap_to_pi"""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def closest_lane(y: torch.Tensor, lanes_count: int) -> torch.Tensor:
    """RoadNetwork.get_closest_lane_index on parallel straight lanes: nearest centre, the lower index on a tie."""
    return torch.ceil(y / C.LANE_WIDTH - 0.5).clamp(0, lanes_count - 1).long()


def gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[n, index[n, i]]`` for (N, V[, ...]) values and (N, K) indices (-1 reads slot 0)."""
    index = index.clamp(min=0)
    if values.dim() == 2:
        return torch.gather(values, 1, index)
    return torch.gather(values, 1, index[..., None].expand(*index.shape, values.shape[-1]))


def direction(heading: torch.Tensor) -> torch.Tensor:
    return torch.stack((torch.cos(heading), torch.sin(heading)), dim=-1)


def neighbours(state: TrafficState, lane: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Road.neighbour_vehicles: the preceding and following vehicle of each vehicle on lane ``lane`` (N, V).

    A vehicle is on a lane within 1 m beyond its half-width (``on_lane(margin=1)``); distances are
    longitudinal. Ties go as in highway-env: the last equal front vehicle, the first equal rear one.
    """
    x, y = state.position[..., 0], state.position[..., 1]
    n_vehicles = x.shape[1]
    lat = y[:, None, :] - C.LANE_WIDTH * lane[:, :, None]  # (N, i, j): vehicle j on the lane queried for i
    on = (lat.abs() <= C.LANE_WIDTH / 2 + 1) & (x[:, None, :] >= -C.LENGTH) & (x[:, None, :] < C.ROAD_LENGTH + C.LENGTH)
    on &= ~torch.eye(n_vehicles, dtype=torch.bool, device=x.device)
    dx = x[:, None, :] - x[:, :, None]
    inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
    ahead = torch.where(on & (dx >= 0), dx, inf).flip(-1)
    front = n_vehicles - 1 - ahead.argmin(-1)
    front = torch.where(torch.isfinite(ahead.amin(-1)), front, -1)
    behind = torch.where(on & (dx < 0), -dx, inf)
    rear = torch.where(torch.isfinite(behind.amin(-1)), behind.argmin(-1), -1)
    return front, rear


def idm_acceleration(state: TrafficState, ego: torch.Tensor, front: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """IDMVehicle.acceleration(ego_vehicle, front_vehicle), computed with the deciding vehicle's ``delta``."""
    speed = gather(state.speed, ego)
    target = gather(state.target_speed, ego).clamp(0, C.SPEED_LIMIT)
    acc = C.COMFORT_ACC_MAX * (1 - torch.pow(speed.clamp(min=0) / not_zero(target).abs(), delta))
    gap = gather(state.position[..., 0], front) - gather(state.position[..., 0], ego)
    heading = gather(state.heading, ego)
    ego_dir = direction(heading)
    dv = (
        (speed[..., None] * ego_dir - gather(state.speed, front)[..., None] * direction(gather(state.heading, front)))
        * ego_dir
    ).sum(-1)
    ab = -C.COMFORT_ACC_MAX * C.COMFORT_ACC_MIN
    desired = C.DISTANCE_WANTED + speed * C.TIME_WANTED + speed * dv / (2 * math.sqrt(ab))
    acc = acc - torch.where(front >= 0, C.COMFORT_ACC_MAX * torch.pow(desired / not_zero(gap), 2), 0.0)
    return torch.where(ego >= 0, acc, 0.0)


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


def mobil(state: TrafficState, candidate: torch.Tensor, own: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """IDMVehicle.mobil: would each vehicle gain by moving to lane ``candidate`` (N, V) without endangering its
    new follower? ``own`` are the (front, rear) neighbours on its current lane."""
    n_envs, n_vehicles = candidate.shape
    me = torch.arange(n_vehicles, device=candidate.device).expand(n_envs, n_vehicles)
    delta = state.delta
    new_front, new_rear = neighbours(state, candidate)
    new_rear_a = idm_acceleration(state, new_rear, new_front, delta)
    new_rear_pred_a = idm_acceleration(state, new_rear, me, delta)
    safe = ~(new_rear_pred_a < -C.LANE_CHANGE_MAX_BRAKING_IMPOSED)
    old_front, old_rear = own
    self_pred_a = idm_acceleration(state, me, new_front, delta)
    self_a = idm_acceleration(state, me, old_front, delta)
    old_rear_a = idm_acceleration(state, old_rear, me, delta)
    old_rear_pred_a = idm_acceleration(state, old_rear, old_front, delta)
    jerk = self_pred_a - self_a + C.POLITENESS * (new_rear_pred_a - new_rear_a + old_rear_pred_a - old_rear_a)
    return safe & ~(jerk < C.LANE_CHANGE_MIN_ACC_GAIN)


def change_lane_policy(state: TrafficState, is_idm: torch.Tensor, own, lanes_count: int) -> None:
    """IDMVehicle.change_lane_policy for every IDM vehicle, in place on ``target_lane`` and ``timer``.

    Mid-change vehicles abort if another controlled vehicle is merging into the same lane just ahead; others
    decide with MOBIL every LANE_CHANGE_DELAY seconds, checking the left lane then the right one (the right wins).
    """
    x = state.position[..., 0]
    changing = state.lane != state.target_lane
    # Abort: someone (not yet on my target lane) targets it too and is within my desired gap ahead.
    n_vehicles = x.shape[1]
    same_target = state.target_lane[:, None, :] == state.target_lane[:, :, None]
    not_there = state.lane[:, None, :] != state.target_lane[:, :, None]
    others = ~torch.eye(n_vehicles, dtype=torch.bool, device=x.device)
    d = x[:, None, :] - x[:, :, None]
    all_idx = torch.arange(n_vehicles, device=x.device)
    me = all_idx.expand_as(state.lane)[..., None].expand(-1, -1, n_vehicles)
    them = all_idx.expand(state.lane.shape[0], n_vehicles, n_vehicles)
    desired = _desired_gap(state, me, them)
    abort = (same_target & not_there & others & (d > 0) & (d < desired)).any(-1)
    state.target_lane = torch.where(is_idm & changing & abort, state.lane, state.target_lane)

    due = is_idm & ~changing & (state.timer > C.LANE_CHANGE_DELAY)
    state.timer = torch.where(due, torch.zeros_like(state.timer), state.timer)
    moving = state.speed.abs() >= 1
    reachable = (x >= 0) & (x < C.ROAD_LENGTH + C.LENGTH)
    for side in (-1, 1):  # left lane first: a passing right lane overrides it, as in highway-env's loop
        candidate = state.lane + side
        exists = (candidate >= 0) & (candidate < lanes_count)
        ok = due & moving & reachable & exists & mobil(state, candidate.clamp(0, lanes_count - 1), own)
        state.target_lane = torch.where(ok, candidate, state.target_lane)


def _desired_gap(state: TrafficState, ego: torch.Tensor, front: torch.Tensor) -> torch.Tensor:
    """IDMVehicle.desired_gap for index tensors of any matching shape (N, ...)."""
    n = ego.shape[0]
    flat_e, flat_f = ego.reshape(n, -1), front.reshape(n, -1)
    speed = gather(state.speed, flat_e)
    ego_dir = direction(gather(state.heading, flat_e))
    front_vel = gather(state.speed, flat_f)[..., None] * direction(gather(state.heading, flat_f))
    dv = ((speed[..., None] * ego_dir - front_vel) * ego_dir).sum(-1)
    ab = -C.COMFORT_ACC_MAX * C.COMFORT_ACC_MIN
    return (C.DISTANCE_WANTED + speed * C.TIME_WANTED + speed * dv / (2 * math.sqrt(ab))).reshape(ego.shape)


def idm_act(state: TrafficState, is_idm: torch.Tensor, lanes_count: int) -> None:
    """IDMVehicle.act for every IDM vehicle that has not crashed: MOBIL, then steering and IDM acceleration."""
    active = is_idm & ~state.crashed
    own = neighbours(state, state.lane)
    change_lane_policy(state, active, own, lanes_count)
    steering = steering_control(state, state.target_lane)
    me = torch.arange(state.num_vehicles, device=state.lane.device).expand_as(state.lane)
    acc = idm_acceleration(state, me, own[0], state.delta)
    changing = state.lane != state.target_lane
    if bool(changing.any()):
        target_front, _ = neighbours(state, state.target_lane)
        acc = torch.where(changing, torch.minimum(acc, idm_acceleration(state, me, target_front, state.delta)), acc)
    acc = acc.clamp(-C.ACC_MAX, C.ACC_MAX)
    state.steering = torch.where(active, steering, state.steering)
    state.acceleration = torch.where(active, acc, state.acceleration)


def controlled_act(state: TrafficState, is_controlled: torch.Tensor) -> None:
    """ControlledVehicle.act(None) for the ego: follow the target lane at the target speed."""
    steering = steering_control(state, state.target_lane)
    state.steering = torch.where(is_controlled, steering, state.steering)
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
