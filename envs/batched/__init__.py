"""The batched tensor simulator of highway-env's highway scenario: N environments stepped at once in torch."""

from drive.envs.batched.config import BatchedConfig, batched_config
from drive.envs.batched.simulator import BatchedHighway

__all__ = ["BatchedConfig", "BatchedHighway", "batched_config"]
