"""The streaming reader of a frame store: every usable row once per pass, pairs in one episode, bounded memory."""

import weakref
from collections import Counter

import numpy as np
import pytest

from drive.errors import DriveError
from drive.perception.frame_store import FrameStore, successors

SHAPE = (2, 3, 2)  # a frame stack small enough to write many shards; the first two pixels spell the row's id


def _write_store(root, shard_lengths: list[list[int]]) -> tuple[FrameStore, np.ndarray, np.ndarray, list]:
    """A store whose shards hold episodes of the given lengths, each frame marked with a store-wide row id.

    Returns the store, each id's episode and step, and each shard's ids in the store's row order."""
    store = FrameStore.create_or_resume(root, {"env": "test"})
    episode_of, step_of, shard_ids = [], [], []
    next_episode = 0
    for lengths in shard_lengths:
        episode = np.concatenate([np.full(n, next_episode + k) for k, n in enumerate(lengths)])
        step = np.concatenate([np.arange(n) for n in lengths])
        ids = len(episode_of) + np.arange(len(episode))
        episode_of += episode.tolist()
        step_of += step.tolist()
        shuffle = np.random.default_rng(len(shard_ids)).permutation(len(ids))  # add_shard sorts them back
        store.add_shard(_frames(ids)[shuffle], episode[shuffle], step[shuffle], {"lane": ids[shuffle] % 3})
        shard_ids.append(ids)
        next_episode += len(lengths)
    return store, np.array(episode_of), np.array(step_of), shard_ids


def _frames(ids: np.ndarray) -> np.ndarray:
    frames = np.zeros((len(ids), *SHAPE), dtype=np.uint8)
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = ids // 256, ids % 256
    return frames


def _ids(frames: np.ndarray) -> np.ndarray:
    return frames[:, 0, 0, 0].astype(np.int64) * 256 + frames[:, 0, 0, 1]


LENGTHS = [[5, 12, 3], [20], [1, 1, 7, 9], [14, 2], [6, 6, 6], [30], [4]]  # 7 shards, 126 rows


def _usable(episode_of, step_of, shard_ids, gap):
    """The ids a pass must visit: with ``gap``, those with a successor in their own shard."""
    if gap is None:
        return np.concatenate(shard_ids)
    return np.concatenate([ids[successors(episode_of[ids], step_of[ids], gap) >= 0] for ids in shard_ids])


@pytest.mark.parametrize("gap", [None, 1, 3])
@pytest.mark.parametrize("shards_in_memory", [1, 3, 10])
def test_a_pass_visits_every_usable_row_once_and_pairs_stay_in_their_episode(tmp_path, gap, shards_in_memory):
    store, episode_of, step_of, shard_ids = _write_store(tmp_path / "frames", LENGTHS)
    usable = _usable(episode_of, step_of, shard_ids, gap)
    rng = np.random.default_rng(0)
    orders = []
    for _ in range(2):  # two passes (epochs): each one complete, in another order
        seen, sizes = [], []
        for batch in store.batches(16, rng, shards_in_memory=shards_in_memory, gap=gap):
            anchor, later = (batch, None) if gap is None else batch
            assert anchor.dtype == np.uint8 and anchor.shape[1:] == SHAPE
            ids = _ids(anchor)
            if gap is not None:
                assert later.shape == anchor.shape
                later_ids = _ids(later)
                assert (episode_of[later_ids] == episode_of[ids]).all()
                assert (step_of[later_ids] == step_of[ids] + gap).all()
            seen += ids.tolist()
            sizes.append(len(ids))
        assert Counter(seen) == Counter(usable.tolist())
        assert all(size == 16 for size in sizes[:-1]) and 1 <= sizes[-1] <= 16
        orders.append(seen)
    assert orders[0] != orders[1]


def test_drop_last_drops_only_the_short_final_batch(tmp_path):
    store, *_ = _write_store(tmp_path / "frames", LENGTHS)  # 126 rows: 7 batches of 16 and 14 left
    sizes = [len(b) for b in store.batches(16, np.random.default_rng(0), shards_in_memory=2, drop_last=True)]
    assert sizes == [16] * 7


def test_the_same_seed_streams_the_same_batches(tmp_path):
    store, *_ = _write_store(tmp_path / "frames", LENGTHS)
    first = [_ids(b).tolist() for b in store.batches(8, np.random.default_rng(5), shards_in_memory=2)]
    second = [_ids(b).tolist() for b in store.batches(8, np.random.default_rng(5), shards_in_memory=2)]
    assert first == second


@pytest.mark.parametrize("shards_in_memory", [1, 2, 3])
def test_never_more_than_shards_in_memory_shards_are_held(tmp_path, monkeypatch, shards_in_memory):
    """Every shard array read is watched by a weak reference: alive means some part of the reader still holds it."""
    store, *_ = _write_store(tmp_path / "frames", LENGTHS)
    watched: list[weakref.ref] = []
    peak = {"reads": 0, "held": 0}
    real = FrameStore._read

    def held() -> int:  # numpy arrays are freed by reference counting, the moment the last holder lets go
        return sum(ref() is not None for ref in watched)

    def watching_read(self, name, keys=None):
        peak["held"] = max(peak["held"], held() + 1)  # the shard about to be read counts
        arrays = real(self, name, keys)
        watched.append(weakref.ref(arrays["frames"]))
        peak["reads"] += 1
        return arrays

    monkeypatch.setattr(FrameStore, "_read", watching_read)
    for _ in store.batches(8, np.random.default_rng(0), shards_in_memory=shards_in_memory, gap=1):
        peak["held"] = max(peak["held"], held())
    assert peak["reads"] == len(LENGTHS)  # each shard read once per pass
    assert peak["held"] == min(shards_in_memory, len(LENGTHS))
    assert held() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a whole number at least 1, got 0"),
        ({"batch_size": 2.5}, "batch_size must be a whole number at least 1, got 2.5"),
        ({"shards_in_memory": 0}, "shards_in_memory must be a whole number at least 1, got 0"),
        ({"shards_in_memory": True}, "shards_in_memory must be a whole number at least 1, got True"),
        ({"gap": 0}, "gap must be a whole number at least 1, got 0"),
        ({"gap": -2}, "gap must be a whole number at least 1, got -2"),
        ({"rng": 7}, r"rng must be a numpy Generator \(np.random.default_rng\(seed\)\), got 7"),
    ],
)
def test_bad_arguments_are_refused_before_any_shard_is_read(tmp_path, monkeypatch, kwargs, message):
    store, *_ = _write_store(tmp_path / "frames", LENGTHS[:2])
    monkeypatch.setattr(FrameStore, "_read", lambda *a, **k: pytest.fail("read a shard"))
    arguments = {"batch_size": 4, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(DriveError, match=f"^{message}$"):
        store.batches(**arguments)  # refused at the call, not at the first batch


def test_load_leaves_out_a_truth_key_that_only_later_shards_hold(tmp_path):
    """A store collected before a target was recorded and resumed after: the column would misalign rows."""
    store = FrameStore.create_or_resume(tmp_path / "frames", {"env": "test"})
    ids = np.arange(6)
    episode, step = np.repeat([0, 1], 3), np.tile(np.arange(3), 2)
    store.add_shard(_frames(ids[:3]), episode[:3], step[:3], {"lane": ids[:3]})
    store.add_shard(_frames(ids[3:]), episode[3:], step[3:], {"lane": ids[3:], "reward": ids[3:] * 1.0})
    data = FrameStore.open(store.root).load(truth=True)
    assert "reward" not in data and data["lane"].tolist() == ids.tolist()
    assert FrameStore.open(store.root).load(truth=True, limit=3)["lane"].tolist() == [0, 1, 2]
