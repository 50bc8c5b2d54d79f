"""DAgger: a pixel student learns to act like a privileged teacher, on the states the student itself visits.

Each round drives the batched simulator for some steps with the student (or, in the first round, the
teacher), asks the teacher what it would have done in every visited state, adds those frames and labels to
one growing data set, and fits the student's action logits to the teacher's choices (Ross et al. 2011; the
recipe of Learning by Cheating and Roach). The student is a stable-baselines3 PPO policy, so every verb that
takes a run (evaluate, watch, resume) works on it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3.common.policies import BasePolicy
from torch import nn
from torch.nn import functional as F

from drive.agents.planner import ACTIONS
from drive.config import StudentConfig
from drive.perception.augment import random_shift
from drive.perception.encoders import EncoderEnsemble, member_logits
from drive.perception.truth import GAP_NAMES, lane_gaps


@dataclass
class Dataset:
    """Frame stacks (uint8), the teacher's labels and the simulator's gaps, grown round by round."""

    frames: list[np.ndarray]
    values: list[np.ndarray]  # the teacher's value of each action, (n, 5)
    gaps: list[np.ndarray]  # the lane gaps of each state (n, len(GAP_NAMES)), NaN where a run did not record them

    @classmethod
    def empty(cls) -> Dataset:
        return cls([], [], [])

    def add(self, frames: np.ndarray, values: np.ndarray, gaps: np.ndarray | None = None) -> None:
        self.frames.append(frames)
        self.values.append(values)
        self.gaps.append(np.full((len(values), len(GAP_NAMES)), np.nan, np.float32) if gaps is None else gaps)

    def __len__(self) -> int:
        return sum(len(v) for v in self.values)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self.frames), np.concatenate(self.values), np.concatenate(self.gaps)


@dataclass
class DriveStats:
    """Episodes that ended while collecting: what the acting policy scored on the batched simulator."""

    returns: list[float]
    crashed: list[bool]
    speeds: list[float]

    def add_finished(self, infos) -> None:
        """The episodes that ended in this step (the VecEnv's ``info["episode"]``)."""
        for info in infos:
            if "episode" in info:
                self.returns.append(info["episode"]["r"])
                self.crashed.append(info["episode"]["crashed"])
                self.speeds.append(info["episode"]["mean_speed"])

    def summary(self) -> dict:
        if not self.returns:
            return {"episodes": 0}
        return {
            "episodes": len(self.returns),
            "mean_return": float(np.mean(self.returns)),
            "crash_rate": float(np.mean(self.crashed)),
            "mean_speed": float(np.mean(self.speeds)),
        }


def student_actions(policy, frames: torch.Tensor) -> torch.Tensor:
    """The student's greedy actions for a batch of frame stacks."""
    with torch.inference_mode():
        return policy_logits(policy, frames.to(policy.device)).argmax(-1)


def policy_logits(policy, frames: torch.Tensor) -> torch.Tensor:
    """Action logits of an SB3 actor-critic policy (its features extractor normalises uint8 frames)."""
    return policy.get_distribution(frames).distribution.logits


def features_and_logits(policy, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The actor's features and its action logits, in one pass (``get_distribution``'s path)."""
    features = BasePolicy.extract_features(policy, frames, policy.pi_features_extractor)
    return features, policy.action_net(policy.mlp_extractor.forward_actor(features))


class GapHead(nn.Module):
    """A linear read-out of the lane gaps from the student's features: trained beside the imitation loss so that
    the encoder keeps what decides FASTER and lane changes (the distances and closing speeds of the cars ahead
    and behind), then dropped: the saved policy is the SB3 model alone."""

    def __init__(self, features_dim: int, learning_rate: float):
        super().__init__()
        self.linear = nn.Linear(features_dim, len(GAP_NAMES))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate)

    def loss(self, features: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the states whose gaps were recorded."""
        known = torch.isfinite(gaps).all(-1)
        error = (self.linear(features) - gaps.nan_to_num()).pow(2).mean(-1)
        return (error * known).sum() / known.sum().clamp(min=1)


def collect(
    venv,
    teacher,
    policy,
    steps: int,
    beta: float,
    dataset: Dataset,
    generator: torch.Generator,
    progress=None,
    noise: float = 0.0,
) -> DriveStats:
    """Drive ``venv`` for ``steps`` policy steps (all envs at once), labelling every visited state.

    Each env follows the teacher with probability ``beta`` at each step, else the student (DAgger's mixture:
    1 in the first round, when there is no student yet), and takes a uniformly random action instead with
    probability ``noise`` (DART, Laskey et al. 2017: the states just off the teacher's path, where braking
    or staying in lane matters, are labelled from the first round). The labels are always the teacher's values.
    """
    stats = DriveStats([], [], [])
    obs = venv.last_obs_numpy()
    for _ in range(steps):
        values = teacher.action_values(venv.sim)
        actions = teacher.choose(values)
        if beta < 1:
            student = student_actions(policy, torch.from_numpy(obs)).to(actions.device)
            actions = _replace_some(student, actions, beta, generator)
        if noise > 0:
            random = torch.randint(len(ACTIONS), (len(actions),), generator=generator).to(actions.device)
            actions = _replace_some(actions, random, noise, generator)
        gaps = lane_gaps(venv.sim.state, venv.sim.config.lanes_count)
        dataset.add(obs.copy(), values.float().cpu().numpy(), gaps.cpu().numpy())
        obs, _, _, infos = venv.step(actions.cpu().numpy())
        stats.add_finished(infos)
        if progress is not None:
            progress.update(venv.num_envs)
    return stats


def _replace_some(actions: torch.Tensor, by: torch.Tensor, probability: float, generator) -> torch.Tensor:
    """Each env's action replaced by ``by``'s with ``probability``."""
    chosen = torch.rand(len(actions), generator=generator).to(actions.device) < probability
    return torch.where(chosen, by, actions)


def drive_alone(venv, policy, steps: int) -> DriveStats:
    """The student alone (no teacher) for ``steps`` policy steps of every env, from fresh traffic: its driving on
    the batched simulator, to choose between rounds on seeds that neither training nor evaluation uses."""
    stats = DriveStats([], [], [])
    obs = venv.reset()
    for _ in range(steps):
        obs, _, _, infos = venv.step(student_actions(policy, torch.from_numpy(obs)).cpu().numpy())
        stats.add_finished(infos)
    return stats


def distill_loss(logits: torch.Tensor, values: torch.Tensor, student: StudentConfig):
    """Imitation loss against the teacher's action values, and whether the student's choice is a good one.

    Several actions are often equally good (FASTER at top speed is IDLE; LANE_LEFT in the leftmost lane too).
    ``student.loss`` says how the student learns from the values:
    - ``regret``: the logits regress each action's regret over ``temperature``, negated (Huber, so that the
      crash-scale regrets do not drown the rest). The argmax is then the action
      of least expected regret given what the frames show, the right choice when they cannot tell two states
      apart (the other drivers' intentions, the ego's exact speed), and a crash's regret weighs most.
    - ``soft``: cross-entropy to the softmax of the values over ``temperature`` (policy distillation, Rusu et
      al. 2016): equal values share the mass, an action that costs a crash gets none.
    - ``set``: ``-log`` of the probability on the actions within ``tolerance`` of the best.
    ``regret_weight`` adds the expected regret of the student's probabilities. Its gradient grows with the
    regrets (a crash costs about 20 to 30): with a weight of 1 or more it saturates the softmax onto one
    constant action.
    """
    regret = values.max(-1, keepdim=True).values - values
    log_p = F.log_softmax(logits, -1)
    if student.loss == "regret":
        imitation = F.smooth_l1_loss(-logits, regret / student.temperature, reduction="none").sum(-1)
    elif student.loss == "soft":
        imitation = -(F.softmax(-regret / student.temperature, -1) * log_p).sum(-1)
    else:
        imitation = -torch.logsumexp(log_p.masked_fill(regret > student.tolerance, -torch.inf), -1)
    expected_regret = (log_p.exp() * regret).sum(-1)
    loss = (imitation + student.regret_weight * expected_regret).mean()
    return loss, good_choice(values, logits.argmax(-1), student.tolerance)


def good_choice(values: torch.Tensor, actions: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Whether each action is within ``tolerance`` of the teacher's best value."""
    chosen = values.gather(1, actions[:, None]).squeeze(1)
    return values.max(-1).values - chosen <= tolerance


def fit(
    policy,
    dataset: Dataset,
    student: StudentConfig,
    generator: torch.Generator,
    updates: int | None = None,
    gap_head: GapHead | None = None,
    envs: int | None = None,
    bar=None,
) -> dict:
    """``updates`` (default: the config's per round) gradient steps on batches of ``student.batch_size`` drawn
    uniformly from the whole data set, each frame stack shifted by up to ``student.shift`` pixels (DrQ; along the
    road only unless ``shift_lateral``; the forward pass in ``student.precision``), plus ``student.gap_weight`` times
    ``gap_head``'s loss where one is given; with ``student.split`` (an ``EncoderEnsemble`` policy) each member
    gets its own batch from its own share of the ``envs`` (``member_shares``);
    returns the mean losses and the share of training states where the student's choice is within ``tolerance``
    of the teacher's best. ``bar`` (a tqdm) advances by one per update."""
    updates = student.updates_per_round if updates is None else updates
    frames_t, values_t, gaps_t = map(torch.from_numpy, dataset.arrays())
    optimizers = [policy.optimizer] + ([gap_head.optimizer] if gap_head is not None else [])
    schedules = [_cosine(optimizer, updates, student.lr_end) for optimizer in optimizers]
    policy.set_training_mode(True)
    shares = member_shares(len(values_t), envs, len(policy.pi_features_extractor.trunks)) if student.split else None
    loss_sum = gap_sum = agree = 0.0
    for update in range(updates):
        for schedule in schedules:
            schedule(update)
        index = _draw(len(values_t), shares, student.batch_size, generator)
        frames_batch = frames_t[index].to(policy.device)
        if student.shift:
            frames_batch = random_shift(frames_batch, student.shift, generator, lateral=student.shift_lateral)
        loss, chosen_good, features = _batch_loss(policy, frames_batch, values_t[index].to(policy.device), student)
        total = loss
        if gap_head is not None:
            gap_loss = gap_head.loss(features, gaps_t[index].to(policy.device))
            total = loss + student.gap_weight * gap_loss
            gap_sum += float(gap_loss.detach())
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        total.backward()
        for optimizer in optimizers:
            optimizer.step()
        loss_sum += float(loss.detach())
        agree += float(chosen_good.float().mean())
        if bar is not None:
            bar.update(1)
    policy.set_training_mode(False)
    for schedule in schedules:
        schedule(0)  # the next round (and a resumed run) starts at the full rate
    n = max(updates, 1)
    fitted = {"loss": loss_sum / n, "agreement": agree / n}
    return fitted if gap_head is None else {**fitted, "gap_loss": gap_sum / n}


def _imitation(policy, features, logits, values, student: StudentConfig):
    """``distill_loss`` of the policy, or for an ``EncoderEnsemble`` the mean of each member's own (each member
    learns to imitate alone, as a student of its own would; the policy then acts on their mean logits)."""
    ensemble = policy.pi_features_extractor
    if not isinstance(ensemble, EncoderEnsemble):
        return distill_loss(logits, values, student)
    members = member_logits(features, policy.action_net, len(ensemble.trunks))
    loss, _ = _members_imitation(members, values.expand(len(members), -1, -1), student)
    return loss, good_choice(values, logits.argmax(-1), student.tolerance)


def _draw(rows: int, shares: list[torch.Tensor] | None, batch_size: int, generator) -> torch.Tensor:
    """One batch's row indices: uniform over all rows, or ``batch_size`` from each member's share, member-major
    (member k's are entries k * batch_size to (k + 1) * batch_size)."""
    if shares is None:
        return torch.randint(rows, (batch_size,), generator=generator)
    return torch.cat([share[torch.randint(len(share), (batch_size,), generator=generator)] for share in shares])


def _batch_loss(policy, frames: torch.Tensor, values: torch.Tensor, student: StudentConfig):
    """The imitation loss of one batch (the forward pass in ``student.precision``, the loss in float32), whether
    each choice is a good one, and the features for an auxiliary head (None for a split batch)."""
    autocast = torch.autocast(policy.device.type, torch.bfloat16, enabled=student.precision == "bfloat16")
    if student.split:
        with autocast:
            logits = split_logits(policy, frames)
        loss, chosen_good = _members_imitation(logits.float(), values.unflatten(0, (len(logits), -1)), student)
        return loss, chosen_good, None
    with autocast:
        features, logits = features_and_logits(policy, frames)
    features, logits = features.float(), logits.float()
    return (*_imitation(policy, features, logits, values, student), features)


def member_shares(rows: int, envs: int, members: int) -> list[torch.Tensor]:
    """Each member's rows of a data set: env i's states go to member i mod ``members``. The data is step-major
    (``collect`` adds all ``envs`` states of a step at once), so row r is env r mod ``envs``."""
    member = torch.arange(rows) % envs % members
    return [torch.nonzero(member == k).squeeze(1) for k in range(members)]


def split_logits(policy, frames: torch.Tensor) -> torch.Tensor:
    """(members, batch / members, actions): member k's logits on its own chunk of ``frames`` (member-major), its
    trunk alone and its slice of the linear action head (``member_logits``'s, without the others' work)."""
    ensemble, head = policy.pi_features_extractor, policy.action_net
    members, width = len(ensemble.trunks), ensemble.width
    logits = []
    for k, (trunk, chunk) in enumerate(zip(ensemble.trunks, frames.chunk(members), strict=True)):
        features = BasePolicy.extract_features(policy, chunk, trunk)
        logits.append(features @ head.weight[:, k * width : (k + 1) * width].T + head.bias / members)
    return torch.stack(logits)


def _members_imitation(logits: torch.Tensor, values: torch.Tensor, student: StudentConfig):
    """The mean of the members' own ``distill_loss`` (``logits`` and ``values``: (members, batch, actions)), and
    whether each member's choice is a good one."""
    losses, good = zip(*(distill_loss(m, v, student) for m, v in zip(logits, values, strict=True)), strict=True)
    return torch.stack(losses).mean(), torch.cat(good)


def _cosine(optimizer, updates: int, end: float):
    """Sets ``optimizer``'s rate for update ``k`` of ``updates``: from its rate at the start down to ``end`` times it
    (cosine); ``schedule(0)`` restores the start."""
    start = [group["lr"] for group in optimizer.param_groups]

    def schedule(k: int) -> None:
        fraction = end + (1 - end) * 0.5 * (1 + math.cos(math.pi * k / max(updates - 1, 1)))
        for group, lr in zip(optimizer.param_groups, start, strict=True):
            group["lr"] = lr * fraction

    return schedule


def agreement(policy, frames: np.ndarray, values: np.ndarray, tolerance: float, batch_size: int = 512) -> float:
    """Share of states where the student's action is within ``tolerance`` of the teacher's best."""
    hits = 0
    for start in range(0, len(values), batch_size):
        chosen = student_actions(policy, torch.from_numpy(frames[start : start + batch_size])).cpu()
        hits += int(good_choice(torch.from_numpy(values[start : start + batch_size]), chosen, tolerance).sum())
    return hits / max(len(values), 1)
