"""Everything that decides and learns: SB3 agents, rule-based baselines, evaluation, callbacks."""

from drive.agents.algos import ALGOS, build_model

__all__ = ["ALGOS", "build_model"]
