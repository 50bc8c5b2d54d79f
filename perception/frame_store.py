"""A folder of unlabeled frame stacks in shards, with a manifest; ground truth in separate files beside them.

    DIR/manifest.json       env, backend, policy, config, seed, shapes, count, the shards
    DIR/frames_00000.npz    frames (K, stack, W, H) uint8, episode (K,) int64, step (K,) int64
    DIR/truth_00000.npz     one (K,) array per ground-truth target, for probes only

Within a shard, frames are ordered by episode then step, so a frame's successor in its episode is the next row
whenever ``episode`` matches and ``step`` is one more. Shards and the manifest are written to a temporary name and
renamed, so a stopped collection leaves only whole shards, and the manifest lists only those.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drive.errors import DriveError

MANIFEST = "manifest.json"


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
            raise DriveError(
                f"frames folder {str(self.root)!r}: shard {name!r} is missing or unreadable ({type(err).__name__}); "
                "collect the frames again into a new --out"
            ) from None

    def load(self, truth: bool = False, limit: int | None = None) -> dict[str, np.ndarray]:
        """All shards concatenated: ``frames``, ``episode``, ``step`` (and the ground truth if asked)."""
        parts: dict[str, list[np.ndarray]] = {}
        total = 0
        for shard in self.manifest["shards"]:
            arrays = self._read(shard["frames"], ("frames", "episode", "step"))
            if truth:
                arrays.update(self._read(shard["truth"]))
            for key, value in arrays.items():
                parts.setdefault(key, []).append(value)
            total += shard["count"]
            if limit is not None and total >= limit:
                break
        out = {k: np.concatenate(v) for k, v in parts.items()}
        return {k: v[:limit] for k, v in out.items()} if limit is not None else out


def successors(episode: np.ndarray, step: np.ndarray, gap: int = 1) -> np.ndarray:
    """For each row, the row ``gap`` steps later in the same episode, or -1 (rows ordered as in a shard)."""
    later = np.arange(len(episode)) + gap
    ok = later < len(episode)
    later = np.where(ok, later, 0)
    ok &= (episode[later] == episode) & (step[later] == step + gap)
    return np.where(ok, later, -1)
