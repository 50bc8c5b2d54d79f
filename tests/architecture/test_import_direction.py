"""Imports flow one way (docs/design.md, "Layers"); every import counts, those inside functions too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"drive": "drive", "envs": "drive.envs", "agents": "drive.agents", "perception": "drive.perception"}

# What each part may import besides itself, by module prefix.
ALLOWED = {
    "drive.errors": set(),
    "drive.cores": set(),
    "drive.config": {
        "drive.errors",
        "drive.envs.scenarios",
        "drive.envs.batched.constants",
        "drive.agents.algos",
        "drive.perception.encoders",
    },  # checks names against the parts' registries, in validate only
    "drive.runs": {"drive.errors", "drive.config"},
    "drive.envs": {"drive.errors", "drive.config"},
    "drive.perception": {"drive.errors", "drive.config", "drive.runs", "drive.envs"},
    "drive.agents": {"drive.errors", "drive.config", "drive.cores", "drive.runs", "drive.envs", "drive.perception"},
}
# The two perception verbs that drive or read a trained agent (collect-frames --policy RUN, probe --encoder RUN).
EXCEPTIONS = {"drive.perception.collect": {"drive.agents"}, "drive.perception.probe_run": {"drive.agents"}}
# The command line and the sweeps it runs (drive sweep trains runs): may import anything.
TOP = ("drive.cli", "drive.bench", "drive.sweep", "drive.__init__", "drive.__main__")


def _modules():
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield package + "." + ".".join(path.relative_to(ROOT / folder).with_suffix("").parts), path


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("drive"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("drive")}
    return found


def _part(module: str) -> str:
    return next(p for p in sorted(ALLOWED, key=len, reverse=True) if module == p or module.startswith(p + "."))


@pytest.mark.parametrize(("module", "path"), [m for m in _modules() if not m[0].startswith(TOP)], ids=lambda v: str(v))
def test_imports_flow_one_way(module, path):
    part = _part(module)
    allowed = ALLOWED[part] | EXCEPTIONS.get(module, set())
    wrong = sorted(
        i
        for i in _imports(path)
        if not (i == part or i.startswith(part + ".")) and not any(i == a or i.startswith(a + ".") for a in allowed)
    )
    assert not wrong, f"{module} imports {wrong}; its part {part} may import {sorted(allowed)}"


def test_the_rule_would_catch_envs_importing_agents(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from drive.agents.baselines import IDMPolicy\n")
    assert "drive.agents.baselines" in _imports(bad) and not ALLOWED["drive.envs"] & {"drive.agents"}
