"""What a user should know when choosing EnvPool for a scenario: how it differs from highway-env.

Two sources, both read without importing EnvPool:

* ``KNOWN``: differences of EnvPool 1.2.5's ports that its code shows and our tests pin (tests/envs/test_envpool.py):
  three scenarios ignore their seeds, racetrack has no traffic.
* ``envpool_agreement.json`` beside this module: the metrics that ``benchmarks/envpool_agreement.py`` measured to
  differ from highway-env (95 % intervals that do not overlap), with their differences and the command that
  measured them. The benchmark writes it (``--verdicts``); absent, only ``KNOWN`` is said.

``make_envpool_vec_env`` warns with ``caveat(scenario)`` (an ``EngineWarning``; the command line prints it as one
``warning:`` line) so that a user training on a port that disagrees hears it before the run, with the figures.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

AGREEMENT_FILE = Path(__file__).with_name("envpool_agreement.json")
SEEDLESS = "ignores the seed (every episode starts the same: a policy sees one traffic situation)"
KNOWN = {
    "roundabout": SEEDLESS,
    "intersection": SEEDLESS,
    "racetrack": "ignores the seed and has no other vehicles (highway-env's racetrack has at least one)",
}


@functools.cache
def measured(path: Path) -> dict:
    """The benchmark's summary, ``{scenario: {"episodes", "date", "command", "differences": [str, ...]}}`` for
    each scenario it measured, or an empty dict where it has not been written."""
    return json.loads(path.read_text()) if path.is_file() else {}


def caveat(scenario: str, path: Path | None = None) -> str | None:
    """One line on how EnvPool's ``scenario`` differs from highway-env, or None where nothing is known to differ;
    ``path``: the measured summary (default ``AGREEMENT_FILE``)."""
    parts = [KNOWN[scenario]] if scenario in KNOWN else []
    summary = measured(path or AGREEMENT_FILE).get(scenario, {})
    if summary.get("differences"):
        when = f"{summary['episodes']} episodes a side, {summary['date']}"
        parts.append(f"differs from highway-env ({when}): " + "; ".join(summary["differences"]))
    if not parts:
        return None
    return f"EnvPool's {scenario} {' and '.join(parts)}; see docs/envpool.md, and evaluate on highway-env"
