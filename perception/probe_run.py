"""``drive probe``: compare encoders by linear probes on one frame store.

Every target of ``drive.perception.truth.TARGETS`` the store holds is probed; an older store's missing targets
(the rollout's action and reward, the IDM driver's action) are skipped and named under the table and in
``probe.json``'s ``skipped``.
"""

from __future__ import annotations

import json
from pathlib import Path

from drive.errors import DriveError
from drive.perception.checkpoint import check_fits, frame_space, load_encoder, make_encoder
from drive.perception.encoders import ENCODERS
from drive.perception.frame_store import FrameStore
from drive.perception.probe import (
    HELD_OUT_EVERY,
    features,
    format_probe_table,
    held_out,
    missing_targets,
    probe_scores,
)

VALID_ENCODERS = ", ".join(["random", *(f"random:{n}" for n in ENCODERS), "an encoder.pt file", "a run folder"])


def random_encoder(spec: str, shape) -> tuple[str, object]:
    """``random`` (a Nature CNN, as before) or ``random:ARCH``: an untrained encoder, seed 0, the baseline a
    pretrained encoder of the same architecture must beat."""
    name = spec.partition(":")[2] or "nature"
    if name not in ENCODERS:
        raise DriveError(f"unknown encoder {spec!r}; valid: {VALID_ENCODERS}")
    return spec, make_encoder(name, shape, seed=0)  # the architecture's own width (Nature 512, compact 256)


def resolve_encoder(spec: str, shape) -> tuple[str, object]:
    """(label, encoder) for ``random[:ARCH]``, an ``encoder.pt`` or a run folder (its agent's CNN)."""
    if spec == "random" or spec.startswith("random:"):
        return random_encoder(spec, shape)
    path = Path(spec)
    if path.is_dir():
        from drive.agents.algos import frame_encoders
        from drive.agents.policies import load_model, policy_source

        source = policy_source(run=path)
        if source.obs != "pixels":
            raise DriveError(f"run {spec!r} was trained on {source.obs!r}; valid: a run trained on pixels")
        model = load_model(source.checkpoint, source.algo, device="cpu")
        encoder = frame_encoders(model)[0]
        check_fits({"observation_shape": list(encoder._observation_space.shape)}, frame_space(shape), spec)
        return f"agent:{path.name}", encoder
    if path.suffix == ".pt" or path.exists():  # a missing .pt gets load_encoder's "does not exist"
        encoder, metadata = load_encoder(path)
        check_fits(metadata, frame_space(shape), repr(spec))
        return f"{metadata.get('method', 'pretrained')}:{path.parent.name}", encoder
    raise DriveError(f"unknown encoder {spec!r}; valid: {VALID_ENCODERS}")


def probe_encoders(frames, specs: list[str], limit: int = 20_000, device: str = "auto", runs_dir="runs"):
    from torch.utils.tensorboard import SummaryWriter

    from drive.envs.factory import resolve_device
    from drive.runs import new_run_dir

    device = resolve_device(device)
    store = FrameStore.open(frames)
    data = store.load(truth=True, limit=limit)
    shape = data["frames"].shape[1:]
    encoders = [resolve_encoder(spec, shape) for spec in specs]  # all checked before any work
    test = held_out(data["episode"])
    if test.all() or not test.any():
        raise DriveError(f"frames folder {str(frames)!r} needs at least {HELD_OUT_EVERY} episodes to hold some out")
    results = {label: probe_scores(features(enc, data["frames"], device), data, test) for label, enc in encoders}
    table = format_probe_table(results)
    folder = new_run_dir(runs_dir, "probe")
    record = {"frames": str(frames), "results": results, "skipped": missing_targets(data)}
    (folder / "probe.json").write_text(json.dumps(record, indent=2) + "\n")
    writer = SummaryWriter(str(folder / "tb"))
    writer.add_text("probe/table", "    " + table.replace("\n", "\n    "))
    for label, scores in results.items():
        for target, value in scores.items():
            writer.add_scalar(f"probe/{label}/{target}", value, 0)
    writer.close()
    return table, folder
