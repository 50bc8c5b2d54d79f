"""``drive pretrain``: self-supervised pretraining of the frame encoder on unlabeled frame stacks.

A run is a recipe: a preset from ``configs/pretrain/<name>.yaml`` (``--method NAME``; every method has a preset of
its own name, and other presets are variants such as ``atc-gap3``) with any key overridden by a flag or ``--set``.
The preset names the objective (``method``: ``atc`` or ``spr``, ``drive.perception.objectives``), the encoder, the
optimisation (epochs, batch size, learning rate), the temporal ``gap`` between the two stacks of a pair, and the
objective's own keys. The resolved recipe is saved in ``encoder.pt`` beside the weights.

Frames are streamed (``FrameStore.batches``): pairs of stacks ``gap`` steps apart in one episode, shuffled within a
few shards at a time, so that the frames need not fit in memory. The ground truth stored beside them is read by the
probes logged each epoch, and by an objective only where its method needs a column of it (SPR: the collecting
policy's action).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from drive.errors import DriveError, check_choice
from drive.perception.augment import augment
from drive.perception.checkpoint import make_encoder, save_encoder
from drive.perception.frame_store import FrameStore
from drive.perception.objectives import ATC, OBJECTIVES, SPR
from drive.perception.probe import features, format_probe_table, held_out, probe_scores

METHODS = tuple(OBJECTIVES)
PRESET_KIND = "pretrain"  # configs/pretrain/
COMMON = ("method", "encoder", "features_dim", "epochs", "batch_size", "lr", "gap", "shards_in_memory")
# Every numeric key, common or an objective's own (its DEFAULTS): (type, lowest value, whether the lowest itself is
# refused). ``method`` and ``encoder`` are names, checked against their registries.
RANGES = {
    "features_dim": (int, 1, False),
    "epochs": (int, 1, False),
    "batch_size": (int, 2, False),  # ATC's negatives are the batch's other pairs: one pair alone has none
    "lr": (float, 0.0, True),
    "gap": (int, 1, False),
    "shards_in_memory": (int, 1, False),
    "hidden": (int, 1, False),
    "projection_dim": (int, 1, False),
    "n_actions": (int, 2, False),
    "momentum": (float, 0.0, True),  # and at most 1 (the target copies the online weights)
    "temperature": (float, 0.0, True),
    "inverse_weight": (float, 0.0, False),
}


def preset_names() -> list[str]:
    from drive.config import preset_names as names

    return names(PRESET_KIND)


def resolve_recipe(method: str = "atc", overrides: dict | None = None) -> dict:
    """The preset ``method`` names, with ``overrides`` over it (a None value keeps the preset's), every key checked.

    Returns a flat dict: ``preset`` (the name given), the common keys and the objective's own. Refused in one line:
    an unknown preset, an unknown key for the preset's method, a value of the wrong type or out of range."""
    from drive.config import load_preset

    tree = load_preset(PRESET_KIND, method)  # "unknown pretrain preset 'x'; valid: ..."
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "method" in given:
        raise DriveError(f"the method comes from the preset; give --method NAME, one of {', '.join(preset_names())}")
    objective = tree.get("method")
    check_choice(f"method in pretrain preset {method!r}", objective, METHODS)
    defaults = OBJECTIVES[objective].DEFAULTS
    recipe = {**defaults, **tree, **given}
    valid = [*COMMON, *defaults]
    for key, value in recipe.items():
        if key not in valid:
            settable = ", ".join(valid[1:])  # the method comes from the preset's name
            raise DriveError(f"unknown pretrain key {key!r} for method {objective!r}; valid: {settable}")
        if key in RANGES:
            recipe[key] = _checked(key, value, *RANGES[key])
    missing = [key for key in COMMON if key not in recipe]
    if missing:
        raise DriveError(f"pretrain preset {method!r} does not name {missing[0]!r}; valid keys: {', '.join(valid)}")
    from drive.perception.encoders import ENCODERS

    check_choice("encoder", recipe["encoder"], ENCODERS)
    return {"preset": method, **{key: recipe[key] for key in valid}}


def _checked(key: str, value, kind: type, lowest: float, strict: bool):
    """``value`` as ``kind`` (a whole number where one is due; a float key takes one too), within its range."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not (whole or (kind is float and isinstance(value, float))):
        raise DriveError(f"pretrain key {key!r} must be a {'whole ' if kind is int else ''}number, got {value!r}")
    value = kind(value)
    if value < lowest or (strict and value == lowest) or (key == "momentum" and value > 1):
        allowed = "in (0, 1]" if key == "momentum" else f"{'above' if strict else 'at least'} {lowest}"
        raise DriveError(f"pretrain key {key!r} must be {allowed}, got {value}")
    return value


def build_objective(recipe: dict, shape, seed: int) -> torch.nn.Module:
    """The recipe's objective around a freshly initialised encoder (seeded)."""
    objective = OBJECTIVES[recipe["method"]]
    encoder = make_encoder(recipe["encoder"], shape, recipe["features_dim"], seed=seed)
    return objective(encoder, **{key: recipe[key] for key in objective.DEFAULTS})


def pretrain(
    *,
    frames: str | Path,
    method: str = "atc",
    out: str | Path | None = None,
    runs_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    probe_limit: int = 4000,
    overrides: dict | None = None,
    **keys,
) -> Path:
    """Train the preset ``method`` names, its keys replaced by ``overrides`` (a dict: the command line's flags and
    ``--set``) and then by keyword ``keys`` (``epochs=2``, ``gap=3``...). Logs ``pretrain/<term>`` each batch and
    ``probe/<target>`` each epoch to ``out/tb``, saves ``out/encoder.pt`` each epoch. Everything is checked, and the
    first batch read, before the output folder is made."""
    from torch.utils.tensorboard import SummaryWriter

    from drive.envs.factory import resolve_device
    from drive.runs import new_run_dir

    recipe = resolve_recipe(method, {**(overrides or {}), **keys})
    device = resolve_device(device)
    store = FrameStore.open(frames)
    objective_cls = OBJECTIVES[recipe["method"]]
    _check_truth(store, objective_cls, recipe, frames)
    rng = np.random.default_rng(seed)
    first_epoch = _epoch(store, recipe, rng, objective_cls.truth)
    first = next(first_epoch, None)
    if first is None:
        raise DriveError(
            f"frames folder {str(frames)!r} holds fewer than --batch-size {recipe['batch_size']} pairs of stacks "
            f"{recipe['gap']} step(s) apart in one episode and shard; valid: a smaller --batch-size or more frames"
        )
    probe_data = store.load(truth=True, limit=probe_limit)  # the probes' truth, never the loss's
    shape = first[0].shape[1:]
    model = build_objective(recipe, shape, seed).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe["lr"])
    out = Path(out) if out else new_run_dir(runs_dir, f"pretrain-{method}")
    writer = SummaryWriter(str(out / "tb"))
    generator = torch.Generator(device=device).manual_seed(seed)
    step, epochs = 0, recipe["epochs"]
    # The bar's total: whole batches (drop_last). Only counted for a bar that is shown.
    per_epoch = store.usable_count(recipe["gap"]) // recipe["batch_size"] if progress else None
    for epoch in range(1, epochs + 1):
        batches = itertools.chain([first], first_epoch) if epoch == 1 else _epoch(store, recipe, rng, model.truth)
        model.train()
        for batch in tqdm(batches, f"pretrain {epoch}/{epochs}", per_epoch, unit="batch", disable=not progress):
            terms = _step(model, optimizer, batch, generator, device)
            step += 1
            for name, value in terms.items():
                writer.add_scalar(f"pretrain/{name}", value, step)
        scores = probe_scores(
            features(model.encoder, probe_data["frames"], device), probe_data, held_out(probe_data["episode"])
        )
        for name, value in scores.items():
            writer.add_scalar(f"probe/{name}", value, epoch)
        if progress:
            line = ", ".join(f"{k} {v:.3f}" for k, v in {**terms, **scores}.items())
            print(f"epoch {epoch}: {line}")
        _save(out / "encoder.pt", model.encoder, recipe, shape, epoch, seed, frames)
    writer.close()
    return out / "encoder.pt"


def _check_truth(store: FrameStore, objective_cls, recipe: dict, frames) -> None:
    """An objective that reads a truth column (SPR: the action) needs every shard to hold it."""
    held = store.truth_keys() if objective_cls.truth else set()
    missing = [name for name in objective_cls.truth if name not in held]
    if missing:
        raise DriveError(
            f"method {recipe['method']!r} needs the collecting policy's {missing[0]!r}, which frames folder "
            f"{str(frames)!r} does not hold (collected before it was recorded); collect the frames again with "
            "drive collect-frames into a new --out"
        )


def _epoch(store: FrameStore, recipe: dict, rng: np.random.Generator, truth: tuple[str, ...]):
    """One pass of whole batches: ``(anchor, later, columns)``, ``columns`` empty where the objective reads none."""
    batches = store.batches(
        recipe["batch_size"],
        rng,
        shards_in_memory=recipe["shards_in_memory"],
        gap=recipe["gap"],
        drop_last=True,  # a short last batch has fewer negatives: a different loss, logged as if the same
        truth=truth,
    )
    for batch in batches:
        yield batch if truth else (*batch, {})


def _step(model, optimizer, batch, generator: torch.Generator, device: str) -> dict[str, float]:
    """One optimiser step on a batch; both stacks augmented independently (each its own shift and brightness)."""
    anchor, later, columns = batch
    anchor = augment(torch.as_tensor(anchor, device=device), generator)
    later = augment(torch.as_tensor(later, device=device), generator)
    terms = model.terms(anchor, later, columns)
    optimizer.zero_grad()
    terms["loss"].backward()
    optimizer.step()
    model.update_target()
    return {name: value.item() for name, value in terms.items()}


def _save(path: Path, encoder, recipe: dict, shape, epoch: int, seed: int, frames) -> None:
    """The weights and the whole recipe. ``epochs`` is the epochs done (as before presets), ``recipe`` the resolved
    preset with its planned epochs; the flat keys stay for readers of older checkpoints."""
    flat = {k: v for k, v in recipe.items() if k not in ("encoder", "features_dim", "epochs")}
    full = {**recipe, "seed": seed, "frames": str(frames)}
    save_encoder(
        path, encoder, recipe["encoder"], shape, **flat, epochs=epoch, seed=seed, frames=str(frames), recipe=full
    )


__all__ = [
    "ATC",
    "METHODS",
    "SPR",
    "build_objective",
    "format_probe_table",
    "preset_names",
    "pretrain",
    "resolve_recipe",
]
