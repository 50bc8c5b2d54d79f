"""Is the agent any good? Its final evaluation beside the IDM/MOBIL driver's on the same episodes."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from drive.agents.baselines import IDMPolicy
from drive.agents.callbacks import EVAL_SEED
from drive.agents.evaluation import evaluate, summarize
from drive.agents.run_logger import log_reference
from drive.envs import make_env
from drive.envs.factory import without_camera
from drive.errors import DriveError

ROWS = (
    ("mean_return", "return", "{:.2f}"),
    ("crash_rate", "crash rate", "{:.1%}"),
    ("mean_speed", "speed", "{:.1f} m/s"),
)


def idm_summary(config, episodes: int) -> dict | None:
    """IDM/MOBIL on the evaluation seeds the agent was judged on (None where it cannot drive the scenario:
    ``IDMPolicy`` refuses continuous actions)."""
    # IDM reads the road, not the observation: the cheap kinematics preset will do, without the pixels camera.
    with closing(make_env(config.env.name, "kinematics", config=without_camera(config.env.config))) as env:
        try:
            idm = IDMPolicy(env)
        except DriveError:
            return None
        return summarize(evaluate(env, idm, episodes, EVAL_SEED))


def idm_reference(config, tb_folder: Path, last_step: int) -> dict | None:
    """IDM on the agent's evaluation episodes, also drawn in TensorBoard as a flat line up to ``last_step``."""
    idm = idm_summary(config, config.train.eval_episodes)
    log_reference(tb_folder, idm, 0, last_step)
    return idm


def verdict_table(agent: dict, idm: dict | None) -> str:
    """A few lines: the agent's return, crash rate and speed beside IDM's."""
    episodes = agent.get("episodes", "?")
    lines = [f"final evaluation on highway-env, {episodes} episodes (evaluation seeds):"]
    lines.append(f"  {'':<12}{'agent':>12}{'IDM driver':>14}")
    for key, label, fmt in ROWS:
        ours = fmt.format(agent[key])
        theirs = fmt.format(idm[key]) if idm else "n/a"
        lines.append(f"  {label:<12}{ours:>12}{theirs:>14}")
    return "\n".join(lines)
