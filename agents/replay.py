"""Replay buffers on disk: only the filled rows, gzip-compressed, in stable-baselines3's pickle format.

SB3's ``save_replay_buffer`` pickles the whole preallocated buffer: after the quickstart's 2,000 pixel steps that
is 983 MB of which 87 % are zeros. Here the arrays are cut to the rows written so far before pickling and
grown back to the buffer's size after loading, and the pickle goes through gzip (frames are mostly road).
``model.load_replay_buffer`` cannot read these files; ``load_replay_buffer`` below can.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from drive.errors import DriveError

ROW_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def save_replay_buffer(model, path: Path) -> None:
    buffer = model.replay_buffer
    rows = buffer.buffer_size if buffer.full else buffer.pos
    full = {name: getattr(buffer, name) for name in ROW_ARRAYS if hasattr(buffer, name)}
    try:
        for name, array in full.items():
            setattr(buffer, name, array[:rows])
        with gzip.open(path, "wb", compresslevel=1) as file:
            pickle.dump(buffer, file, protocol=pickle.HIGHEST_PROTOCOL)  # as SB3's save_to_pkl
    finally:
        for name, array in full.items():
            setattr(buffer, name, array)


def load_replay_buffer(model, path: Path) -> None:
    try:
        with gzip.open(path, "rb") as file:
            buffer = pickle.load(file)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError) as err:
        raise DriveError(
            f"replay buffer {str(path)!r} is unreadable ({type(err).__name__}); delete it to resume with an "
            "empty buffer"
        ) from None
    for name in ROW_ARRAYS:
        array = getattr(buffer, name, None)
        if array is not None and len(array) < buffer.buffer_size:
            grown = np.zeros((buffer.buffer_size, *array.shape[1:]), dtype=array.dtype)
            grown[: len(array)] = array
            setattr(buffer, name, grown)
    buffer.device = model.device
    model.replay_buffer = buffer
