"""CNN encoders for uint8 frame stacks ``(stack, W, H)`` (highway-env's layout), usable as SB3 features extractors.

Frames are normalised here and only here (``normalize_frames``): policies are built with
``normalize_images=False`` so that SB3 does not divide a second time, and an encoder used outside
SB3 (pretraining, probes) sees exactly what the agent sees.
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def normalize_frames(frames: th.Tensor) -> th.Tensor:
    """uint8-valued frames in [0, 255] -> float in [0, 1]."""
    return frames.float() / 255.0


class FrameEncoder(BaseFeaturesExtractor):
    """Shared plumbing: check the space, run the conv trunk once to size the linear head."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int, trunk: nn.Module):
        if len(observation_space.shape) != 3:
            raise ValueError(f"{type(self).__name__} needs frames shaped (stack, W, H), got {observation_space.shape}")
        super().__init__(observation_space, features_dim)
        self.trunk = trunk
        with th.no_grad():
            sample = th.zeros((1, *observation_space.shape))
            n_flat = self.trunk(sample).flatten(1).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        # channels_last takes oneDNN's fast convolutions on CPU (about 1.7x for training here)
        frames = normalize_frames(observations).contiguous(memory_format=th.channels_last)
        return self.head(self.trunk(frames).flatten(1))


class NatureEncoder(FrameEncoder):
    """The Nature-DQN CNN (Mnih et al. 2015), as SB3's ``NatureCNN``, normalising its own input."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512):
        n_in = observation_space.shape[0]
        trunk = nn.Sequential(
            nn.Conv2d(n_in, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
        )
        super().__init__(observation_space, features_dim, trunk)


class CompactEncoder(FrameEncoder):
    """Three 3 x 3 stride-2 convolutions, for small top-down frames.

    Vehicles are about 9 x 3.5 px in highway's 128 x 64 frames: a 3 x 3 kernel at stride 2 keeps them apart,
    where the Nature CNN's 8 x 8 stride-4 first layer averages them into the road. It trains about as fast as
    the Nature CNN on a CPU (it keeps more positions but far fewer weights per position).
    """

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 256, channels: tuple[int, ...] = (16, 32, 64)
    ):
        layers: list[nn.Module] = []
        n_in = observation_space.shape[0]
        for n_out in channels:
            layers += [nn.Conv2d(n_in, n_out, 3, stride=2, padding=1), nn.ReLU()]
            n_in = n_out
        super().__init__(observation_space, features_dim, nn.Sequential(*layers))
        # The frames are nearly all road, so a ReLU head's inputs share one large common part: about 40 % of
        # its units are dead for every frame at initialisation and most of the rest die within the first
        # hundred updates (measured on the driver's data). LayerNorm then tanh (the DrQ / SAC-AE head) keeps
        # every unit alive.
        linear = self.head[0]
        self.head = nn.Sequential(linear, nn.LayerNorm(features_dim), nn.Tanh())


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.conv1(th.relu(self.conv0(th.relu(x))))


class ResidualEncoder(FrameEncoder):
    """The IMPALA ResNet (Espeholt et al. 2018): three conv + max-pool stages, two residual blocks each."""

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 256, channels: tuple[int, ...] = (16, 32, 32)
    ):
        layers: list[nn.Module] = []
        n_in = observation_space.shape[0]
        for n_out in channels:
            layers += [
                nn.Conv2d(n_in, n_out, 3, padding=1),
                nn.MaxPool2d(3, stride=2, padding=1),
                _ResidualBlock(n_out),
                _ResidualBlock(n_out),
            ]
            n_in = n_out
        layers.append(nn.ReLU())
        super().__init__(observation_space, features_dim, nn.Sequential(*layers))


class EncoderEnsemble(BaseFeaturesExtractor):
    """``members`` independent students' trunks side by side: each an encoder followed by its own MLP (``hidden``),
    their features concatenated, ``members * width`` in all.

    A linear action head on the concatenation is the sum of one linear head per member, so the policy's logits are
    the sum of the members' logits once each member is trained on its own (``member_logits``): its greedy action
    is the one the members' mean logits pick, and it is still one stable-baselines3 policy. Students of the driver
    recipe trained from other seeds make their mistakes in other states: three of them voting crash about a quarter
    as often as each alone (docs/driver.md).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 256,
        members: int = 3,
        encoder: str = "compact",
        hidden: tuple[int, ...] = (256,),
        activations: tuple[str, ...] = (),
    ):
        width = hidden[-1] if hidden else features_dim
        super().__init__(observation_space, members * width)
        self.width = width
        # each member's MLP activation (ReLU unless told): a committee of single students keeps their SB3 Tanh
        self.activations = tuple(activations) or ("relu",) * members
        self.trunks = nn.ModuleList()
        for k in range(members):
            layers: list[nn.Module] = [ENCODERS[encoder](observation_space, features_dim)]
            n_in = features_dim
            for n_out in hidden:
                layers += [nn.Linear(n_in, n_out), ACTIVATIONS[self.activations[k]]()]
                n_in = n_out
            self.trunks.append(nn.Sequential(*layers))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.cat([trunk(observations) for trunk in self.trunks], dim=-1)


def member_logits(features: th.Tensor, head: nn.Linear, members: int) -> th.Tensor:
    """(members, batch, actions): member k's logits, ``W_k f_k + b / members``, whose sum is ``head(features)``."""
    batch, actions = features.shape[0], head.out_features
    per_member = features.reshape(batch, members, -1)
    weights = head.weight.reshape(actions, members, -1)
    return th.einsum("bkd,akd->kba", per_member, weights) + head.bias / members


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}

ENCODERS: dict[str, type[FrameEncoder]] = {
    "nature": NatureEncoder,
    "resnet": ResidualEncoder,
    "compact": CompactEncoder,
}
