"""Every preset under ``configs/`` ships with a non-editable install: pyproject's package-data globs cover it."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_package_data_covers_every_preset_file():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["drive.configs"]
    shipped = {path for pattern in globs for path in (ROOT / "configs").glob(pattern)}
    presets = set((ROOT / "configs").rglob("*.yaml"))
    assert presets, "no presets found"
    assert presets <= shipped, f"not shipped: {sorted(str(p.relative_to(ROOT)) for p in presets - shipped)}"
