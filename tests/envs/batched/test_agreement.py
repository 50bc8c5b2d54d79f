"""The batched simulator against highway-env, state by state: load highway-env's state, take one policy step
with the same action in both, compare everything. States come from real highway-env episodes."""

import numpy as np
import pytest
import torch

from drive.envs.batched import BatchedHighway
from drive.envs.batched.highway_state import stack_snapshots
from drive.envs.scenarios import PIXELS
from tests.envs.batched.conftest import collect_transitions


def _step_batched(variant, transitions, dtype=torch.float32):
    sim = BatchedHighway(len(transitions), variant, dtype=dtype, compile=False)
    sim.state = stack_snapshots([t[0] for t in transitions], dtype=dtype)
    obs, reward, _terminated, _truncated, terms = sim.step(torch.tensor([t[1] for t in transitions]))
    return sim, obs, reward, terms


@pytest.mark.parametrize("variant", ["highway-fast", "highway"])
def test_one_policy_step_agrees_with_highway_env(variant, fast_transitions, highway_transitions):
    transitions = fast_transitions if variant == "highway-fast" else highway_transitions
    sim, obs, reward, terms = _step_batched(variant, transitions)
    ref = stack_snapshots([t[2] for t in transitions], dtype=torch.float32)
    s = sim.state
    assert (s.position - ref.position).norm(dim=-1).max() < 0.01  # 1 cm
    assert (s.heading - ref.heading).abs().max() < 1e-3
    assert (s.speed - ref.speed).abs().max() < 1e-3
    assert torch.equal(s.lane, ref.lane) and torch.equal(s.target_lane, ref.target_lane)
    assert torch.equal(s.crashed, ref.crashed)
    assert torch.allclose(reward.double(), torch.tensor([t[3] for t in transitions], dtype=torch.float64), atol=1e-5)
    expected_obs = torch.tensor(np.stack([t[4] for t in transitions]))
    assert (obs - expected_obs).abs().max() < 1e-4
    for name in ("collision_reward", "right_lane_reward", "high_speed_reward", "on_road_reward"):
        expected = torch.tensor([float(t[5][name]) for t in transitions], dtype=torch.float64)
        assert torch.allclose(terms[name].double(), expected, atol=1e-5), name


def test_at_least_a_thousand_states_with_crashes_and_lane_changes(fast_transitions, highway_transitions):
    transitions = fast_transitions + highway_transitions
    assert len(transitions) >= 1000
    after = [t[2] for t in transitions]
    assert sum(bool(a["crashed"][0]) for a in after) >= 10  # crashes are compared too
    assert sum(int((a["lane"] != a["target_lane"]).sum()) for a in after) >= 50  # so are lane changes


def test_double_precision_agrees_to_rounding(fast_transitions):
    sim, *_ = _step_batched("highway-fast", fast_transitions, dtype=torch.float64)
    ref = stack_snapshots([t[2] for t in fast_transitions], dtype=torch.float64)
    assert (sim.state.position - ref.position).abs().max() < 1e-9


def test_frames_match_highway_env_grayscale_observation():
    transitions = collect_transitions("highway-fast", 4, observation=PIXELS)
    sim = BatchedHighway(len(transitions), "highway-fast", config={"observation": PIXELS}, compile=False)
    state = stack_snapshots([t[2] for t in transitions], dtype=torch.float32)
    ours = sim.observer.draw(state).numpy()
    ref = np.stack([t[4][-1] for t in transitions])
    assert ours.shape == ref.shape == (len(transitions), 128, 64)
    road = [99, 254]  # the gray of the ground and of the lane markings
    ours_v, ref_v = ~np.isin(ours, road), ~np.isin(ref, road)
    iou = (ours_v & ref_v).sum((1, 2)) / np.maximum((ours_v | ref_v).sum((1, 2)), 1)
    assert iou.mean() >= 0.9
    assert np.abs(ours.astype(int) - ref.astype(int)).mean() < 0.2
    # In double precision, frames without turned vehicles are drawn pixel for pixel (in single precision a
    # position rounded across a pixel boundary moves a vehicle or a stripe end by one pixel).
    straight = np.array([np.all(np.abs(t[2]["heading"]) <= np.deg2rad(2)) for t in transitions])
    sim64 = BatchedHighway(len(transitions), "highway-fast", config={"observation": PIXELS}, dtype=torch.float64)
    ours64 = sim64.observer.draw(stack_snapshots([t[2] for t in transitions], dtype=torch.float64)).numpy()
    assert straight.sum() >= 20 and np.array_equal(ours64[straight], ref[straight])


def test_frames_follow_the_env_configs_scaling_and_centering():
    """GrayscaleObservation without its own scaling and centering takes the env config's: so does ours."""
    observation = {key: value for key, value in PIXELS.items() if key != "scaling"}
    view = {"scaling": 2.5, "centering_position": [0.5, 0.5]}
    transitions = collect_transitions("highway-fast", 2, observation=observation, config=view)
    config = {"observation": observation, **view}
    sim = BatchedHighway(len(transitions), "highway-fast", config=config, dtype=torch.float64, compile=False)
    ours = sim.observer.draw(stack_snapshots([t[2] for t in transitions], dtype=torch.float64)).numpy()
    ref = np.stack([t[4][-1] for t in transitions])
    straight = np.array([np.all(np.abs(t[2]["heading"]) <= np.deg2rad(2)) for t in transitions])
    assert straight.sum() >= 10 and np.array_equal(ours[straight], ref[straight])


def test_frames_follow_a_camera_set_in_the_env_config():
    """``env.config.observation`` moves the pixels preset's camera (a longer frame, the ego near its back edge):
    highway-env and the batched simulator draw the same pixels."""
    from drive.envs.factory import highway_config

    camera = {"observation_shape": [224, 40], "centering_position": [0.15, 0.5]}
    observation = highway_config("highway", "pixels", {"observation": camera})["observation"]
    transitions = collect_transitions("highway-fast", 2, observation=observation)
    sim = BatchedHighway(
        len(transitions), "highway-fast", config={"observation": observation}, dtype=torch.float64, compile=False
    )
    ours = sim.observer.draw(stack_snapshots([t[2] for t in transitions], dtype=torch.float64)).numpy()
    ref = np.stack([t[4][-1] for t in transitions])
    assert ours.shape == ref.shape == (len(transitions), 224, 40)
    straight = np.array([np.all(np.abs(t[2]["heading"]) <= np.deg2rad(2)) for t in transitions])
    assert straight.sum() >= 10 and np.array_equal(ours[straight], ref[straight])


def test_colour_view_matches_highway_env_render():
    """``drive watch --backend batched`` draws our state as highway-env's viewer draws its own."""
    import gymnasium as gym

    from drive.agents.baselines import IDMPolicy
    from drive.envs.batched.highway_state import snapshot
    from drive.envs.batched.render import ColourView

    env = gym.make("highway-fast-v0", render_mode="rgb_array").unwrapped
    rng, snapshots, renders = np.random.default_rng(0), [], []
    for episode in range(3):
        env.reset(seed=episode)
        idm = IDMPolicy(env)
        for _ in range(8):
            env.step(idm.act(None) if episode != 1 else int(rng.integers(5)))
            snapshots.append(snapshot(env))
            renders.append(env.render())
    state = stack_snapshots(snapshots, dtype=torch.float64)
    view = ColourView(BatchedHighway(1, "highway-fast").config, torch.device("cpu"))
    ours = np.stack([view.render(state, i) for i in range(len(snapshots))])
    ref = np.stack(renders)
    assert ours.shape == ref.shape == (24, 150, 600, 3)
    assert (ours == ref).all(-1).mean() > 0.995  # turned vehicles may differ by a pixel at their edges
    assert np.abs(ours.astype(int) - ref.astype(int)).mean() < 0.2


@pytest.mark.parametrize("policy", ["idm", "random"])
def test_whole_episodes_make_the_same_lane_decisions(policy):
    """From highway-env's initial state with the same ego actions, float32 and all: every vehicle's lane
    decisions and the episode's end agree to the last step (benchmarks/episode_divergence.py reports more)."""
    from benchmarks.episode_divergence import first_lane_decision_difference

    first, length, drift = first_lane_decision_difference("highway-fast", seed=1, policy=policy)
    assert first is None and length >= 10 and drift < 0.01


def test_compiled_step_agrees_like_the_eager_one(fast_transitions):
    """Large batches run the torch.compile'd frame dynamics: they must agree with highway-env as well."""
    transitions = fast_transitions[:300]
    sim = BatchedHighway(len(transitions), "highway-fast", compile=True)
    sim.state = stack_snapshots([t[0] for t in transitions], dtype=torch.float32)
    sim.step(torch.tensor([t[1] for t in transitions]))
    ref = stack_snapshots([t[2] for t in transitions], dtype=torch.float32)
    assert (sim.state.position - ref.position).norm(dim=-1).max() < 0.01
    assert (sim.state.speed - ref.speed).abs().max() < 1e-3
    assert torch.equal(sim.state.target_lane, ref.target_lane) and torch.equal(sim.state.crashed, ref.crashed)
