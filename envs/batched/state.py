"""The traffic state of N environments as tensors; vehicle slot 0 is the ego (highway-env's ``road.vehicles[0]``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class TrafficState:
    position: torch.Tensor  # (N, V, 2) world x (along the road), y (across, lane i centred at 4 i) [m]
    heading: torch.Tensor  # (N, V) [rad]
    speed: torch.Tensor  # (N, V) [m/s]
    lane: torch.Tensor  # (N, V) long: closest lane index
    target_lane: torch.Tensor  # (N, V) long
    target_speed: torch.Tensor  # (N, V) [m/s]
    steering: torch.Tensor  # (N, V) last low-level command [rad]
    acceleration: torch.Tensor  # (N, V) last low-level command [m/s2]
    crashed: torch.Tensor  # (N, V) bool
    impact: torch.Tensor  # (N, V, 2) displacement applied at the next step (highway-env's ``impact``)
    has_impact: torch.Tensor  # (N, V) bool
    delta: torch.Tensor  # (N, V) IDM acceleration exponent (randomised per vehicle)
    timer: torch.Tensor  # (N, V) IDM lane-change timer [s]
    speed_index: torch.Tensor  # (N,) long: the ego's index in the target speeds
    time: torch.Tensor  # (N,) [s] since reset
    steps: torch.Tensor  # (N,) long: simulation steps since reset

    @property
    def num_envs(self) -> int:
        return self.heading.shape[0]

    @property
    def num_vehicles(self) -> int:
        return self.heading.shape[1]

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def clone(self) -> TrafficState:
        return TrafficState(**{f.name: getattr(self, f.name).clone() for f in fields(self)})

    def assign_at(self, index: torch.Tensor, other: TrafficState) -> None:
        """Environments ``index`` take ``other``'s states (one per index), in place."""
        for f in fields(self):
            getattr(self, f.name)[index] = getattr(other, f.name)

    def select(self, index) -> TrafficState:
        return TrafficState(**{f.name: getattr(self, f.name)[index] for f in fields(self)})
