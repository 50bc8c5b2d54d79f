import gymnasium as gym
import numpy as np
import pytest
import torch as th

from drive.perception import ENCODERS, NatureEncoder, normalize_frames

FRAMES = gym.spaces.Box(0, 255, (4, 128, 64), np.uint8)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoders_map_a_batch_of_frames_to_features(name):
    encoder = ENCODERS[name](FRAMES, features_dim=64)
    out = encoder(th.randint(0, 256, (3, 4, 128, 64)).float())
    assert out.shape == (3, 64) and encoder.features_dim == 64
    assert th.isfinite(out).all()


def _roads(n: int) -> th.Tensor:
    """Frames that are nearly all road (grey), with a few 9 x 4 px vehicles (bright) at random places."""
    generator = th.Generator().manual_seed(0)
    frames = th.full((n, 4, 128, 64), 100.0)
    for i in range(n):
        for _ in range(6):
            x, y = (int(th.randint(0, high, (1,), generator=generator)) for high in (119, 60))
            frames[i, :, x : x + 9, y : y + 4] = 200.0
    return frames


def test_every_compact_feature_varies_with_the_vehicles_at_initialisation():
    # A ReLU head on such frames starts with units that are zero for every frame (the Nature CNN: about a
    # third of them); the compact encoder's LayerNorm + tanh head must have none.
    th.manual_seed(0)
    features = ENCODERS["compact"](FRAMES, features_dim=64)(_roads(64))
    assert int((features.std(0) < 1e-6).sum()) == 0
    assert features.abs().max() <= 1.0


def test_an_agent_normalises_its_frames_exactly_once():
    # SB3 would divide image observations by 255 itself; the agent's policy must see what the encoder alone
    # sees (pretraining and probes use the encoder outside SB3), and a second division would change it.
    from drive.agents.algos import build_model
    from drive.config import resolve
    from drive.envs import make_venv
    from tests.conftest import TINY_PPO

    config = resolve("highway", "ppo", "pixels", sets=[*TINY_PPO, "algo.encoder.features_dim=16"])
    model = build_model(config, make_venv("highway", "pixels", 1), device="cpu")
    frames = th.randint(0, 256, (2, 4, 128, 64), dtype=th.uint8)
    encoder = model.policy.features_extractor
    seen = model.policy.extract_features(frames.float(), encoder)
    th.testing.assert_close(seen, encoder(frames.float()))
    assert not th.allclose(encoder(frames.float()), encoder(frames.float() / 255.0))
    assert normalize_frames(th.tensor([0, 255], dtype=th.uint8)).tolist() == [0.0, 1.0]


def test_gradients_reach_the_first_convolution():
    encoder = NatureEncoder(FRAMES, features_dim=16)
    encoder(th.rand(2, 4, 128, 64) * 255).sum().backward()
    assert encoder.trunk[0].weight.grad.abs().sum() > 0


def test_encoder_refuses_a_space_that_is_not_a_frame_stack():
    with pytest.raises(ValueError, match=r"needs frames shaped \(stack, W, H\), got \(5, 5\)"):
        NatureEncoder(gym.spaces.Box(-1, 1, (5, 5), np.float32))
