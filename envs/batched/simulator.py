"""BatchedHighway: N highway-env highway environments stepped at once as torch tensors."""

from __future__ import annotations

import torch

from drive.envs.batched import constants as C
from drive.envs.batched.collisions import collision_pairs, handle_collisions
from drive.envs.batched.config import BatchedConfig, batched_config
from drive.envs.batched.dynamics import frame_dynamics
from drive.envs.batched.kinematics import KinematicsObserver
from drive.envs.batched.spawn import spawn
from drive.envs.batched.state import TrafficState

# torch.compile fuses each simulation step into a few loops (about 5x faster on CPU) but takes some seconds
# per batch shape to compile: worth it for long runs on large batches only.
COMPILE_FROM = 256
REWARD_TERMS = ("collision_reward", "right_lane_reward", "high_speed_reward", "on_road_reward")


class BatchedHighway:
    """highway-v0 / highway-fast-v0 for ``num_envs`` environments on one device.

    ``step`` takes one DiscreteMetaAction index per env and returns the observation, reward, terminated and
    truncated flags and the named reward terms, all as tensors; it does not reset finished environments
    (``reset(mask)`` does, so that a wrapper can read the terminal observation first).
    """

    def __init__(
        self,
        num_envs: int,
        variant: str = "highway-fast",
        config: dict | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        compile: bool | str = "auto",
    ):
        self.config: BatchedConfig = batched_config(variant, config)
        self.variant, self.user_config = variant, dict(config or {})  # to build a copy (a planner's model)
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.num_vehicles = self.config.vehicles_count + 1
        self.is_idm = torch.ones((num_envs, self.num_vehicles), dtype=torch.bool, device=self.device)
        self.is_idm[:, 0] = False
        self.is_ego = ~self.is_idm
        # highway-fast-v0 turns collision checks off for every vehicle but the ego.
        check = torch.ones(self.num_vehicles, dtype=torch.bool, device=self.device)
        check[1:] = self.config.others_check_collisions
        self.collision_pairs = collision_pairs(check)
        self.target_speeds = torch.tensor(C.TARGET_SPEEDS, dtype=dtype, device=self.device)
        self.compiled = num_envs >= COMPILE_FROM if compile == "auto" else bool(compile)
        self.observer = self._make_observer()
        self.seeds = torch.arange(num_envs, device=self.device, dtype=torch.long) + seed
        self.episodes = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.state: TrafficState = spawn(self.config, self.seeds, self.episodes, dtype)
        self._frame = torch.compile(frame_dynamics, dynamic=False) if self.compiled else frame_dynamics

    def _make_observer(self):
        observation = self.config.observation
        if observation["type"] == "Kinematics":
            return KinematicsObserver(observation, self.config.lanes_count)
        from drive.envs.batched.render import FrameObserver

        return FrameObserver(observation, self.config, self.num_envs, self.device)

    @property
    def observation_space(self):
        return self.observer.space

    def seed(self, seed: int) -> None:
        """Environment i draws from stream ``seed + i``, from its next reset on."""
        self.seeds = torch.arange(self.num_envs, device=self.device, dtype=torch.long) + seed
        self.episodes.zero_()

    def reset(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """New traffic in the environments of ``mask`` (all if None); returns every env's observation."""
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device) if mask is None else mask
        self.episodes = self.episodes + mask.long()
        index = torch.nonzero(mask).flatten()
        fresh = spawn(self.config, self.seeds[index], self.episodes[index], self.dtype)
        self.state.assign_at(index, fresh)
        return self.observer.reset(self.state, mask)

    def step(self, actions: torch.Tensor):
        """One policy step: ``frames_per_action`` simulation steps with the ego's meta-action applied first."""
        reward, terminated, truncated, terms = self.advance(actions)
        return self.observer.observe(self.state), reward, terminated, truncated, terms

    def advance(self, actions: torch.Tensor):
        """``step`` without the observation: what a planner's look-ahead needs, at a fraction of the cost."""
        s, config = self.state, self.config
        actions = torch.as_tensor(actions, device=self.device).long().reshape(self.num_envs)
        s.time = s.time + 1.0 / config.policy_frequency
        for frame in range(config.frames_per_action):
            if frame == 0:
                self._apply_meta_action(actions)
            s = self.state = TrafficState(
                *self._frame(s.tensors(), self.is_idm, self.is_ego, config.dt, config.lanes_count)
            )
            handle_collisions(s, config.dt, self.collision_pairs)
            s.steps = s.steps + 1
        terms = self.reward_terms()
        reward = self.reward(terms)
        ego_crashed = s.crashed[:, 0]
        terminated = ego_crashed | (config.offroad_terminal & (terms["on_road_reward"] == 0))
        truncated = s.time >= config.duration
        return reward, terminated, truncated, terms

    def _apply_meta_action(self, actions: torch.Tensor) -> None:
        """MDPVehicle.act / ControlledVehicle.act with a meta-action: new target speed or target lane."""
        s, lanes = self.state, self.config.lanes_count
        faster, slower = actions == C.FASTER, actions == C.SLOWER
        speed = s.speed[:, 0]
        ts = self.target_speeds
        index = torch.round((speed - ts[0]) / (ts[-1] - ts[0]) * (len(ts) - 1)).clamp(0, len(ts) - 1).long()
        index = (index + faster.long() - slower.long()).clamp(0, len(ts) - 1)
        s.speed_index = torch.where(faster | slower, index, s.speed_index)
        s.target_speed[:, 0] = torch.where(faster | slower, ts[index], s.target_speed[:, 0])
        side = (actions == C.LANE_RIGHT).long() - (actions == C.LANE_LEFT).long()
        target = (s.target_lane[:, 0] + side).clamp(0, lanes - 1)
        x, y = s.position[:, 0, 0], s.position[:, 0, 1]
        reachable = ((y - C.LANE_WIDTH * target).abs() <= 2 * C.LANE_WIDTH) & (x >= 0) & (x < C.ROAD_LENGTH + C.LENGTH)
        s.target_lane[:, 0] = torch.where((side != 0) & reachable, target, s.target_lane[:, 0])

    def reward_terms(self) -> dict[str, torch.Tensor]:
        """HighwayEnv._rewards for the ego."""
        s, config = self.state, self.config
        forward = s.speed[:, 0] * torch.cos(s.heading[:, 0])
        low, high = config.reward_speed_range
        x, y = s.position[:, 0, 0], s.position[:, 0, 1]
        lateral = y - C.LANE_WIDTH * s.lane[:, 0]
        on_road = (lateral.abs() <= C.LANE_WIDTH / 2) & (x >= -C.LENGTH) & (x < C.ROAD_LENGTH + C.LENGTH)
        return {
            "collision_reward": s.crashed[:, 0].to(self.dtype),
            "right_lane_reward": s.target_lane[:, 0].to(self.dtype) / max(config.lanes_count - 1, 1),
            "high_speed_reward": ((forward - low) / (high - low)).clamp(0, 1),
            "on_road_reward": on_road.to(self.dtype),
        }

    def reward(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """HighwayEnv._reward: weighted sum, mapped to [0, 1], times on_road."""
        config = self.config
        weights = {
            "collision_reward": config.collision_reward,
            "right_lane_reward": config.right_lane_reward,
            "high_speed_reward": config.high_speed_reward,
        }
        reward = sum(weights[name] * terms[name] for name in weights)
        if config.normalize_reward:
            low, high = config.collision_reward, config.high_speed_reward + config.right_lane_reward
            reward = (reward - low) / (high - low)
        return reward * terms["on_road_reward"]


__all__ = ["REWARD_TERMS", "BatchedHighway"]
