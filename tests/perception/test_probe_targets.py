"""The rollout's probe targets: the collecting policy's action, its reward, the IDM driver's action."""

import json
import shutil

import numpy as np
import pytest
import torch

from drive.cli import main
from drive.perception.collect import collect_frames
from drive.perception.frame_store import FrameStore
from drive.perception.probe import format_probe_table, missing_targets, probe_scores
from drive.perception.truth import ROLLOUT_TARGETS, STATE_TARGETS, TARGETS


def _planted(n: int = 1000, dim: int = 12, seed: int = 0):
    """Features that linearly encode the action (5 classes) and the reward; other features that encode neither."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    truth = {
        "episode": np.arange(n),
        "action": (x @ rng.normal(size=(dim, 5))).argmax(1),
        "reward": x @ rng.normal(size=dim) + 0.05 * rng.normal(size=n),
        "idm_action": (x[:, :3] @ rng.normal(size=(3, 5))).argmax(1),
    }
    unrelated = rng.normal(size=(n, dim))
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(unrelated, dtype=torch.float32), truth


def test_a_probe_reads_a_planted_action_and_reward_and_not_from_unrelated_features():
    planted, unrelated, truth = _planted()
    test = np.arange(1000) % 5 == 4
    scores = probe_scores(planted, truth, test)
    assert set(scores) == set(ROLLOUT_TARGETS)  # the state targets are absent here: skipped, not an error
    assert scores["action"] > 0.9 and scores["idm_action"] > 0.9 and scores["reward"] > 0.99
    chance = {name: np.bincount(truth[name][test]).max() / test.sum() for name in ("action", "idm_action")}
    blind = probe_scores(unrelated, truth, test)
    assert blind["action"] < chance["action"] + 0.1 and blind["idm_action"] < chance["idm_action"] + 0.1
    assert blind["reward"] < 0.05


def test_targets_an_older_store_lacks_are_skipped_and_named():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 6))
    truth = {name: (x[:, 0] > 0).astype(int) for name in STATE_TARGETS} | {"episode": np.arange(200)}
    scores = probe_scores(torch.as_tensor(x), truth, np.arange(200) % 5 == 4)
    assert set(scores) == set(STATE_TARGETS) and missing_targets(truth) == list(ROLLOUT_TARGETS)
    table = format_probe_table({"random": scores})
    assert [line.split()[0] for line in table.splitlines()[1:-1]] == list(STATE_TARGETS)
    assert table.splitlines()[-1] == "not in this frame store: action, reward, idm_action"


@pytest.fixture(scope="module")
def random_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("frames") / "random"
    return collect_frames(out=out, frames=60, n_envs=5, shard_size=30, policy="random", progress=False)


def test_a_batched_collection_records_the_action_the_reward_and_the_idm_action(random_store):
    data = FrameStore.open(random_store.root).load(truth=True)
    assert set(TARGETS) <= set(data)
    for name in ("action", "idm_action"):
        assert data[name].shape == (60,) and data[name].dtype == np.int64
        assert data[name].min() >= 0 and data[name].max() <= 4  # DiscreteMetaAction: LANE_LEFT .. SLOWER
    assert len(np.unique(data["action"])) > 1  # a random policy's actions, not a constant
    assert data["reward"].shape == (60,) and data["reward"].dtype == np.float32
    assert np.isfinite(data["reward"]).all() and (data["reward"] >= 0).all() and (data["reward"] <= 1).all()


def test_the_idm_policy_takes_the_recorded_idm_action(tmp_path):
    store = collect_frames(out=tmp_path / "idm", frames=24, n_envs=4, shard_size=24, policy="idm", progress=False)
    data = FrameStore.open(store.root).load(truth=True)
    assert np.array_equal(data["action"], data["idm_action"])


def test_a_highway_env_collection_records_the_action_and_reward_but_no_idm_action(tmp_path):
    store = collect_frames(out=tmp_path / "he", frames=4, backend="highway-env", shard_size=4, progress=False)
    data = FrameStore.open(store.root).load(truth=True)
    assert data["action"].shape == (4,) and data["action"].dtype == np.int64 and np.isfinite(data["reward"]).all()
    assert "idm_action" not in data


def _old_store(store: FrameStore, out) -> FrameStore:
    """A copy of ``store`` as collected before the rollout targets were recorded."""
    shutil.copytree(store.root, out)
    for shard in store.manifest["shards"]:
        with np.load(out / shard["truth"]) as truth:
            kept = {k: truth[k] for k in truth.files if k not in ROLLOUT_TARGETS}
        np.savez(out / shard["truth"], **kept)
    return FrameStore.open(out)


def test_drive_probe_reports_the_rollout_targets_and_still_probes_an_older_store(random_store, tmp_path, capsys):
    new = _probe(random_store.root, tmp_path / "new-runs", capsys)
    old = _probe(_old_store(random_store, tmp_path / "old").root, tmp_path / "old-runs", capsys)
    assert set(new["results"]["random"]) == set(TARGETS) and new["skipped"] == []
    assert new["rows"] == list(TARGETS) and new["last"].startswith("probe: ")
    scores = new["results"]["random"]
    assert 0 <= scores["action"] <= 1 and 0 <= scores["idm_action"] <= 1 and np.isfinite(scores["reward"])
    assert set(old["results"]["random"]) == set(STATE_TARGETS) and old["skipped"] == list(ROLLOUT_TARGETS)
    assert old["rows"] == list(STATE_TARGETS) and old["last"] == "not in this frame store: action, reward, idm_action"


def _probe(frames, runs, capsys) -> dict:
    """``drive probe`` with a random encoder: probe.json, the table's target rows and the line after them."""
    capsys.readouterr()
    assert main(["probe", "--frames", str(frames), "--encoder", "random", "--runs-dir", str(runs), "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    record = json.loads(next(runs.iterdir()).joinpath("probe.json").read_text())
    rows = [line.split()[0] for line in lines[1:] if line.split()[0] in TARGETS]
    return {**record, "rows": rows, "last": lines[len(rows) + 1]}
