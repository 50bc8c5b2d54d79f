"""Everything that simulates: scenario table, Gymnasium ids, vectorised env factory."""

from drive.envs.factory import make_env, make_venv
from drive.envs.scenarios import OBS_PRESETS, SCENARIOS, env_id

__all__ = ["OBS_PRESETS", "SCENARIOS", "env_id", "make_env", "make_venv"]
