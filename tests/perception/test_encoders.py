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
    assert th.all(out >= 0)  # ReLU head


def test_frames_are_normalised_inside_the_encoder():
    encoder = NatureEncoder(FRAMES, features_dim=16)
    frames = th.randint(0, 256, (2, 4, 128, 64)).float()
    expected = encoder.head(encoder.trunk(frames / 255.0).flatten(1))
    th.testing.assert_close(encoder(frames), expected)
    assert normalize_frames(th.tensor([0, 255], dtype=th.uint8)).tolist() == [0.0, 1.0]


def test_gradients_reach_the_first_convolution():
    encoder = NatureEncoder(FRAMES, features_dim=16)
    encoder(th.rand(2, 4, 128, 64) * 255).sum().backward()
    assert encoder.trunk[0].weight.grad.abs().sum() > 0


def test_encoder_refuses_a_space_that_is_not_a_frame_stack():
    with pytest.raises(ValueError, match=r"needs frames shaped \(stack, H, W\), got \(5, 5\)"):
        NatureEncoder(gym.spaces.Box(-1, 1, (5, 5), np.float32))
