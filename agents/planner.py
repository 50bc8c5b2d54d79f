"""A look-ahead planner over the batched simulator: the privileged teacher of the pixel driver.

At every decision it copies each env's traffic state, tries every first action followed by each of a few
fixed continuations for ``horizon`` policy steps in a second simulator (all envs and all branches at once),
and values each first action by its best branch. The simulator is its model: it sees the exact state,
including what a camera cannot (the other drivers' IDM parameters and lane-change timers). That is why it is
a teacher only: the driver that is evaluated acts from pixels.
"""

from __future__ import annotations

import torch

from drive.config import TeacherConfig
from drive.envs.batched import constants as C
from drive.envs.batched.simulator import BatchedHighway
from drive.envs.batched.state import TrafficState

ACTIONS = (C.LANE_LEFT, C.IDLE, C.LANE_RIGHT, C.FASTER, C.SLOWER)  # DiscreteMetaAction's indices, in order
PREFERENCE = (C.IDLE, C.FASTER, C.LANE_RIGHT, C.LANE_LEFT, C.SLOWER)  # who wins a near-tie
# ``vehicles``: a vehicle behind the ego counts this many times its distance when the nearest are kept: it must
# close faster than one ahead to matter within the horizon
BEHIND_WEIGHT = 3.0
# ``sight_*``: how far back a vehicle out of sight is moved (all of them by the same, so none lands on another)
OUT_OF_SIGHT = 1.0e5


def aggregate(branches: torch.Tensor, how: str) -> torch.Tensor:
    """(N, actions, continuations) branch values -> (N, actions): the best branch (``max``), the mean of the k best
    (``top<k>``: an action that only one exact continuation saves is worth less) or the mean of all."""
    if how == "mean":
        return branches.mean(dim=-1)
    k = int(how.removeprefix("top")) if how.startswith("top") else 1
    return branches.topk(k, dim=-1).values.mean(dim=-1)


def nearest_vehicles(state: TrafficState, keep: int) -> TrafficState:
    """The ego and the ``keep - 1`` other vehicles nearest to it along the road (those behind at ``BEHIND_WEIGHT``
    times their distance), in their slots' order: the traffic the look-ahead needs, in a smaller simulation."""
    dx = state.position[:, 1:, 0] - state.position[:, :1, 0]
    reach = torch.where(dx >= 0, dx, -BEHIND_WEIGHT * dx)
    others = reach.topk(keep - 1, dim=1, largest=False).indices.sort(dim=1).values + 1
    slots = torch.cat((torch.zeros_like(others[:, :1]), others), dim=1)  # (N, keep)
    per_vehicle = {}
    for name, tensor in vars(state).items():
        if tensor.dim() >= 2 and tensor.shape[1] == state.num_vehicles:
            index = slots.view(*slots.shape, *[1] * (tensor.dim() - 2)).expand(-1, -1, *tensor.shape[2:])
            per_vehicle[name] = tensor.gather(1, index)
    return TrafficState(**{**vars(state), **per_vehicle})


def within_sight(state: TrafficState, ahead: float, behind: float) -> TrafficState:
    """``state`` with every other vehicle farther than ``ahead`` metres in front of the ego or ``behind`` metres
    behind it (0: no limit) moved ``OUT_OF_SIGHT`` back along the road, out of the look-ahead's reach."""
    dx = state.position[:, 1:, 0] - state.position[:, :1, 0]
    hidden = torch.zeros_like(dx, dtype=torch.bool)
    if ahead > 0:
        hidden |= dx > ahead
    if behind > 0:
        hidden |= dx < -behind
    shift = torch.cat((torch.zeros_like(hidden[:, :1]), hidden), dim=1).to(state.position.dtype) * OUT_OF_SIGHT
    position = state.position.clone()
    position[..., 0] -= shift
    return TrafficState(**{**vars(state), "position": position})


class Planner:
    """``action_values(sim)`` -> (N, 5) planned values of each first action; ``act(sim)`` -> the best."""

    def __init__(self, sim: BatchedHighway, config: TeacherConfig = TeacherConfig()):
        self.config = config
        self.num_envs = sim.num_envs
        continuations = [C.ACTION_NAMES.index(name) for name in config.continuations]
        self.branches = len(ACTIONS) * len(continuations)
        kinematics = {"type": "Kinematics"}  # the cheapest observer: the look-ahead never observes
        # the look-ahead's traffic: all of it, or the nearest ``vehicles`` (the ego included)
        self.keep = config.vehicles if 0 < config.vehicles < sim.num_vehicles else sim.num_vehicles
        self.model = BatchedHighway(
            sim.num_envs * self.branches,
            sim.variant,
            {**sim.user_config, "observation": kinematics, "vehicles_count": self.keep - 1},
            device=sim.device,
            dtype=sim.dtype,
        )
        first = torch.tensor(ACTIONS, device=sim.device).repeat_interleave(len(continuations))
        then = torch.tensor(continuations, device=sim.device).repeat(len(ACTIONS))
        self.first, self.then = first.repeat(sim.num_envs), then.repeat(sim.num_envs)  # (N * branches,)
        self.rank = torch.tensor([PREFERENCE.index(a) for a in ACTIONS], device=sim.device)
        self.source = torch.arange(sim.num_envs, device=sim.device).repeat_interleave(self.branches)  # env of a branch
        is_lane_change = torch.tensor([a in (C.LANE_LEFT, C.LANE_RIGHT) for a in ACTIONS], device=sim.device)
        self.cost = config.lane_change_cost * is_lane_change.double()  # (actions,)

    @torch.no_grad()
    def action_values(self, sim: BatchedHighway) -> torch.Tensor:
        """Discounted rewards of the best branch after each first action, a crash costing ``crash_penalty``
        more, a lane change ``lane_change_cost``; a branch stops at its episode's end."""
        config, model = self.config, self.model
        state = sim.state if self.keep == sim.num_vehicles else nearest_vehicles(sim.state, self.keep)
        if config.sight_ahead > 0 or config.sight_behind > 0:
            state = within_sight(state, config.sight_ahead, config.sight_behind)
        model.state = state.select(self.source)  # indexing by a tensor copies: the real state stays as it is
        value = torch.zeros(len(self.source), dtype=torch.float64, device=sim.device)
        alive = torch.ones(len(self.source), dtype=torch.bool, device=sim.device)
        for t in range(config.horizon):
            reward, terminated, truncated, terms = model.advance(self.first if t < config.commit else self.then)
            step_value = reward.double() - config.crash_penalty * terms["collision_reward"].double()
            value += torch.where(alive, config.gamma**t * step_value, 0.0)
            alive &= ~(terminated | truncated)
            if not bool(alive.any()):
                break
        return aggregate(value.reshape(self.num_envs, len(ACTIONS), -1), config.aggregate) - self.cost

    def choose(self, values: torch.Tensor) -> torch.Tensor:
        """The best action; among near-ties (within ``tie``) the first of ``PREFERENCE``, so that the teacher
        keeps its lane and speed unless a change pays."""
        good = values >= values.max(dim=-1, keepdim=True).values - self.config.tie
        return torch.where(good, self.rank, len(ACTIONS)).argmin(dim=-1)

    def act(self, sim: BatchedHighway) -> torch.Tensor:
        return self.choose(self.action_values(sim))
