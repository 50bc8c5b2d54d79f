"""Choosing EnvPool for a scenario where it differs from highway-env warns, with what differs (drive[envpool])."""

import json
import warnings

import pytest

from drive.cli import main
from drive.envs import make_venv
from drive.envs.envpool_caveats import caveat
from drive.errors import EngineWarning

pytest.importorskip("envpool")


def test_known_differences_are_said_and_nothing_is_made_up(tmp_path):
    nothing = tmp_path / "absent.json"
    assert caveat("highway", nothing) is None and caveat("parking", nothing) is None
    assert "ignores the seed" in caveat("roundabout", nothing)
    assert "no other vehicles" in caveat("racetrack", nothing)


def test_measured_differences_are_quoted_with_their_figures(tmp_path):
    path = tmp_path / "agreement.json"
    merge = {"episodes": 500, "date": "2026-11-30", "command": "c"}
    merge["differences"] = ["random actions, return 1 against 2"]
    path.write_text(json.dumps({"merge": merge, "highway": {**merge, "differences": []}}))
    assert caveat("merge", path) == (
        "EnvPool's merge differs from highway-env (500 episodes a side, 2026-11-30): random actions, return 1 "
        "against 2; see docs/envpool.md, and evaluate on highway-env"
    )
    assert caveat("highway", path) is None  # measured, and nothing differed


def test_making_a_pool_that_differs_warns_and_one_that_does_not_is_silent(monkeypatch, tmp_path):
    monkeypatch.setattr("drive.envs.envpool_caveats.AGREEMENT_FILE", tmp_path / "absent.json")
    with pytest.warns(EngineWarning, match="EnvPool's intersection ignores the seed"):
        make_venv("intersection", "kinematics", 1, backend="envpool", seed=0).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineWarning)
        make_venv("highway", "kinematics", 1, backend="envpool", seed=0).close()


def test_the_command_line_prints_the_warning_as_one_line(capsys):
    code = main(["evaluate", "--policy", "random", "--env", "roundabout", "--backend", "envpool", "--episodes", "1",
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0
    (line,) = [line for line in err.splitlines() if "EnvPool" in line]
    assert line.startswith("warning: EnvPool's roundabout ignores the seed") and "Warning" not in line
