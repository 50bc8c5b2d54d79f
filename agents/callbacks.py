"""Training hooks: periodic evaluation (scalars and a video), resumable checkpoints, reward terms."""

from __future__ import annotations

import math
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Video

from drive.agents.evaluation import evaluate, summarize
from drive.agents.policies import AgentPolicy
from drive.agents.replay import save_replay_buffer
from drive.runs import replay_file_name

EVAL_SEED = 10_000  # evaluation episodes use their own seeds, never the training ones


class PeriodicEvaluation(BaseCallback):
    """Every ``eval_freq`` env steps (counted over all envs), evaluate greedily on a separate env.

    Logs ``eval/mean_return``, ``eval/crash_rate``, ``eval/mean_speed``, ``eval/lane_changes``,
    ``eval/mean_ep_length`` and, from the first episode, ``eval/video``.
    """

    def __init__(self, eval_env: gym.Env, episodes: int, eval_freq: int, video_steps: int = 0):
        super().__init__()
        self.eval_env = eval_env
        self.episodes = episodes
        self.eval_freq = eval_freq
        self.video_steps = video_steps
        self.records: list = []
        self.summary: dict | None = None
        self._next = math.inf
        self._last_eval_step = -1

    def _on_training_start(self) -> None:
        if self.eval_freq > 0:
            self._next = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.eval_freq * max(1, (self.num_timesteps - self._next) // self.eval_freq + 1)
            self.run()
        return True

    def _on_training_end(self) -> None:
        if self._last_eval_step != self.num_timesteps:
            self.run()

    def run(self) -> dict:
        frames: list[np.ndarray] = []

        def grab(env, obs, action, policy):
            if len(frames) < self.video_steps:
                frames.append(env.render())

        self.records = evaluate(self.eval_env, AgentPolicy(self.model), self.episodes, EVAL_SEED, on_step=grab)
        self.summary = summarize(self.records)
        for key, name in [
            ("mean_return", "mean_return"),
            ("crash_rate", "crash_rate"),
            ("mean_speed", "mean_speed"),
            ("mean_lane_changes", "lane_changes"),
            ("mean_length", "mean_ep_length"),
        ]:
            self.logger.record(f"eval/{name}", self.summary[key])
        if frames:
            video = th.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None]  # (1, T, C, H, W)
            fps = self.eval_env.unwrapped.config.get("policy_frequency", 1) * 2
            self.logger.record("eval/video", Video(video, fps=fps), exclude=("stdout", "log", "json", "csv"))
        self.logger.dump(self.num_timesteps)
        self._last_eval_step = self.num_timesteps
        return self.summary


class StepProgress(BaseCallback):
    """A tqdm bar over env steps, the style every other verb's bar has (SB3's own bar is rich's, and its final
    rate is misleading); it starts at the steps a resumed run already has."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total
        self.bar = None

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.num_timesteps, desc="train", unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.model.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class RewardTermsCallback(BaseCallback):
    """Mean of each named reward term of highway-env's ``info["rewards"]`` as ``rollout/reward_<term>``."""

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            for term, value in info.get("rewards", {}).items():
                self.logger.record_mean(f"rollout/reward_{term}", float(value))
        return True


class RunCheckpoints(BaseCallback):
    """``checkpoints/model_<N>_steps.zip`` every ``save_freq`` env steps, with the replay buffer beside it
    (``save_replay``; only its filled rows, compressed: see ``drive.agents.replay``).

    Only the newest replay buffer is kept: a pixel replay buffer holds up to a gigabyte.
    """

    def __init__(self, folder: Path, save_freq: int, save_replay: bool = True):
        super().__init__()
        self.folder = Path(folder)
        self.save_freq = save_freq
        self.save_replay = save_replay
        self._next = math.inf

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.save_freq * max(1, (self.num_timesteps - self._next) // self.save_freq + 1)
            self.save()
        return True

    def save(self) -> Path:
        """Write the checkpoint under a temporary name, then rename: a stop never leaves half a file."""
        steps = self.num_timesteps = self.model.num_timesteps
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.save_replay and getattr(self.model, "replay_buffer", None) is not None:
            buffer = self.folder / replay_file_name(steps)
            save_replay_buffer(self.model, buffer.with_suffix(".partial"))
            os.replace(buffer.with_suffix(".partial"), buffer)
            for old in self.folder.glob(replay_file_name("*")):
                if old != buffer:
                    old.unlink()
        path = self.folder / f"model_{steps}_steps.zip"
        self.model.save(path.with_suffix(".partial"))
        os.replace(path.with_suffix(".partial"), path)
        return path
