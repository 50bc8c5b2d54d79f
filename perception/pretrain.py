"""``drive pretrain``: self-supervised pretraining of the frame encoder on unlabeled frame stacks.

Method ``atc``, Augmented Temporal Contrast (Stooke et al. 2021, "Decoupling Representation Learning from
Reinforcement Learning"): the encoder (conv trunk and linear head) embeds an augmented frame stack, a residual
MLP predicts from it the momentum encoder's embedding of the augmented stack ``gap`` steps later in the same
episode, and an InfoNCE loss (cosine similarities after a learnt bilinear map) tells that one apart from the
other samples of the batch. The ground truth stored beside the frames is read only by the probes logged each
epoch.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from drive.errors import DriveError, check_choice
from drive.perception.augment import augment
from drive.perception.checkpoint import make_encoder, save_encoder
from drive.perception.frame_store import FrameStore, successors
from drive.perception.probe import features, format_probe_table, held_out, probe_scores

METHODS = ("atc",)


class ATC(nn.Module):
    """Online encoder and predictor, momentum target encoder, bilinear contrast."""

    def __init__(self, encoder: nn.Module, hidden: int = 512, momentum: float = 0.01, temperature: float = 0.1):
        super().__init__()
        dim = encoder.features_dim
        self.encoder, self.target = encoder, copy.deepcopy(encoder)
        self.target.requires_grad_(False)
        self.predictor = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.bilinear = nn.Parameter(torch.eye(dim))
        self.momentum, self.temperature = momentum, temperature

    def loss(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """InfoNCE: anchor i should score highest against positive i among the batch's positives."""
        z = self.encoder(anchor)
        prediction = z + self.predictor(z)
        with torch.no_grad():
            key = self.target(positive)
        # Cosine similarity with a temperature (as MoCo/CURL) rather than ATC's raw bilinear product: a randomly
        # initialised CNN maps these mostly grey frames to nearly equal vectors, and raw products barely separate them.
        logits = nn.functional.normalize(prediction @ self.bilinear, dim=1) @ nn.functional.normalize(key, dim=1).T
        logits = logits / self.temperature
        return nn.functional.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device))

    @torch.no_grad()
    def update_target(self) -> None:
        for online, target in zip(self.encoder.parameters(), self.target.parameters(), strict=True):
            target.lerp_(online, self.momentum)


def pretrain(
    *,
    frames: str | Path,
    out: str | Path | None = None,
    runs_dir: str | Path = "runs",
    method: str = "atc",
    encoder: str = "nature",
    features_dim: int = 512,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 3e-4,
    gap: int = 1,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    probe_limit: int = 4000,
) -> Path:
    """Train, log ``pretrain/loss`` and ``probe/<target>`` to ``out/tb``, save ``out/encoder.pt`` each epoch."""
    from torch.utils.tensorboard import SummaryWriter

    from drive.envs.factory import resolve_device
    from drive.perception.encoders import ENCODERS

    check_choice("method", method, METHODS)
    check_choice("encoder", encoder, ENCODERS)
    if epochs < 1 or batch_size < 2:
        raise DriveError(f"--epochs must be at least 1 and --batch-size at least 2, got {epochs} and {batch_size}")
    device = resolve_device(device)
    store = FrameStore.open(frames)
    data = store.load(truth=True)  # the truth feeds the logged probes only, never the loss
    stacks, pairs = data["frames"], _pairs(data["episode"], data["step"], gap)
    if len(pairs) < batch_size:
        raise DriveError(
            f"frames folder {str(frames)!r} holds {len(pairs)} consecutive pairs, fewer than --batch-size {batch_size}"
        )
    shape = stacks.shape[1:]
    model = ATC(make_encoder(encoder, shape, features_dim, seed=seed)).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    from drive.runs import new_run_dir

    out = Path(out) if out else new_run_dir(runs_dir, f"pretrain-{method}")
    writer = SummaryWriter(str(out / "tb"))
    probe_data = {k: v[:probe_limit] for k, v in data.items()}
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    step = 0
    batches = len(pairs) // batch_size
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(pairs))
        model.train()
        for b in tqdm(range(batches), desc=f"pretrain {epoch}/{epochs}", unit="batch", disable=not progress):
            anchor_i, positive_i = pairs[order[b * batch_size : (b + 1) * batch_size]].T
            anchor = augment(torch.as_tensor(stacks[anchor_i], device=device), generator)
            positive = augment(torch.as_tensor(stacks[positive_i], device=device), generator)
            loss = model.loss(anchor, positive)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.update_target()
            step += 1
            writer.add_scalar("pretrain/loss", loss.item(), step)
        scores = probe_scores(
            features(model.encoder, probe_data["frames"], device), probe_data, held_out(probe_data["episode"])
        )
        for name, value in scores.items():
            writer.add_scalar(f"probe/{name}", value, epoch)
        if progress:
            print(f"epoch {epoch}: loss {loss.item():.3f}, " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        recipe = {"batch_size": batch_size, "lr": lr, "gap": gap, "seed": seed, "frames": str(frames)}
        save_encoder(out / "encoder.pt", model.encoder, encoder, shape, method=method, epochs=epoch, **recipe)
    writer.close()
    return out / "encoder.pt"


def _pairs(episode: np.ndarray, step: np.ndarray, gap: int) -> np.ndarray:
    """(P, 2) rows (anchor, the same episode's frame ``gap`` steps later)."""
    later = successors(episode, step, gap)
    anchor = np.flatnonzero(later >= 0)
    return np.stack([anchor, later[anchor]], 1)


__all__ = ["ATC", "METHODS", "format_probe_table", "pretrain"]
