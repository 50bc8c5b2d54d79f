"""train.threads: as given, or (0) the cores that other processes leave free when a run starts."""

import threading
import time

import pytest

from drive.config import resolve
from drive.cores import busy_cores, choose_threads, usable_cores
from drive.errors import DriveError


def test_a_given_thread_count_is_kept():
    assert choose_threads(3) == 3


def test_auto_takes_between_one_and_the_usable_cores():
    assert 1 <= choose_threads(0) <= usable_cores()


def test_busy_cores_sees_a_spinning_thread():
    stop = time.monotonic() + 1.0
    spinner = threading.Thread(target=lambda: [None for _ in iter(lambda: time.monotonic() > stop, True)])
    spinner.start()
    busy = busy_cores(0.5)
    spinner.join()
    assert busy is not None and 0.5 <= busy <= usable_cores() + 0.01


def test_a_negative_thread_count_is_refused():
    with pytest.raises(DriveError, match=r"train\.threads must be at least 0"):
        resolve("highway", sets=["train.threads=-1"])
