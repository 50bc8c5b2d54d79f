"""Vehicle.handle_collisions, batched: rotated-rectangle separating-axis tests with highway-env's impacts.

Pairs are checked in highway-env's order (i < j). A pair is tested only if one of the two vehicles checks
collisions (in highway-fast-v0 only the ego does), and only if a cheap distance test lets it through.
Intersecting pairs crash both vehicles; pairs that will intersect within the step get pushed apart by half
the minimum translation each, applied at the next step (the last pair in loop order wins, as in highway-env).
"""

from __future__ import annotations

import torch

from drive.envs.batched import constants as C
from drive.envs.batched.dynamics import direction
from drive.envs.batched.state import TrafficState

_CORNERS = ((-1, -1), (-1, 1), (1, 1), (1, -1))  # kinematics.polygon(), in units of half length/width


def polygons(position: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """(..., 4, 2) corners in highway-env's order."""
    corners = torch.tensor(_CORNERS, dtype=position.dtype, device=position.device)
    corners = corners * torch.tensor([C.LENGTH / 2, C.WIDTH / 2], dtype=position.dtype, device=position.device)
    c, s = torch.cos(heading)[..., None], torch.sin(heading)[..., None]
    x = c * corners[:, 0] - s * corners[:, 1]
    y = s * corners[:, 0] + c * corners[:, 1]
    return torch.stack((x, y), dim=-1) + position[..., None, :]


def _interval_distance(min_a, max_a, min_b, max_b):
    return torch.where(min_a < min_b, min_b - max_a, min_a - max_b)


def are_polygons_intersecting(a, b, displacement_a, displacement_b):
    """utils.are_polygons_intersecting for K pairs: (intersecting, will_intersect, translation)."""
    edges = torch.cat((a, b), dim=1)  # (K, 8, 2) the points p1 of each edge, a's then b's
    following = torch.cat((a.roll(-1, dims=1), b.roll(-1, dims=1)), dim=1)
    normal = torch.stack((-(following[..., 1] - edges[..., 1]), following[..., 0] - edges[..., 0]), dim=-1)
    normal = normal / torch.linalg.norm(normal, dim=-1, keepdim=True)
    proj_a = torch.einsum("kpd,knd->knp", a, normal)
    proj_b = torch.einsum("kpd,knd->knp", b, normal)
    min_a, max_a = proj_a.amin(-1), proj_a.amax(-1)
    min_b, max_b = proj_b.amin(-1), proj_b.amax(-1)
    intersecting = (_interval_distance(min_a, max_a, min_b, max_b) <= 0).all(-1)
    velocity = (normal * (displacement_a - displacement_b)[:, None, :]).sum(-1)
    min_a = torch.where(velocity < 0, min_a + velocity, min_a)
    max_a = torch.where(velocity < 0, max_a, max_a + velocity)
    distance = _interval_distance(min_a, max_a, min_b, max_b)
    will_intersect = (distance <= 0).all(-1)
    axis = distance.abs().argmin(-1)  # the first smallest, as highway-env's strict "<"
    best = normal[torch.arange(len(axis), device=axis.device), axis]
    centre_gap = a.mean(1) - b.mean(1)
    best = torch.where(((centre_gap * best).sum(-1) > 0)[:, None], best, -best)
    translation = distance.abs().amin(-1)[:, None] * best
    return intersecting, will_intersect, translation


def collision_pairs(check: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs i < j (in highway-env's loop order) in which one vehicle checks collisions. ``check``: (V,)."""
    n_vehicles = check.shape[0]
    i_idx, j_idx = torch.triu_indices(n_vehicles, n_vehicles, offset=1, device=check.device)
    keep = check[i_idx] | check[j_idx]
    return i_idx[keep], j_idx[keep]


def handle_collisions(state: TrafficState, dt: float, pairs: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Road.step's collision loop over ``pairs`` (from ``collision_pairs``), in place."""
    n_envs, n_vehicles = state.heading.shape
    i_idx, j_idx = pairs
    pos_i, pos_j = state.position[:, i_idx], state.position[:, j_idx]
    candidates = torch.linalg.norm(pos_j - pos_i, dim=-1) <= C.DIAGONAL + state.speed[:, i_idx] * dt
    env, pair = torch.nonzero(candidates, as_tuple=True)
    if env.numel() == 0:
        return
    i, j = i_idx[pair], j_idx[pair]
    poly_i = polygons(state.position[env, i], state.heading[env, i])
    poly_j = polygons(state.position[env, j], state.heading[env, j])
    vel_i = state.speed[env, i, None] * direction(state.heading[env, i]) * dt
    vel_j = state.speed[env, j, None] * direction(state.heading[env, j]) * dt
    intersecting, will_intersect, translation = are_polygons_intersecting(poly_i, poly_j, vel_i, vel_j)

    crashed = state.crashed.clone()
    crashed[env[intersecting], i[intersecting]] = True
    crashed[env[intersecting], j[intersecting]] = True
    state.crashed = crashed

    # Impacts: for each vehicle, the pair latest in loop order (i ascending, then j) that will intersect.
    env, pair, i, j, translation = (t[will_intersect] for t in (env, pair, i, j, translation))
    if env.numel() == 0:
        return
    order = (i * n_vehicles + j).double()
    vehicle = torch.cat((i, j))
    key = torch.cat((env, env)) * n_vehicles + vehicle
    push = torch.cat((translation / 2, -translation / 2))
    rank = torch.cat((order, order))
    latest = torch.full((n_envs * n_vehicles,), -1.0, dtype=torch.float64, device=key.device)
    latest = latest.scatter_reduce(0, key, rank, reduce="amax")
    winner = rank == latest[key]
    impact = state.impact.reshape(-1, 2).clone()
    has_impact = state.has_impact.reshape(-1).clone()
    impact[key[winner]] = push[winner]
    has_impact[key[winner]] = True
    state.impact = impact.reshape(n_envs, n_vehicles, 2)
    state.has_impact = has_impact.reshape(n_envs, n_vehicles)
