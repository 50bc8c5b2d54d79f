"""Where the EnvPool VecEnv's time goes: EnvPool's own step against what our wrapper adds to it (kinematics).

    python benchmarks/envpool_wrapper.py --scenario highway --n-envs 1024

On one pool, random actions: EnvPool's ``send``/``recv`` alone; the same plus ``debug_states`` of every env (where
the wrapper reads the ego's position and lane for the episode statistics); plus the per-env info dicts SB3 needs;
and the wrapper's whole ``step`` (same-step resets included). Env steps per second count transitions only:
EnvPool's raw loop spends a step on each reset (reward 0, ``elapsed_step`` 0), which is not one. The stages take
turns, ``--repeats`` times each for ``--seconds``, and the median is reported, so that a machine busy for a
moment hurts every stage alike. Kinematics only, and not racetrack, whose table the wrapper builds from
``debug_states`` (pixels: the wrapper renders and converts every frame, which EnvPool's raw step does not).
Needs the ``drive[envpool]`` extra. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from drive.envs import make_venv
from drive.envs.envpool_vec import step_info


def rate(step, seconds: float) -> float:
    """Env steps per second of ``step()`` (which returns the env steps it made) over about ``seconds``."""
    for _ in range(3):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="highway")
    parser.add_argument("--n-envs", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.scenario == "racetrack":
        parser.error("racetrack's table is built from debug_states by the wrapper: its raw step is not comparable")
    venv = make_venv(args.scenario, "kinematics", args.n_envs, backend="envpool", seed=0)
    venv.reset()
    pool, ids, space, rng = venv.pool, venv.pool.all_env_ids, venv.action_space, np.random.default_rng(0)

    def actions():
        if hasattr(space, "n"):  # the discrete meta-actions
            return rng.integers(0, space.n, args.n_envs)
        return rng.uniform(-1, 1, (args.n_envs, *space.shape)).astype(np.float32)

    def raw(states: bool = False, infos: bool = False) -> int:
        pool.send(actions())
        *_, info = pool.recv()
        if states:
            pool.debug_states(ids)
        if infos:
            [step_info(info, k) for k in range(args.n_envs)]
        return int(np.count_nonzero(info["elapsed_step"] > 0))  # a step that only reset an env is no transition

    def wrapped() -> int:
        venv.step(actions())
        return args.n_envs

    stages = {
        "envpool send/recv": raw,
        "+ debug_states": lambda: raw(states=True),
        "+ info dicts": lambda: raw(states=True, infos=True),
        "our VecEnv step": wrapped,
    }
    measured: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(args.repeats):
        for name, step in stages.items():
            if name == "our VecEnv step":
                venv.reset()  # the raw steps bypassed the wrapper's bookkeeping
            measured[name].append(rate(step, args.seconds))
    setting = {"scenario": args.scenario, "obs": "kinematics", "n_envs": args.n_envs, "repeats": args.repeats}
    medians = {name: round(statistics.median(rates)) for name, rates in measured.items()}
    print(json.dumps({**setting, "steps_per_s": medians}, indent=2))


if __name__ == "__main__":
    main()
