"""drive: driving agents that see the road through rendered frames.

Importing the package registers the ``drive/<scenario>-<obs>-v0`` Gymnasium ids (idempotent).
"""

from drive.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
