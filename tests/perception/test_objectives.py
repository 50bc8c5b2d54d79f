"""The pretraining objectives (ATC, SPR) and the augmentation they train through, on tiny synthetic frames."""

import numpy as np
import pytest
import torch

from drive.perception.augment import augment
from drive.perception.checkpoint import make_encoder
from drive.perception.frame_store import FrameStore
from drive.perception.objectives import SPR
from drive.perception.pretrain import build_objective, resolve_recipe

SMALL = (4, 32, 16)  # (stack, along the road, across it): small enough for a few hundred steps in seconds
MOVES = np.array([[0, -3], [0, 0], [0, 3], [-3, 0], [3, 0]])  # action -> the other vehicle's move (along, across)


def synthetic_store(root, episodes: int = 10, length: int = 12, shards: int = 2, actions: bool = True) -> FrameStore:
    """A frame store of random ``SMALL`` stacks in ``shards`` shards, with a ``lane`` truth column and, if asked, the
    ``action`` column (int64 0..4) that collect-frames records."""
    rng = np.random.default_rng(0)
    store = FrameStore.create_or_resume(root, {"env": "test"})
    per_shard = episodes // shards
    for k in range(shards):
        episode = np.repeat(np.arange(k * per_shard, (k + 1) * per_shard), length)
        step = np.tile(np.arange(length), per_shard)
        truth = {"lane": rng.integers(0, 3, len(step))}
        if actions:
            truth["action"] = rng.integers(0, 5, len(step)).astype(np.int64)
        store.add_shard(rng.integers(0, 256, (len(step), *SMALL), dtype=np.uint8), episode, step, truth)
    return store


def _scene(position: np.ndarray) -> np.ndarray:
    """(N, *SMALL) uint8: grey road, the ego (120) fixed in the middle, another vehicle (250) at ``position``."""
    frames = np.full((len(position), *SMALL), 60, dtype=np.uint8)
    frames[:, :, 15:18, 7:9] = 120
    for i, (x, y) in enumerate(position):
        frames[i, :, x : x + 3, y : y + 2] = 250
    return frames


def planted_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs of stacks one step apart where only the action explains the change: the other vehicle moves by
    ``MOVES[action]``; the anchor alone says nothing about the action (drawn independently of it)."""
    rng = np.random.default_rng(seed)
    action = rng.integers(0, 5, n)
    start = np.stack([rng.integers(4, 26, n), rng.integers(3, 11, n)], 1)
    anchor, later = _scene(start), _scene(start + MOVES[action])
    return torch.as_tensor(anchor), torch.as_tensor(later), torch.as_tensor(action)[:, None]


def _objective(method: str, **overrides):
    return build_objective(resolve_recipe(method, {"features_dim": 64, "hidden": 128, **overrides}), SMALL, seed=0)


def _train(model, anchor, later, columns, steps: int, batch: int | None = None, lr: float = 1e-3, seed: int = 0):
    """Adam steps (minibatches of ``batch`` drawn from the rows, or the whole fixed batch), the loss after each."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        i = slice(None) if batch is None else torch.as_tensor(rng.choice(len(anchor), batch, replace=False))
        terms = model.terms(anchor[i], later[i], {k: v[i] for k, v in columns.items()})
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        model.update_target()
        losses.append({k: v.item() for k, v in terms.items()})
    return losses


@pytest.mark.parametrize("method", ["atc", "spr"])
def test_each_objective_lowers_its_loss_on_a_fixed_batch(method):
    anchor, later, action = planted_pairs(32, seed=0)
    model = _objective(method)
    losses = [terms["loss"] for terms in _train(model, anchor, later, {"action": action}, steps=40)]
    assert losses[-1] < losses[0] - 0.3 and losses[-1] < min(losses[:5]), losses[::8]


def test_the_spr_transition_reads_every_action_it_is_given():
    """Two policy steps (gap 2): changing either action changes the predicted latent; the same actions do not."""
    model = SPR(make_encoder("compact", SMALL, 32, seed=0), hidden=64, projection_dim=32)
    z = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    actions = torch.randint(0, 5, (16, 2), generator=torch.Generator().manual_seed(1))
    first_changed, second_changed = actions.clone(), actions.clone()
    first_changed[:, 0] = (actions[:, 0] + 1) % 5
    second_changed[:, 1] = (actions[:, 1] + 1) % 5
    with torch.no_grad():
        predicted = model.predict(z, actions)
        assert torch.equal(predicted, model.predict(z, actions.clone()))
        for other in (first_changed, second_changed):
            difference = (model.predict(z, other) - predicted).norm(dim=1)
            assert (difference > 1e-3).all(), difference.min()
        one_step = model.predict(z, actions[:, :1])
        assert (one_step - predicted).norm(dim=1).min() > 1e-3  # the second action is applied, not dropped


def test_inverse_dynamics_recovers_a_planted_action_better_than_chance():
    """The other vehicle's move between the two stacks is set by the action alone: the inverse head must read it
    off both embeddings (from the anchor alone it would be at chance, 0.2)."""
    anchor, later, action = planted_pairs(640, seed=0)
    test_anchor, test_later, test_action = planted_pairs(256, seed=1)
    torch.manual_seed(0)
    model = _objective("spr")
    _train(model, anchor, later, {"action": action}, steps=150, batch=64)
    with torch.no_grad():
        model.eval()
        z, z_later = model.encoder(test_anchor), model.encoder(test_later)
        predicted = model.inverse(torch.cat([z, z_later], 1)).argmax(1)
        blind = model.inverse(torch.cat([z, z], 1)).argmax(1)  # no second stack: nothing to read the move from
    accuracy = (predicted == test_action[:, 0]).float().mean().item()
    chance = np.bincount(test_action[:, 0].numpy()).max() / len(test_action)
    assert accuracy > chance + 0.3, (accuracy, chance)
    assert (blind == test_action[:, 0]).float().mean().item() < chance + 0.15


def _lanes_frame() -> torch.Tensor:
    """(1, *stack, 128, 64): four lanes across the road (darkest leftmost), one-pixel dark lines between them, and
    the ego (255) in the third lane, as in highway's frames."""
    frame = torch.zeros(1, 4, 128, 64)
    for k, value in enumerate((50, 100, 150, 200)):
        frame[..., 12 + 8 * k : 19 + 8 * k] = value  # lanes 7 px wide, each followed by a 1 px gap
    frame[:, :, 40:49, 29:33] = 255  # the ego inside lane 2's columns 28..34
    return frame


def _lane_runs(profile: torch.Tensor) -> list[tuple[int, int]]:
    """(first, last) column of each run of non-zero columns in a profile across the road."""
    columns = torch.nonzero(profile > 0).flatten().tolist()
    runs, start = [], columns[0]
    for a, b in zip(columns, [*columns[1:], None], strict=True):
        if b != a + 1:
            runs.append((start, a))
            start = b
    return runs


def test_the_augmentation_keeps_the_lanes_in_order_and_the_ego_in_its_lane():
    """augment shifts the whole stack up to 4 px along and across the road and scales its brightness: the lanes'
    left-to-right order, their width and the ego's lane are what must survive."""
    frames = _lanes_frame().repeat(64, 1, 1, 1).to(torch.uint8)
    out = augment(frames, torch.Generator().manual_seed(0))
    offsets = []
    for sample in out[:, -1]:
        runs = _lane_runs(sample[100])  # a row along the road away from the ego: only the lanes
        assert len(runs) == 4 and all(last - first == 6 for first, last in runs), runs
        intensities = [sample[100, first].item() for first, _ in runs]
        assert intensities == sorted(intensities) and len(set(intensities)) == 4  # darkest still leftmost
        ego_columns = torch.nonzero((sample == sample.max()).any(0)).flatten()
        lane = [k for k, (first, last) in enumerate(runs) if first <= ego_columns.min() and ego_columns.max() <= last]
        assert lane == [2]
        offsets.append(runs[0][0] - 12)
    assert len(set(offsets)) > 3 and max(map(abs, offsets)) <= 4  # it did move across the road, by at most 4 px
