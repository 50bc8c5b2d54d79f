"""A folder of unlabeled frame stacks in shards, with a manifest; ground truth in separate files beside them.

    DIR/manifest.json       env, backend, policy, config, seed, shapes, count, the shards
    DIR/frames_00000.npz    frames (K, stack, W, H) uint8, episode (K,) int64, step (K,) int64
    DIR/truth_00000.npz     one (K,) array per probe target (``drive.perception.truth.TARGETS``), for probes only

Within a shard, frames are ordered by episode then step, so a frame's successor in its episode is the next row
whenever ``episode`` matches and ``step`` is one more. Shards and the manifest are written to a temporary name and
renamed, so a stopped collection leaves only whole shards, and the manifest lists only those.

Two readers: ``load`` concatenates shards (the probes' few thousand frames), ``batches`` streams shuffled
minibatches holding a bounded number of shards (pretraining on more frames than fit in memory), with the truth
columns an objective asks for (``truth=("action",)``: SPR's action-conditioned prediction).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drive.errors import DriveError

MANIFEST = "manifest.json"
FRAME_KEYS = ("frames", "episode", "step")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class FrameStore:
    root: Path
    manifest: dict

    @classmethod
    def open(cls, root: str | Path) -> FrameStore:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise DriveError(f"frames folder {str(root)!r} has no {MANIFEST}; make one with drive collect-frames")
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest["shards"], list) or not isinstance(manifest["count"], int):
                raise TypeError("shards or count")
        except (ValueError, KeyError, TypeError) as err:
            raise DriveError(
                f"frames folder {str(root)!r} has a corrupt {MANIFEST} ({type(err).__name__}); collect it again "
                "into a new --out"
            ) from None
        return cls(root, manifest)

    @classmethod
    def create_or_resume(cls, root: str | Path, header: dict) -> FrameStore:
        """A new store, or the existing one at ``root`` if it was collected with the same ``header``."""
        root = Path(root)
        if (root / MANIFEST).is_file():
            store = cls.open(root)
            differs = [k for k in header if store.manifest.get(k) != header[k]]
            if differs:
                key = differs[0]
                raise DriveError(
                    f"frames folder {str(root)!r} was collected with {key}={store.manifest.get(key)!r}, not "
                    f"{header[key]!r}; resume with the same settings or choose another --out"
                )
            return store
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root, {**header, "count": 0, "episodes": 0, "shards": []})
        store._write_manifest()
        return store

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    def add_shard(self, frames: np.ndarray, episode: np.ndarray, step: np.ndarray, truth: dict) -> None:
        order = np.lexsort((step, episode))
        index = len(self.manifest["shards"])
        names = {"frames": f"frames_{index:05d}.npz", "truth": f"truth_{index:05d}.npz"}
        arrays = {"frames": frames[order], "episode": episode[order], "step": step[order]}
        _atomic_write(self.root / names["frames"], lambda f: np.savez_compressed(f, **arrays))
        _atomic_write(self.root / names["truth"], lambda f: np.savez(f, **{k: v[order] for k, v in truth.items()}))
        self.manifest["shards"].append({**names, "count": len(order)})
        self.manifest["count"] += len(order)
        self.manifest["episodes"] = int(max(self.manifest["episodes"], int(episode.max()) + 1))
        self._write_manifest()

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=2).encode()
        _atomic_write(self.root / MANIFEST, lambda f: f.write(text))

    # --- reading -----------------------------------------------------------------------------------------

    def _read(self, name: str, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        try:
            with np.load(self.root / name) as data:
                return {k: data[k] for k in (keys or data.files)}
        except (OSError, KeyError, ValueError, EOFError) as err:
            raise _unreadable(self.root, name, err) from None

    def load(self, truth: bool = False, limit: int | None = None) -> dict[str, np.ndarray]:
        """All shards concatenated: ``frames``, ``episode``, ``step`` (and the ground truth if asked).

        A truth key missing from some shard read is left out: a store collected before a target was recorded and
        resumed after holds it in its later shards only, and a shorter column would misalign every row."""
        parts: dict[str, list[np.ndarray]] = {}
        total = 0
        for shard in self.manifest["shards"]:
            arrays = self._read(shard["frames"], FRAME_KEYS)
            if truth:
                arrays.update(self._read(shard["truth"]))
            for key, value in arrays.items():
                parts.setdefault(key, []).append(value)
            total += shard["count"]
            if limit is not None and total >= limit:
                break
        out = {k: np.concatenate(v) for k, v in parts.items() if len(v) == len(parts.get("frames", ()))}
        return {k: v[:limit] for k, v in out.items()} if limit is not None else out

    def batches(
        self,
        batch_size: int,
        rng: np.random.Generator,
        shards_in_memory: int = 4,
        gap: int | None = None,
        drop_last: bool = False,
        truth: tuple[str, ...] = (),
    ) -> Iterator[np.ndarray | tuple]:
        """One pass (epoch) over the store in shuffled minibatches, holding at most ``shards_in_memory`` shards'
        frames at once, where ``load`` holds them all: pretraining may read more frames than fit in memory.

        Yields ``frames`` (B, *frame_shape) uint8; with ``gap``, ``(frames, later)``, ``later[i]`` being the stack
        ``gap`` steps after ``frames[i]`` in the same episode. Pairs are found within a shard (``successors``): a
        pair whose later frame lies in the next shard is never drawn (collect-frames starts each shard with fresh
        episodes, so its stores lose none). Every usable row (every row; with ``gap``, every row with such a
        successor) comes exactly once per call. Shards are visited in a random order, ``shards_in_memory`` at a
        time, and the rows of those shuffled together; fewer than ``batch_size`` rows left over from one group are
        copied into the next group's first batch. The last batch is smaller unless ``drop_last`` drops it.

        With ``truth`` (names of ground-truth columns, e.g. ``("action",)``) a dict of those columns is yielded
        last: ``(frames, columns)``, or ``(frames, later, columns)`` with ``gap``. Without ``gap`` a column is
        (B,), the anchor row's value; with ``gap`` it is (B, gap), the values of the anchor and of each step up to
        the later stack (for ``action``: a_t .. a_{t+gap-1}, the actions that led from one stack to the other).
        A name that some shard lacks is refused (a store collected before the column was recorded).
        Arguments are checked here, before the first batch is asked for.
        """
        _check_batch_arguments(batch_size, rng, shards_in_memory, gap)
        truth = tuple(truth)
        if truth:
            self._check_truth(truth)
        gap = None if gap is None else int(gap)
        return self._stream(int(batch_size), rng, int(shards_in_memory), gap, drop_last, truth)

    def usable_count(self, gap: int | None = None) -> int:
        """The rows one ``batches`` pass yields in all (every row; with ``gap``, every row with a successor in its
        shard): what a progress bar's total needs. Reads each shard's episode and step columns, not its frames."""
        shards = self.manifest["shards"]
        return sum(len(_usable_rows([self._read(s["frames"], ("episode", "step"))], gap)[1]) for s in shards)

    def truth_keys(self) -> set[str]:
        """The ground-truth columns that every shard holds (a store resumed after a column was first recorded holds
        it in its later shards only). Reads each truth file's index, not its arrays."""
        keys: set[str] | None = None
        for shard in self.manifest["shards"]:
            try:
                with np.load(self.root / shard["truth"]) as data:
                    found = set(data.files)
            except (OSError, ValueError, EOFError) as err:
                raise _unreadable(self.root, shard["truth"], err) from None
            keys = found if keys is None else keys & found
        return keys or set()

    def _check_truth(self, truth: tuple[str, ...]) -> None:
        held = self.truth_keys()
        missing = [name for name in truth if name not in held]
        if missing:
            raise DriveError(
                f"frames folder {str(self.root)!r} does not hold truth column {missing[0]!r} in every shard; "
                f"valid: {', '.join(sorted(held)) or 'none'}"
            )

    def _stream(self, batch_size, rng, shards_in_memory: int, gap: int | None, drop_last, truth: tuple[str, ...]):
        shards = self.manifest["shards"]
        order = rng.permutation(len(shards))
        carry = None  # fewer than batch_size rows, copied out of the previous group
        for start in range(0, len(order), shards_in_memory):
            chosen = [shards[i] for i in order[start : start + shards_in_memory]]
            group = [self._read(s["frames"], FRAME_KEYS) for s in chosen]
            shard, row, later = _usable_rows(group, gap)
            # One list per array kind, each holding that kind for every shard of the group: the frames, then the
            # truth columns asked for.
            arrays = [[a["frames"] for a in group]]
            if truth:
                columns = [self._read(s["truth"], truth) for s in chosen]
                arrays += [[c[name] for c in columns] for name in truth]
                del columns
            del group  # only the frames (and the columns asked for) stay
            pick = rng.permutation(len(row))
            shard, row, later = shard[pick], row[pick], later[pick]
            begin = 0
            if carry is not None:  # top the carried rows up to a whole batch
                begin = min(batch_size - len(carry[0]), len(row))
                carry = _joined(carry, _batch(arrays, shard[:begin], row[:begin], later[:begin], gap))
                if len(carry[0]) == batch_size:
                    yield _out(carry, gap, truth)
                    carry = None
            while begin < len(row):
                end = begin + batch_size
                batch = _batch(arrays, shard[begin:end], row[begin:end], later[begin:end], gap)
                if len(batch[0]) < batch_size:
                    carry = batch
                else:
                    yield _out(batch, gap, truth)
                begin = end
            del arrays  # before the next group is read
        if carry is not None and len(carry[0]) and not drop_last:
            yield _out(carry, gap, truth)


def _check_batch_arguments(batch_size, rng, shards_in_memory, gap) -> None:
    for name, value in (("batch_size", batch_size), ("shards_in_memory", shards_in_memory), ("gap", gap)):
        if name == "gap" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise DriveError(f"{name} must be a whole number at least 1, got {value!r}")
    if not isinstance(rng, np.random.Generator):
        raise DriveError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}")


def _usable_rows(group: list[dict], gap: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shard within the group, row, its successor's row) of every usable row; the successor is the row itself
    without ``gap``."""
    shard, row, later = [], [], []
    for k, arrays in enumerate(group):
        after = np.arange(len(arrays["episode"])) if gap is None else successors(arrays["episode"], arrays["step"], gap)
        usable = np.flatnonzero(after >= 0)
        shard.append(np.full(len(usable), k))
        row.append(usable)
        later.append(after[usable])
    return np.concatenate(shard), np.concatenate(row), np.concatenate(later)


def _gather(frames: list[np.ndarray], shard: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Rows of several shards, copied into one array in the order asked (never a view that pins a shard)."""
    out = np.empty((len(row), *frames[0].shape[1:]), dtype=frames[0].dtype)
    for k in np.unique(shard):
        hit = shard == k
        out[hit] = frames[k][row[hit]]
    return out


def _batch(arrays, shard, row, later, gap) -> tuple[np.ndarray, ...]:
    """(anchor[, later], *columns): ``arrays[0]`` holds the group's frames, the rest its truth columns. With ``gap``
    a column holds rows ``row .. row + gap - 1``: rows are sorted by (episode, step), so the rows between a row and
    its successor ``gap`` steps on are exactly the steps between them."""
    frames, columns = arrays[0], arrays[1:]
    anchor = _gather(frames, shard, row)
    if gap is None:
        return (anchor, *(_gather(c, shard, row) for c in columns))
    spans = (np.stack([_gather(c, shard, row + j) for j in range(gap)], 1) for c in columns)
    return (anchor, _gather(frames, shard, later), *spans)


def _joined(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b, strict=True))


def _out(batch: tuple[np.ndarray, ...], gap, truth: tuple[str, ...] = ()):
    n_frames = 1 if gap is None else 2
    frames = batch[:n_frames]
    if not truth:
        return frames[0] if gap is None else frames
    return (*frames, dict(zip(truth, batch[n_frames:], strict=True)))


def _unreadable(root: Path, name: str, err: Exception) -> DriveError:
    return DriveError(
        f"frames folder {str(root)!r}: shard {name!r} is missing or unreadable ({type(err).__name__}); "
        "collect the frames again into a new --out"
    )


def successors(episode: np.ndarray, step: np.ndarray, gap: int = 1) -> np.ndarray:
    """For each row, the row ``gap`` steps later in the same episode, or -1 (rows ordered as in a shard)."""
    later = np.arange(len(episode)) + gap
    ok = later < len(episode)
    later = np.where(ok, later, 0)
    ok &= (episode[later] == episode) & (step[later] == step + gap)
    return np.where(ok, later, -1)
