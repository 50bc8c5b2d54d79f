"""A stable-baselines3 ``VecEnv`` whose envs are one engine (our batched simulator, an EnvPool pool): attributes and
methods belong to that engine, so they are read or called once and reach every env, never a subset."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from drive.errors import DriveError


class OnePoolVecEnv(VecEnv):
    # how a refused subset is explained, after "<what> on some of ": says what the envs share
    SHARED = "the envs: they are one engine, so it reaches all of them"

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        self._all_envs(indices, "set_attr")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        self._all_envs(indices, "env_method")
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _all_envs(self, indices, what: str) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise DriveError(f"{what} on some of {self.SHARED}; pass indices=None")
