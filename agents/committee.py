"""A committee of trained pixel students as one stable-baselines3 PPO policy that acts on the sum of their logits.

Each student's trunks (its encoder and its MLP; an ensemble student brings all its members) become members of one
``EncoderEnsemble``, and the linear action head is the students' heads side by side with their biases summed, so
the committee's logits are exactly the sum of the students'. Its greedy action is the one the sum of the students'
log-probabilities picks (each log-softmax differs from its logits by a constant per state), which is how
``benchmarks/student_ensemble.py`` measured such votes. The committee is not trained further; its value head is
zero.
"""

from __future__ import annotations

import dataclasses

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import nn

from drive.agents.algos import policy_setup
from drive.errors import DriveError
from drive.perception.encoders import ACTIVATIONS, EncoderEnsemble

ACTIVATION_NAMES = {cls: name for name, cls in ACTIVATIONS.items()}


def committee(students: list[BaseAlgorithm], config, venv, device: str = "cpu") -> PPO:
    """One PPO model whose logits are the sum of ``students``' (pixel PPO models of ``config``'s encoder and MLP)."""
    members = [member for student in students for member in _members(student.policy)]
    encoder = dataclasses.replace(config.algo.encoder, members=len(members))
    shaped = dataclasses.replace(config, algo=dataclasses.replace(config.algo, encoder=encoder))
    policy, kwargs = policy_setup(shaped, venv.observation_space)
    kwargs["features_extractor_kwargs"]["activations"] = tuple(activation for _, activation, _ in members)
    hyperparams = config.algo.hyperparams  # the students' own, so that the model saved is theirs but for its policy
    model = PPO(policy, venv, policy_kwargs=kwargs, device=device, seed=config.train.seed, verbose=0, **hyperparams)
    extractor, head = model.policy.features_extractor, model.policy.action_net
    with torch.no_grad():
        for trunk, (state, _, _) in zip(extractor.trunks, members, strict=True):
            trunk.load_state_dict(state)
        head.weight.copy_(torch.cat([weight for _, _, weight in members], dim=1))
        head.bias.copy_(sum(student.policy.action_net.bias for student in students))
        nn.init.zeros_(model.policy.value_net.weight)
        nn.init.zeros_(model.policy.value_net.bias)
    return model


def _members(policy) -> list[tuple[dict, str, torch.Tensor]]:
    """(trunk state dict as an ``EncoderEnsemble`` member, its activation, its slice of the action head's weight)
    for each member of a student: an ensemble's own members, or a single student's encoder and MLP."""
    extractor, head = policy.features_extractor, policy.action_net
    if isinstance(extractor, EncoderEnsemble):
        width = extractor.width
        return [
            (trunk.state_dict(), extractor.activations[k], head.weight[:, k * width : (k + 1) * width])
            for k, trunk in enumerate(extractor.trunks)
        ]
    if policy.activation_fn not in ACTIVATION_NAMES:
        raise DriveError(f"a committee takes students with a ReLU or Tanh MLP, not {policy.activation_fn.__name__}")
    # A single student: its encoder is the member's layer 0, its policy MLP (SB3's Linear, activation, ...) after it.
    state = {f"0.{key}": value for key, value in extractor.state_dict().items()}
    for key, value in policy.mlp_extractor.policy_net.state_dict().items():
        index, rest = key.split(".", 1)
        state[f"{int(index) + 1}.{rest}"] = value
    return [(state, ACTIVATION_NAMES[policy.activation_fn], head.weight)]
