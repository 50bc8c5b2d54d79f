"""A sweep's summary: one row per configuration, mean and 95 % interval over its seeds, as a table, CSV, JSON
and TensorBoard's HParams view."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from drive.sweep import REPORTED, SweepSpec

# Student's t quantiles (two-sided 95 %) by degrees of freedom: seeds are few, the normal 1.96 would be too narrow.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)


def interval95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % interval (Student's t; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = _T95[n - 2] if n - 2 < len(_T95) else 1.96
    return mean, t * sd / math.sqrt(n)


def summarize(records: list[dict], spec: SweepSpec) -> list[dict]:
    """One row per configuration: runs, failed trials, and mean with 95 % half-width of each reported figure
    over its finished runs; a search's rows are ordered best first by its metric."""
    rows: dict[str, dict] = {}
    for record in records:
        row = rows.setdefault(record["label"], {"configuration": record["label"], "runs": [], "failed": 0})
        row["params"] = record.get("params", {})
        if record.get("error"):
            row["failed"] += 1
        row["runs"].extend(record.get("runs", []))
    out = []
    for row in rows.values():
        figures = {}
        for key in REPORTED:
            values = [run[key] for run in row["runs"]]
            if values:
                figures[key], figures[f"{key}_ci95"] = interval95(values)
        counts = {"seeds": len(row["runs"]), "failed": row["failed"]}
        out.append({"configuration": row["configuration"], **counts, **figures, "params": row["params"]})
    if spec.is_search:
        key = spec.metric.split("/", 1)[1]
        sign = -1 if spec.mode == "max" else 1
        out.sort(key=lambda r: sign * r[key] if key in r else math.inf)
    return out


def write_summary(folder: Path, rows: list[dict]) -> None:
    (folder / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    columns = ["configuration", "seeds", "failed"] + [k for key in REPORTED for k in (key, f"{key}_ci95")]
    with (folder / "summary.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_hparams(folder: Path, rows: list[dict]) -> None:
    """TensorBoard's HParams view: one entry per configuration, its values beside its mean figures."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(folder / "tb") as writer:
        for row in rows:
            params = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in row["params"].items()}
            figures = {f"sweep/{key}": row[key] for key in REPORTED if key in row}
            if figures:
                writer.add_hparams(
                    params or {"configuration": row["configuration"]}, figures, run_name=row["configuration"]
                )


def summary_table(rows: list[dict]) -> str:
    """The summary as a printable table: mean ± 95 % half-width over seeds."""
    lines = [f"{'configuration':<44} {'seeds':>5} {'return':>15} {'crash rate':>15} {'speed (m/s)':>15}"]
    for row in rows:
        cells = []
        for key in REPORTED:
            cells.append(f"{row[key]:.2f} ± {row[key + '_ci95']:.2f}" if key in row else "-")
        failed = f"  ({row['failed']} failed)" if row["failed"] else ""
        lines.append(
            f"{row['configuration'][:44]:<44} {row['seeds']:>5} " + " ".join(f"{c:>15}" for c in cells) + failed
        )
    return "\n".join(lines)
