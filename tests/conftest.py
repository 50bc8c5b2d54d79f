import pytest

import drive  # noqa: F401  (registers the drive/ ids)

# Tiny budgets that still exercise every part of a run (learning starts, an update, eval, a checkpoint).
TINY_DQN = [
    "algo.hyperparams.buffer_size=500",
    "algo.hyperparams.learning_starts=32",
    "algo.hyperparams.batch_size=8",
    "train.eval_episodes=1",
    "train.video_steps=3",
    "algo.encoder.features_dim=32",
]
TINY_PPO = [
    "algo.hyperparams.n_steps=16",
    "algo.hyperparams.batch_size=16",
    "algo.hyperparams.n_epochs=1",
    "train.eval_episodes=1",
    "train.video_steps=3",
    "algo.encoder.features_dim=32",
]
# Short episodes keep evaluation cheap.
SHORT_EPISODES = ["env.config.duration=5"]


@pytest.fixture
def runs_dir(tmp_path):
    return tmp_path / "runs"
