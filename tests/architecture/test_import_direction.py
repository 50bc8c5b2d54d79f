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


# Optional extras (pyproject's optional-dependencies) that the core imports only inside the functions that need them,
# so that a plain install imports: EnvPool (the drive[envpool] extra) is imported by --backend envpool alone.
# (Ray's rule is checked at run time, in tests/sweep/test_spec.py.)
EXTRAS = {"envpool": {"drive.envs.envpool_vec"}}  # extra -> the modules that may import it when they are imported


def _module_level_imports(path: Path) -> set[str]:
    """Top-level package names a module imports when it is imported (not those inside functions)."""
    found: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name.split(".")[0] for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module.split(".")[0])
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_the_core_imports_optional_extras_only_inside_functions(extra):
    wrong = [m for m, path in _modules() if m not in EXTRAS[extra] and extra in _module_level_imports(path)]
    assert not wrong, f"{wrong} import {extra} at module level; import it inside the function that needs it"


def test_the_extras_rule_would_catch_a_module_level_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("try:\n    import envpool.highway\nexcept ImportError:\n    pass\n\ndef f():\n    import ray\n")
    assert _module_level_imports(bad) == {"envpool"}


def test_importing_the_core_loads_no_optional_extra():
    import subprocess
    import sys

    code = (
        "import sys; import drive.cli, drive.envs, drive.envs.factory, drive.agents.training;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(EXTRAS)!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
