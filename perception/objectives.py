"""Self-supervised objectives for ``drive pretrain``: each trains a frame encoder from pairs of augmented stacks.

Every objective holds the online ``encoder`` (what ``encoder.pt`` saves), declares the ground-truth columns its loss
reads (``truth``; the frame store streams them beside the frames), the hyperparameters it takes beyond the common
ones (``DEFAULTS``, the keys of its preset), and returns its loss terms from ``terms(anchor, later, columns)``:
``"loss"`` is what the optimiser lowers, the other entries are logged. ``update_target`` runs after each step.

- ``atc``: Augmented Temporal Contrast (Stooke et al. 2021, "Decoupling Representation Learning from
  Reinforcement Learning"). Self-supervised only: it reads no truth.
- ``spr``: latent next-state prediction with inverse dynamics, after SPR (Schwarzer et al. 2021, "Data-Efficient
  Reinforcement Learning with Self-Predictive Representations") and SGI (Schwarzer et al. 2021, "Pretraining
  Representations for Data-Efficient Reinforcement Learning"). It reads the collecting policy's actions.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from drive.errors import DriveError


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def _frozen_copy(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def _ema(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """Move the target's weights ``momentum`` of the way towards the online ones (1.0: a copy)."""
    for o, t in zip(online.parameters(), target.parameters(), strict=True):
        t.lerp_(o, momentum)


class ATC(nn.Module):
    """Augmented Temporal Contrast: the online encoder embeds an augmented stack, a residual MLP predicts from it
    the momentum encoder's embedding of the augmented stack ``gap`` steps later in the same episode, and an InfoNCE
    loss tells that one apart from the other stacks of the batch (the batch's other pairs are the negatives)."""

    truth: tuple[str, ...] = ()
    DEFAULTS: ClassVar[dict] = {"hidden": 512, "momentum": 0.01, "temperature": 0.1}

    def __init__(self, encoder: nn.Module, hidden: int = 512, momentum: float = 0.01, temperature: float = 0.1):
        super().__init__()
        dim = encoder.features_dim
        self.encoder, self.target = encoder, _frozen_copy(encoder)
        self.predictor = _mlp(dim, hidden, dim)
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
        logits = F.normalize(prediction @ self.bilinear, dim=1) @ F.normalize(key, dim=1).T
        logits = logits / self.temperature
        return F.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device))

    def terms(self, anchor: torch.Tensor, later: torch.Tensor, columns: dict) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(anchor, later)}

    def update_target(self) -> None:
        _ema(self.encoder, self.target, self.momentum)


class Transition(nn.Module):
    """One policy step in latent space: ``z' = z + f([z, onehot(a)])``. SPR's transition model is a convolution
    over the encoder's spatial map; ours acts on the flat features, since those are what the agent's policy reads.
    The residual form starts near the identity, which consecutive stacks (mostly the same road) nearly are."""

    def __init__(self, dim: int, n_actions: int, hidden: int):
        super().__init__()
        self.n_actions = n_actions
        self.net = _mlp(dim + n_actions, hidden, dim)

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z + self.net(torch.cat([z, F.one_hot(action, self.n_actions).to(z.dtype)], 1))


class SPR(nn.Module):
    """Self-predictive representations with an inverse-dynamics head (SPR and SGI).

    The online encoder gives z_t; the transition model, applied once per policy step with that step's action
    (``gap`` times for a stack ``gap`` steps later), predicts z_{t+gap}; an online projection then a prediction
    head map it to the space of the target projection of the momentum (EMA) encoder's embedding of the augmented
    later stack; the loss is their negative cosine similarity (BYOL-style: no negatives; the momentum target and
    the prediction head are what BYOL and SPR rely on against collapse, not checked here). SPR sums this over
    every step up to K; the frame store gives the later stack only, so here only the last prediction is compared.

    The inverse-dynamics head (SGI) predicts the first action a_t from the online embeddings of both stacks,
    by cross-entropy, weighted ``inverse_weight``: it ties the features to what the ego did, which the prediction
    loss alone can ignore. With ``gap`` 1 (the spr preset) that is SGI's (z_t, z_{t+1}); with a longer gap the later
    embedding is that of the stack ``gap`` steps on, the only one the store streams.

    Not kept from the papers: SGI's goal-conditioned RL objective, and SPR's convolutional transition model.
    """

    truth: tuple[str, ...] = ("action",)
    DEFAULTS: ClassVar[dict] = {
        "hidden": 512,
        "projection_dim": 256,
        "momentum": 0.01,
        "inverse_weight": 1.0,
        "n_actions": 5,
    }

    def __init__(
        self,
        encoder: nn.Module,
        hidden: int = 512,
        projection_dim: int = 256,
        momentum: float = 0.01,
        inverse_weight: float = 1.0,
        n_actions: int = 5,
    ):
        super().__init__()
        dim = encoder.features_dim
        self.encoder, self.projection = encoder, _mlp(dim, hidden, projection_dim)
        self.target, self.target_projection = _frozen_copy(encoder), _frozen_copy(self.projection)
        self.prediction = _mlp(projection_dim, hidden, projection_dim)
        self.transition = Transition(dim, n_actions, hidden)
        self.inverse = _mlp(2 * dim, hidden, n_actions)
        self.momentum, self.inverse_weight, self.n_actions = momentum, inverse_weight, n_actions

    def predict(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The latent ``actions.shape[1]`` steps on: the transition applied once per action, in order."""
        for j in range(actions.shape[1]):
            z = self.transition(z, actions[:, j])
        return z

    def terms(self, anchor: torch.Tensor, later: torch.Tensor, columns: dict) -> dict[str, torch.Tensor]:
        actions = self._actions(columns["action"], anchor.device)
        z, z_later = self.encoder(anchor), self.encoder(later)
        predicted = self.prediction(self.projection(self.predict(z, actions)))
        with torch.no_grad():
            target = self.target_projection(self.target(later))
        spr = -F.cosine_similarity(predicted, target, dim=1).mean()
        logits = self.inverse(torch.cat([z, z_later], 1))
        inverse = F.cross_entropy(logits, actions[:, 0])
        accuracy = (logits.argmax(1) == actions[:, 0]).float().mean().detach()
        loss = spr + self.inverse_weight * inverse
        return {"loss": loss, "spr": spr.detach(), "inverse": inverse.detach(), "inverse_accuracy": accuracy}

    def _actions(self, actions, device) -> torch.Tensor:
        """(B, gap) int64 on ``device``; one line if an action is outside the head's ``n_actions`` classes."""
        actions = torch.as_tensor(actions, device=device).long()
        if actions.dim() == 1:
            actions = actions[:, None]
        low, high = int(actions.min()), int(actions.max())
        if low < 0 or high >= self.n_actions:
            bad = low if low < 0 else high
            raise DriveError(
                f"action {bad} in the frame store is outside 0..{self.n_actions - 1}; valid: a larger n_actions "
                f"(--set n_actions={high + 1})"
            )
        return actions

    def update_target(self) -> None:
        _ema(self.encoder, self.target, self.momentum)
        _ema(self.projection, self.target_projection, self.momentum)


OBJECTIVES: dict[str, type[nn.Module]] = {"atc": ATC, "spr": SPR}
