"""How many torch threads a run uses: on a machine whose cores another process keeps busy, torch's threads spin
and wait for each other at every operation (a quickstart beside a training ran 7 to 12 times slower), so a run
takes only the cores that are free when it starts."""

from __future__ import annotations

import os
import time


def usable_cores() -> int:
    """The cores this process may run on (its affinity; all of them where the OS cannot say)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def busy_cores(sample_s: float = 0.25) -> float | None:
    """Cores' worth of CPU time other processes are using now, from ``/proc/stat`` sampled twice (Linux);
    None where it cannot be read."""

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as file:
                values = [int(v) for v in file.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle and iowait
        return sum(values), idle

    first = read()
    time.sleep(sample_s)
    second = read()
    if first is None or second is None or second[0] == first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (os.cpu_count() or 1) * (total - idle) / total


def choose_threads(setting: int) -> int:
    """``train.threads``: N as given; 0 (auto): the usable cores that are not busy now, at least 1."""
    if setting > 0:
        return setting
    busy = busy_cores()
    cores = usable_cores()
    return cores if busy is None else max(1, min(cores, round(cores - busy)))


def use_threads(setting: int) -> int:
    """Sets torch's intra-op threads for this process (see ``choose_threads``); returns the number."""
    import torch

    threads = choose_threads(setting)
    torch.set_num_threads(threads)
    return threads
