"""The logger of a run folder: TensorBoard and ``progress.csv`` under ``tb/``, continued (not truncated) on resume."""

from __future__ import annotations

import csv
from pathlib import Path

from stable_baselines3.common.logger import CSVOutputFormat, Logger, configure


def run_logger(folder: Path) -> Logger:
    """SB3's ``configure(folder, ["tensorboard", "csv"])``, keeping the rows of an earlier ``progress.csv``.

    SB3 opens ``progress.csv`` with mode ``w+``: a resumed run would lose its history. The old rows are put back
    in the new file and its header becomes the writer's known keys, so that new keys extend it as SB3 does.
    """
    path = Path(folder) / "progress.csv"
    earlier = path.read_text() if path.is_file() else ""
    logger = configure(str(folder), ["tensorboard", "csv"])
    if earlier.strip():
        writer = next(f for f in logger.output_formats if isinstance(f, CSVOutputFormat))
        writer.keys = next(csv.reader([earlier.splitlines()[0]]))
        writer.file.write(earlier if earlier.endswith("\n") else earlier + "\n")
        writer.file.flush()
    return logger


COMPARED = (("mean_return", "return"), ("crash_rate", "crash rate"), ("mean_speed", "speed (m/s)"))


def log_reference(folder: Path, idm: dict | None, first_step: int, last_step: int) -> None:
    """The IDM driver's evaluation as flat lines (``reference/idm_*``) across the training steps, and a custom-
    scalars layout ("agent vs IDM") that draws each beside the agent's ``eval/*`` curve on one chart."""
    if idm is None:
        return
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for key, _ in COMPARED:
            for step in sorted({first_step, last_step}):
                writer.add_scalar(f"reference/idm_{key}", idm[key], step)
        layout = {label: ["Multiline", [f"eval/{key}", f"reference/idm_{key}"]] for key, label in COMPARED}
        writer.add_custom_scalars({"agent vs IDM (highway-env, evaluation seeds)": layout})
