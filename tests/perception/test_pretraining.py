"""Frame store, augmentations, pretraining, probes and pretrained encoders in agents."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from drive.cli import main
from drive.config import CONFIG_DIR
from drive.errors import DriveError
from drive.perception.augment import augment, brightness, random_shift
from drive.perception.checkpoint import load_encoder, make_encoder, save_encoder
from drive.perception.collect import collect_frames
from drive.perception.frame_store import FrameStore, successors
from drive.perception.pretrain import ATC, pretrain, resolve_recipe
from drive.perception.probe import L2_GRID, fit_and_score, probe_scores
from drive.perception.truth import TARGETS
from tests.cli.test_cli import _sets
from tests.conftest import SHORT_EPISODES, TINY_DQN
from tests.perception.test_objectives import synthetic_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    return collect_frames(out=out, frames=300, n_envs=8, shard_size=128, policy="idm", progress=False)


def test_frame_store_round_trips_frames_truth_and_episodes(store):
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert manifest["count"] == 300 and [s["count"] for s in manifest["shards"]] == [128, 128, 44]
    assert manifest["env"] == "highway" and manifest["backend"] == "batched" and manifest["frame_shape"] == [4, 128, 64]
    data = FrameStore.open(store.root).load(truth=True)
    assert data["frames"].shape == (300, 4, 128, 64) and data["frames"].dtype == np.uint8
    assert set(TARGETS) <= set(data) and all(len(data[k]) == 300 for k in TARGETS)
    assert set(np.unique(data["lane"])) <= {0, 1, 2, 3}
    # Episode boundaries: a successor is the same episode one step on, and its oldest frames are ours shifted.
    later = successors(data["episode"], data["step"])
    i = np.flatnonzero(later >= 0)
    assert len(i) > 200
    assert np.array_equal(data["frames"][later[i], :-1], data["frames"][i, 1:])
    assert (data["episode"][later[i]] == data["episode"][i]).all()


def test_a_collection_resumes_and_refuses_other_settings(store, tmp_path):
    out = tmp_path / "frames"
    collect_frames(out=out, frames=200, n_envs=8, shard_size=128, progress=False)
    first = (out / "frames_00000.npz").read_bytes()
    resumed = collect_frames(out=out, frames=400, n_envs=8, shard_size=128, progress=False)
    assert resumed.count == 400 and (out / "frames_00000.npz").read_bytes() == first
    episodes = FrameStore.open(out).load()["episode"]
    assert len(np.unique(episodes)) > len(np.unique(episodes[:200]))  # new episodes, not a replay
    with pytest.raises(DriveError, match="was collected with policy='random', not 'idm'"):
        collect_frames(out=out, frames=500, n_envs=8, shard_size=128, policy="idm", progress=False)


def test_a_resumed_random_collection_draws_the_frames_of_an_uninterrupted_one(tmp_path):
    whole = collect_frames(out=tmp_path / "whole", frames=256, n_envs=8, shard_size=128, progress=False)
    collect_frames(out=tmp_path / "parts", frames=128, n_envs=8, shard_size=128, progress=False)
    parts = collect_frames(out=tmp_path / "parts", frames=256, n_envs=8, shard_size=128, progress=False)
    assert np.array_equal(FrameStore.open(parts.root).load()["frames"], FrameStore.open(whole.root).load()["frames"])


def test_a_refused_collection_leaves_nothing_and_a_busy_one_is_refused(tmp_path):
    from drive.runs import locked

    out = tmp_path / "frames"
    with pytest.raises(DriveError, match="unknown env 'bogus'"):
        collect_frames(out=out, frames=8, env="bogus", n_envs=2, shard_size=8, progress=False)
    assert not out.exists()
    collect_frames(out=out, frames=8, n_envs=2, shard_size=8, progress=False)
    with locked(out, "frames folder"), pytest.raises(DriveError, match=r"frames folder .* is in use by another drive"):
        collect_frames(out=out, frames=16, n_envs=2, shard_size=8, progress=False)
    assert FrameStore.open(out).count == 8


def test_a_stopped_write_leaves_no_shard_behind(tmp_path, monkeypatch):
    out = tmp_path / "frames"
    calls = {"n": 0}
    real = np.savez_compressed

    def stop_on_second_shard(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "savez_compressed", stop_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        collect_frames(out=out, frames=256, n_envs=8, shard_size=128, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 128 and len(manifest["shards"]) == 1
    assert sorted(p.name for p in out.glob("*.npz")) == ["frames_00000.npz", "truth_00000.npz"]


def _lane_from_pixels(frame: np.ndarray) -> int | None:
    """The ego's lane read off a (W, H) frame: its sprite's rows below the top outer line, 7 px per lane."""
    ego = np.argwhere(frame == 132)  # the ego's green body in gray
    solid = np.flatnonzero((frame == 254).sum(0) > 100)  # rows where a continuous line runs
    if len(ego) < 3 or len(solid) == 0:
        return None
    return int(np.floor((ego[:, 1].mean() - solid.min()) / 7.0))  # 4 m * 1.75 px/m per lane


def test_augmentations_keep_the_ego_lane(store):
    data = FrameStore.open(store.root).load(truth=True)
    frames = torch.as_tensor(data["frames"][:64])
    shifted = random_shift(frames, generator=torch.Generator().manual_seed(0)).round().to(torch.uint8).numpy()
    checked = 0
    for k in range(64):
        before, after = _lane_from_pixels(frames[k, -1].numpy()), _lane_from_pixels(shifted[k, -1])
        if before is not None and after is not None:
            assert before == after == data["lane"][k]
            checked += 1
    assert checked >= 40
    assert not torch.equal(torch.as_tensor(shifted).float(), frames.float())  # something did move
    # Brightness changes no geometry: every pixel keeps its rank; and nothing mirrors a frame.
    bright = brightness(frames.float(), generator=torch.Generator().manual_seed(1))
    assert torch.equal(bright.argmax(-1), frames.float().argmax(-1))
    assert augment(frames).shape == frames.shape


def test_a_shift_along_the_road_only_keeps_every_pixel_in_its_lane(store):
    frames = torch.as_tensor(FrameStore.open(store.root).load()["frames"][:32])
    along = random_shift(frames, generator=torch.Generator().manual_seed(0), lateral=False)
    both = random_shift(frames, generator=torch.Generator().manual_seed(0))
    across = lambda x: x.float().sum(dim=1)  # noqa: E731  (B, W, H) -> the profile across the road, (B, H)
    assert torch.equal(across(along[:, -1]).argmax(-1), across(frames[:, -1]).argmax(-1))
    assert not torch.equal(across(both[:, -1]).argmax(-1), across(frames[:, -1]).argmax(-1))
    assert not torch.equal(along, frames.float())  # it did move, along the road


def test_a_pretraining_step_lowers_the_loss_on_a_fixed_batch(store):
    data = FrameStore.open(store.root).load()
    later = successors(data["episode"], data["step"])
    i = np.flatnonzero(later >= 0)[:32]
    anchor, positive = torch.as_tensor(data["frames"][i]), torch.as_tensor(data["frames"][later[i]])
    model = ATC(make_encoder("nature", (4, 128, 64), 64, seed=0))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(30):
        loss = model.loss(anchor, positive)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_target()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3 and losses[-1] < min(losses[:5])


def test_probes_recover_a_planted_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 12))
    truth = {
        "episode": np.arange(1000),
        "lane": (x @ rng.normal(size=(12, 4))).argmax(1),
        "speed": x @ rng.normal(size=12) + 0.05 * rng.normal(size=1000),
        "front_distance": 3 * x[:, 0] + 20,
        "front_relative_speed": rng.normal(size=1000),  # no signal: R^2 near 0
        "left_occupied": (x[:, 1] > 0).astype(int),
        "right_occupied": (x[:, 2] + x[:, 3] > 0).astype(int),
    }
    scores = probe_scores(torch.as_tensor(x, dtype=torch.float32), truth, np.arange(1000) % 5 == 4)
    assert scores["lane"] > 0.9 and scores["left_occupied"] > 0.95 and scores["right_occupied"] > 0.95
    assert scores["speed"] > 0.99 and scores["front_distance"] > 0.99
    assert scores["front_relative_speed"] < 0.05


def test_probe_regularisation_is_chosen_on_validation_episodes():
    """Nearly as many features as training frames: the weakest L2 overfits; the chosen one generalises."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 300))
    y = x @ rng.normal(size=300) / np.sqrt(300) + 0.5 * rng.normal(size=400)
    train, test = np.arange(400) % 5 != 4, np.arange(400) % 5 == 4
    weakest = fit_and_score("regression", *_rows(x, y, train), L2_GRID[0], *_rows(x, y, test))
    truth = {name: (y if name == "speed" else (x[:, 1] > 0).astype(int)) for name in TARGETS}
    truth["episode"] = np.arange(400)
    chosen = probe_scores(torch.as_tensor(x), truth, test)["speed"]
    assert weakest < 0 and chosen > 0.4


def _rows(x, y, mask):
    return torch.as_tensor(x[mask]), torch.as_tensor(y[mask])


def test_encoder_checkpoint_round_trips(tmp_path):
    encoder = make_encoder("nature", (4, 128, 64), 32, seed=3)
    path = save_encoder(tmp_path / "encoder.pt", encoder, "nature", (4, 128, 64), method="atc")
    loaded, metadata = load_encoder(path)
    assert metadata["observation_shape"] == [4, 128, 64] and metadata["features_dim"] == 32
    frames = torch.randint(0, 256, (2, 4, 128, 64), dtype=torch.uint8)
    assert torch.equal(loaded(frames), encoder.eval()(frames))


def test_an_encoder_of_another_input_shape_is_refused(tmp_path, capsys):
    path = save_encoder(tmp_path / "e.pt", make_encoder("nature", (4, 84, 84), 32), "nature", (4, 84, 84))
    runs = tmp_path / "runs"
    assert main(["train-agent", "--encoder", str(path), "--runs-dir", str(runs), "-q"]) == 2
    err = capsys.readouterr().err
    assert "takes frames shaped (4, 84, 84), but the env gives (4, 128, 64)" in err and err.count("\n") == 1
    assert not runs.exists()
    assert main(["train-agent", "--freeze-encoder", "--runs-dir", str(runs), "-q"]) == 2
    assert "--freeze-encoder needs a pretrained encoder" in capsys.readouterr().err


def test_probe_makes_a_random_encoder_of_the_named_architecture_and_refuses_an_unknown_one(store, tmp_path, capsys):
    from drive.perception.encoders import CompactEncoder, NatureEncoder
    from drive.perception.probe_run import resolve_encoder

    label, encoder = resolve_encoder("random:compact", (4, 128, 64))
    assert label == "random:compact" and isinstance(encoder, CompactEncoder) and encoder.features_dim == 256
    _, nature = resolve_encoder("random", (4, 128, 64))
    assert isinstance(nature, NatureEncoder) and nature.features_dim == 512  # each architecture's own width
    runs = tmp_path / "runs"
    assert main(["probe", "--frames", str(store.root), "--encoder", "random:vit", "--runs-dir", str(runs), "-q"]) == 2
    err = capsys.readouterr().err
    assert "unknown encoder 'random:vit'; valid: random, random:nature, random:resnet, random:compact" in err
    assert err.count("\n") == 1 and not runs.exists()


def test_pretrain_then_probe_from_the_command_line(store, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "pretrain"
    args = ["pretrain", "--frames", str(store.root), "--epochs", "2", "--batch-size", "32", "--out", str(out), "-q"]
    assert main(args) == 0
    _, metadata = load_encoder(out / "encoder.pt")
    assert metadata["method"] == "atc" and metadata["epochs"] == 2 and metadata["observation_shape"] == [4, 128, 64]
    assert metadata["batch_size"] == 32 and metadata["lr"] == 3e-4 and metadata["frames"] == str(store.root)
    events = EventAccumulator(str(out / "tb")).Reload()
    assert [e.step for e in events.Scalars("probe/lane")] == [1, 2]
    losses = [e.value for e in events.Scalars("pretrain/loss")]
    assert len(losses) >= 4 and np.isfinite(losses).all()
    capsys.readouterr()
    specs = ["--encoder", "random", "--encoder", str(out / "encoder.pt")]
    assert main(["probe", "--frames", str(store.root), *specs, "--runs-dir", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[-2:] == ["random", "atc:pretrain"]
    (probe,) = (tmp_path / "runs").iterdir()
    results = json.loads((probe / "probe.json").read_text())["results"]
    assert set(results) == {"random", "atc:pretrain"} and set(results["random"]) == set(TARGETS)
    assert all(0 <= results[name][t] <= 1 for name in results for t in TARGETS if TARGETS[t] == "class")


def test_pretrain_refuses_an_unknown_method_or_preset_and_makes_nothing(store, tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert main(["pretrain", "--frames", str(store.root), "--method", "simclr", "--runs-dir", str(runs), "-q"]) == 2
    assert main(["pretrain", "--frames", str(store.root), "--method", "atc-gap", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: unknown pretrain preset 'simclr'; valid: atc, atc-gap3, spr"
    assert err[1].startswith("error: unknown pretrain preset 'atc-gap' (did you mean 'atc-gap3'?)") and len(err) == 2
    assert not runs.exists() and not out.exists()


def test_a_presets_values_reach_the_metadata_and_flags_and_sets_override_them(tmp_path, monkeypatch):
    """atc-gap3 gives gap 3 and the compact encoder; --batch-size and --set temperature replace the preset's. The
    loss streams its frames: ``load`` is asked only for the probes' few (with a limit)."""
    store = synthetic_store(tmp_path / "frames", episodes=10, length=12)
    loads = []
    real_load = FrameStore.load
    monkeypatch.setattr(FrameStore, "load", lambda self, **kw: loads.append(kw) or real_load(self, **kw))
    out = tmp_path / "pretrain"
    args = ["pretrain", "--frames", str(store.root), "--method", "atc-gap3", "--epochs", "1", "--batch-size", "8"]
    assert main([*args, "--set", "temperature=0.2", "--out", str(out), "-q"]) == 0
    _, metadata = load_encoder(out / "encoder.pt")
    preset = yaml.safe_load((Path(CONFIG_DIR) / "pretrain" / "atc-gap3.yaml").read_text())
    assert metadata["preset"] == "atc-gap3" and metadata["method"] == "atc" and metadata["gap"] == 3 == preset["gap"]
    assert metadata["encoder"] == "compact" and metadata["features_dim"] == 256 and metadata["lr"] == preset["lr"]
    assert metadata["batch_size"] == 8 and metadata["temperature"] == 0.2 and metadata["momentum"] == 0.01
    recipe = metadata["recipe"]
    assert recipe == {**preset, "batch_size": 8, "temperature": 0.2, "epochs": 1, "preset": "atc-gap3"} | {
        "seed": 0,
        "frames": str(store.root),
    }
    assert loads == [{"truth": True, "limit": 4000}]


def test_spr_trains_from_the_recorded_actions_and_logs_its_terms(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store = synthetic_store(tmp_path / "frames", episodes=10, length=12)
    out = tmp_path / "spr"
    args = ["pretrain", "--frames", str(store.root), "--method", "spr", "--epochs", "2", "--batch-size", "16"]
    assert main([*args, "--gap", "2", "--set", "inverse_weight=0.5", "--out", str(out), "-q"]) == 0
    _, metadata = load_encoder(out / "encoder.pt")
    assert metadata["method"] == "spr" and metadata["gap"] == 2 and metadata["inverse_weight"] == 0.5
    assert metadata["n_actions"] == 5 and metadata["epochs"] == 2
    events = EventAccumulator(str(out / "tb")).Reload()
    for term in ("loss", "spr", "inverse", "inverse_accuracy"):
        assert np.isfinite([e.value for e in events.Scalars(f"pretrain/{term}")]).all()
    assert [e.step for e in events.Scalars("probe/action")] == [1, 2]


def test_spr_is_refused_on_frames_collected_without_actions(tmp_path, capsys):
    store = synthetic_store(tmp_path / "frames", actions=False)
    out = tmp_path / "out"
    assert main(["pretrain", "--frames", str(store.root), "--method", "spr", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "method 'spr' needs the collecting policy's 'action'" in err
    assert "collect the frames again" in err and not out.exists()
    with pytest.raises(DriveError, match="needs the collecting policy's 'action'"):
        pretrain(frames=store.root, method="spr", out=out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temperature": 0.2, "inverse_weight": 1.0}, "unknown pretrain key 'inverse_weight' for method 'atc'; valid:"),
        ({"gap": 0}, "pretrain key 'gap' must be at least 1, got 0"),
        ({"epochs": 1.5}, "pretrain key 'epochs' must be a whole number, got 1.5"),
        ({"momentum": 1.5}, "pretrain key 'momentum' must be in (0, 1], got 1.5"),
        ({"temperature": "hot"}, "pretrain key 'temperature' must be a number, got 'hot'"),
        ({"encoder": "vit"}, "unknown encoder 'vit'; valid: nature, resnet, compact"),
        ({"method": "spr"}, "the method comes from the preset; give --method NAME, one of atc, atc-gap3, spr"),
    ],
)
def test_bad_recipe_keys_are_refused_in_one_line(overrides, message):
    with pytest.raises(DriveError, match=f"^{re.escape(message)}"):
        resolve_recipe("atc", overrides)


def test_the_stream_gives_each_pair_the_actions_between_its_stacks(tmp_path):
    """The truth column spans the anchor's row to the step before the later stack: a_t .. a_{t+gap-1}."""
    store = FrameStore.create_or_resume(tmp_path / "frames", {"env": "test"})
    for first, lengths in ((0, [5, 9]), (14, [7])):
        ids = first + np.arange(sum(lengths))
        episode = np.concatenate([np.full(n, first + k) for k, n in enumerate(lengths)])
        step = np.concatenate([np.arange(n) for n in lengths])
        frames = np.zeros((len(ids), 1, 2, 2), dtype=np.uint8)
        frames[:, 0, 0, 0] = ids
        store.add_shard(frames, episode, step, {"action": ids * 10, "lane": ids % 3})
    rng = np.random.default_rng(0)
    plain = next(store.batches(4, rng, truth=("action",)))
    assert plain[1]["action"].tolist() == (plain[0][:, 0, 0, 0].astype(int) * 10).tolist()
    seen = 0
    for anchor, later, columns in store.batches(4, rng, gap=3, truth=("action", "lane")):
        ids = anchor[:, 0, 0, 0].astype(int)
        assert (later[:, 0, 0, 0] == ids + 3).all() and columns["action"].shape == (len(ids), 3)
        assert (columns["action"] == (ids[:, None] + np.arange(3)) * 10).all()
        assert (columns["lane"] == (ids[:, None] + np.arange(3)) % 3).all()
        seen += len(ids)
    assert seen == 2 + 6 + 4 == store.usable_count(gap=3)  # the pairs 3 steps apart within each episode
    assert store.usable_count() == 21
    with pytest.raises(DriveError, match="does not hold truth column 'reward' in every shard; valid: action, lane"):
        store.batches(4, rng, truth=("reward",))


@pytest.mark.parametrize("freeze", [True, False])
def test_agents_start_from_the_pretrained_encoder(tmp_path, freeze):
    shape = (4, 128, 64)
    pretrained = make_encoder("nature", shape, 32, seed=7)
    path = save_encoder(tmp_path / "encoder.pt", pretrained, "nature", shape, method="atc")
    runs = tmp_path / "runs"
    args = ["train-agent", "--algo", "dqn", "--obs", "pixels", "--encoder", str(path), "-n", "64", "-q"]
    args += ["--runs-dir", str(runs)]
    sets = [*TINY_DQN, *SHORT_EPISODES, "algo.hyperparams.train_freq=1"]
    assert main(args + (["--freeze-encoder"] if freeze else []) + _sets(sets)) == 0
    (run,) = runs.iterdir()
    from drive.agents.algos import frame_encoders
    from drive.agents.policies import load_model

    trained = frame_encoders(load_model(run / "model.zip", "dqn"))[0]
    weight = trained.trunk[0].weight.detach()
    assert torch.equal(weight, pretrained.trunk[0].weight.detach()) == freeze  # frozen: untouched; else learnt on
