"""The batched simulator as a stable-baselines3 ``VecEnv``: SB3's DQN and PPO train on it unchanged.

Finished environments are reset in the same step (SB3's convention): their info holds the
``terminal_observation``, ``TimeLimit.truncated``, SB3's ``episode`` statistics (return ``r``, length ``l``,
time ``t``) and ours (``crashed``, ``mean_speed``, ``distance``, ``lane_changes``), and the episode means of
the reward terms under ``rewards``. Environments that did not finish get empty infos.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from drive.envs.batched.simulator import REWARD_TERMS, BatchedHighway
from drive.envs.one_pool import OnePoolVecEnv


class BatchedVecEnv(OnePoolVecEnv):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}
    SHARED = "the batched envs: they share one simulator, so it applies to all of them"

    def __init__(
        self,
        num_envs: int,
        variant: str = "highway-fast",
        config: dict | None = None,
        device: str = "cpu",
        seed: int = 0,
        render_mode: str | None = None,
    ):
        self.sim = BatchedHighway(num_envs, variant, config, device=device, seed=seed)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.sim.config.policy_frequency}
        self._actions: torch.Tensor | None = None
        self._last_obs: torch.Tensor | None = None
        self._start = time.time()
        self._stats = self._zero_stats()
        super().__init__(num_envs, self.sim.observation_space, gym.spaces.Discrete(5))

    def _zero_stats(self) -> dict[str, torch.Tensor]:
        zeros = lambda dtype=torch.float64: torch.zeros(self.sim.num_envs, dtype=dtype, device=self.sim.device)  # noqa: E731
        stats = {name: zeros() for name in ("return", "speed", "distance")}
        stats.update(length=zeros(torch.long), lane_changes=zeros(torch.long))
        stats.update({f"term_{name}": zeros() for name in REWARD_TERMS})
        return stats

    # --- VecEnv API --------------------------------------------------------------------------------------

    def reset(self):
        if self._seeds[0] is not None:
            self.sim.seed(int(self._seeds[0]))
        self._reset_seeds()
        for value in self._stats.values():
            value.zero_()
        self._last_obs = self.sim.reset()
        return self._to_numpy(self._last_obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(np.asarray(actions), device=self.sim.device)

    def step_wait(self):
        sim, stats = self.sim, self._stats
        before = sim.state.position[:, 0].clone(), sim.state.lane[:, 0].clone()
        obs, reward, terminated, truncated, terms = sim.step(self._actions)
        self._accumulate(reward, terms, *before)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if bool(done.any()):
            finished = torch.nonzero(done).flatten()
            self._fill_infos(infos, finished, obs, terminated, truncated)
            for value in stats.values():
                value[done] = 0
            obs = sim.reset(done)
        self._last_obs = obs
        return self._to_numpy(obs), reward.float().cpu().numpy(), done.cpu().numpy(), infos

    def _accumulate(self, reward, terms, position_before, lane_before) -> None:
        s, stats = self.sim.state, self._stats
        stats["return"] += reward.double()
        stats["length"] += 1
        stats["speed"] += s.speed[:, 0].double()
        stats["distance"] += torch.linalg.norm(s.position[:, 0] - position_before, dim=-1).double()
        stats["lane_changes"] += (s.lane[:, 0] != lane_before).long()
        for name in REWARD_TERMS:
            stats[f"term_{name}"] += terms[name].double()

    def _fill_infos(self, infos, finished, obs, terminated, truncated) -> None:
        stats = {k: v[finished].cpu().numpy() for k, v in self._stats.items()}
        terminal = self._to_numpy(obs[finished]).copy()
        crashed = self.sim.state.crashed[finished, 0].cpu().numpy()
        timeout = (truncated & ~terminated)[finished].cpu().numpy()
        elapsed = round(time.time() - self._start, 6)
        for k, i in enumerate(finished.tolist()):
            length = int(stats["length"][k])
            infos[i] = {
                "terminal_observation": terminal[k],
                "TimeLimit.truncated": bool(timeout[k]),
                "episode": {
                    "r": float(stats["return"][k]),
                    "l": length,
                    "t": elapsed,
                    "crashed": bool(crashed[k]),
                    "mean_speed": float(stats["speed"][k] / length),
                    "distance": float(stats["distance"][k]),
                    "lane_changes": int(stats["lane_changes"][k]),
                },
                "rewards": {name: float(stats[f"term_{name}"][k] / length) for name in REWARD_TERMS},
            }

    def last_obs_numpy(self) -> np.ndarray:
        """The observation the last ``reset`` or ``step`` returned (valid for two more steps, as those are)."""
        return self._to_numpy(self._last_obs)

    @staticmethod
    def _to_numpy(obs: torch.Tensor) -> np.ndarray:
        return obs.cpu().numpy()

    def close(self) -> None:
        pass

    def get_images(self) -> list[np.ndarray]:
        """Each env's newest frame as RGB (pixels preset only)."""
        if self._last_obs is None or self._last_obs.dim() != 4:
            return [None] * self.num_envs
        newest = self._last_obs[:, -1].transpose(1, 2).cpu().numpy()  # (N, H, W)
        return list(np.repeat(newest[..., None], 3, axis=-1))
