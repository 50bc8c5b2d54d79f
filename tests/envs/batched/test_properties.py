"""Invariants of the batched simulator, over random seeds and action sequences (hypothesis)."""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drive.envs.batched import BatchedHighway
from drive.envs.batched import constants as C
from drive.errors import DriveError

ACTIONS = st.lists(st.integers(0, 4), min_size=8, max_size=8)


def _rollout(seed, actions, n_envs=6, variant="highway-fast", steps=25):
    sim = BatchedHighway(n_envs, variant, seed=seed, compile=False)
    sim.reset()
    history = []
    for t in range(steps):
        action = torch.tensor([actions[(t + i) % len(actions)] for i in range(n_envs)])
        obs, reward, terminated, truncated, _ = sim.step(action)
        history.append((sim.state.clone(), obs.clone(), reward.clone(), terminated | truncated))
        sim.reset(terminated | truncated)
    return sim, history


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=ACTIONS)
def test_states_stay_finite_on_the_road_and_within_speed_limits(seed, actions):
    sim, history = _rollout(seed, actions)
    lanes = sim.config.lanes_count
    for state, obs, reward, _ in history:
        for tensor in (state.position, state.heading, state.speed, obs, reward):
            assert torch.isfinite(tensor).all()
        assert (state.speed >= C.MIN_SPEED).all() and (state.speed <= C.MAX_SPEED + 1e-3).all()
        # Other vehicles stay on the road; a collision's impact may push one a little past the edge.
        y = state.position[:, 1:, 1]
        on_road = (y >= -C.LANE_WIDTH / 2) & (y <= C.LANE_WIDTH * (lanes - 0.5))
        assert (on_road | state.crashed[:, 1:]).all()
        assert ((y >= -C.LANE_WIDTH) & (y <= C.LANE_WIDTH * lanes)).all()
        assert ((reward >= 0) & (reward <= 1)).all()


@settings(max_examples=60, deadline=None)
@given(
    pose=st.lists(st.floats(-8, 8, allow_nan=False), min_size=4, max_size=4),
    headings=st.lists(st.floats(-3.2, 3.2, allow_nan=False), min_size=2, max_size=2),
    moves=st.lists(st.floats(-3, 3, allow_nan=False), min_size=4, max_size=4),
)
@example(pose=[0.25, 0.0, 0.0, 0.0], headings=[0.25, 0.0], moves=[0.0, 0.0, 0.25, 0.0])  # moved onto each other
def test_polygon_test_agrees_with_highway_env(pose, headings, moves):
    """Our batched separating-axis test against highway-env's utils.are_polygons_intersecting, pair by pair."""
    import numpy as np
    from highway_env import utils

    from drive.envs.batched.collisions import are_polygons_intersecting, polygons

    position = torch.tensor([pose[:2], pose[2:]], dtype=torch.float64)
    corners = polygons(position, torch.tensor(headings, dtype=torch.float64))
    move_a, move_b = torch.tensor([moves[:2]], dtype=torch.float64), torch.tensor([moves[2:]], dtype=torch.float64)
    ours = are_polygons_intersecting(corners[None, 0], corners[None, 1], move_a, move_b)
    theirs = utils.are_polygons_intersecting(
        np.vstack([corners[0].numpy(), corners[0, :1].numpy()]),  # highway-env closes its polygons
        np.vstack([corners[1].numpy(), corners[1, :1].numpy()]),
        np.array(moves[:2]),
        np.array(moves[2:]),
    )
    assert bool(ours[0]) == theirs[0] and bool(ours[1]) == theirs[1]
    if theirs[1]:  # the push apart: its length always; its axis when the moved centres are apart (else axes tie)
        np.testing.assert_allclose(np.linalg.norm(ours[2][0].numpy()), np.linalg.norm(theirs[2]), atol=1e-9)
        if np.linalg.norm(np.add(pose[:2], moves[:2]) - np.add(pose[2:], moves[2:])) > 0.1:
            np.testing.assert_allclose(ours[2][0].numpy(), theirs[2], atol=1e-9)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=ACTIONS)
def test_same_seed_gives_bit_identical_rollouts(seed, actions):
    _, first = _rollout(seed, actions, steps=12)
    _, again = _rollout(seed, actions, steps=12)
    for (s1, o1, r1, d1), (s2, o2, r2, d2) in zip(first, again, strict=True):
        assert torch.equal(s1.position, s2.position) and torch.equal(o1, o2)
        assert torch.equal(r1, r2) and torch.equal(d1, d2)


def test_different_seeds_give_different_traffic():
    a, b = BatchedHighway(4, seed=1, compile=False), BatchedHighway(4, seed=2, compile=False)
    assert not torch.equal(a.state.position, b.state.position)
    assert not torch.equal(a.state.position[0], a.state.position[1])  # envs of one batch differ too


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), mask=st.lists(st.booleans(), min_size=5, max_size=5))
def test_reset_leaves_the_other_envs_untouched(seed, mask):
    sim = BatchedHighway(5, seed=seed, compile=False)
    sim.reset()
    sim.step(torch.ones(5, dtype=torch.long))
    before = sim.state.clone()
    mask = torch.tensor(mask)
    sim.reset(mask)
    keep = ~mask
    for name in ("position", "heading", "speed", "target_lane", "crashed", "timer"):
        assert torch.equal(getattr(sim.state, name)[keep], getattr(before, name)[keep])
    assert (sim.state.time[mask] == 0).all()


def test_traffic_is_spawned_like_highway_env():
    sim = BatchedHighway(256, "highway-fast", seed=0, compile=False)
    s = sim.state
    assert s.position.shape == (256, 21, 2)
    assert torch.all(s.speed[:, 0] == 25) and torch.all((s.speed[:, 1:] >= 21) & (s.speed[:, 1:] <= 24))
    assert torch.all(s.position[:, 1:, 0] > s.position[:, :-1, 0])  # each vehicle ahead of the last
    assert set(s.lane.unique().tolist()) == {0, 1, 2}
    assert torch.all((s.delta[:, 1:] >= 3.5) & (s.delta[:, 1:] <= 4.5))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"controlled_vehicles": 2}, "supports controlled_vehicles=1 only, got 2"),
        ({"lanes": 3}, "unknown highway config key 'lanes'; valid:"),
        ({"observation": {"type": "OccupancyGrid"}}, "unknown batched observation type 'OccupancyGrid'"),
        ({"action": {"type": "ContinuousAction"}}, "supports action={'type': 'DiscreteMetaAction'} only"),
        ({"observation": {"type": "Kinematics", "order": "shuffled"}}, "supports Kinematics order='sorted' only"),
    ],
)
def test_unsupported_config_is_refused(config, message):
    with pytest.raises(DriveError) as err:
        BatchedHighway(2, config=config, compile=False)
    assert message in str(err.value)


def test_config_keys_are_read_from_highway_envs_config():
    sim = BatchedHighway(
        3, config={"lanes_count": 5, "vehicles_count": 7, "duration": 3, "screen_width": 900}, compile=False
    )
    assert sim.state.position.shape == (3, 8, 2)
    for _ in range(3):
        *_, truncated, _ = sim.step(torch.ones(3, dtype=torch.long))
    assert truncated.all()
