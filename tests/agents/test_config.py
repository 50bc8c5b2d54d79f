import pytest

from drive.config import RunConfig, dump, from_dict, load_file, parse_set, resolve
from drive.errors import DriveError


def test_presets_fill_the_config_from_the_env_and_algorithm():
    config = resolve("highway", "dqn")
    assert (config.env.name, config.env.obs, config.algo.name) == ("highway", "pixels", "dqn")
    # highway-env's scripts/sb3_highway_dqn_cnn.py values
    assert config.algo.hyperparams["gamma"] == 0.8 and config.algo.hyperparams["buffer_size"] == 15000
    assert (config.env.backend, config.algo.encoder.name) == ("highway-env", "nature")  # highway's PPO file stays out
    parking = resolve("parking")
    assert (parking.algo.name, parking.env.obs) == ("ppo", "kinematics")


def test_later_sources_win(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("train: {timesteps: 111, seed: 5}\nalgo: {hyperparams: {gamma: 0.5}}\n")
    config = resolve(
        "highway", "ppo", "kinematics", file, {"train": {"timesteps": 222}}, ["algo.hyperparams.gamma=0.9"]
    )
    assert config.train.timesteps == 222  # flag beats file
    assert config.train.seed == 5  # file beats defaults
    assert config.algo.hyperparams["gamma"] == 0.9  # --set beats all
    assert config.algo.hyperparams["n_epochs"] == 10  # preset kept under a partial override


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = resolve("merge", "ppo", "pixels", sets=["env.config.lanes_count=3"])
    path = tmp_path / "config.yaml"
    path.write_text(dump(config))
    assert from_dict(RunConfig, load_file(path)) == config


def test_set_parses_yaml_values():
    assert parse_set(["a.b=3", "a.c=[1, 2]", "d=true", "e=x"]) == {"a": {"b": 3, "c": [1, 2]}, "d": True, "e": "x"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env": "higway"}, "unknown env 'higway' (did you mean 'highway'?)"),
        ({"algo": "sac"}, "unknown algorithm 'sac'; valid: dqn, ppo"),
        ({"obs": "rgb"}, "unknown observation preset 'rgb'; valid: pixels, kinematics"),
        ({"sets": ["train.timestep=5"]}, "unknown config key 'train.timestep'; valid: train.timesteps"),
        ({"sets": ["train.timesteps=many"]}, "config key 'train.timesteps' must be of type int, got 'many'"),
        ({"sets": ["train.timesteps=true"]}, "config key 'train.timesteps' must be of type int, got True"),
        ({"sets": ["algo.hyperparams.gama=0.9"]}, "unknown ppo hyperparameter 'gama'; valid:"),
        ({"sets": ["algo.hyperparams.gamma=high"]}, "ppo hyperparameter 'gamma' must be of type float, got 'high'"),
        ({"sets": ["algo.encoder.name=vit"]}, "unknown encoder 'vit'; valid: nature, resnet"),
        ({"sets": ["train.device=xyz"]}, "unknown device 'xyz'; valid: auto, cpu, cuda"),
        ({"sets": ["train.timesteps=0"]}, "train.timesteps must be at least 1, got 0"),
        ({"sets": ["nokey"]}, "--set expects key.path=value, got 'nokey'"),
        ({"config_file": "missing.yaml"}, "config file 'missing.yaml' does not exist"),
    ],
)
def test_bad_config_is_refused_with_one_line(kwargs, message):
    with pytest.raises(DriveError) as err:
        resolve(**kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_yaml_file_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(DriveError, match="is not valid YAML"):
        resolve(config_file=bad)


def test_the_quickstart_is_highway_ppo_from_pixels_on_the_batched_simulator():
    config = resolve("highway")
    assert (config.algo.name, config.env.obs) == ("ppo", "pixels")
    # configs/env/highway/ppo-pixels.yaml over the PPO preset, whose own hyperparameters stay
    assert (config.env.backend, config.env.n_envs, config.algo.encoder.name) == ("batched", 64, "compact")
    assert config.algo.hyperparams["n_steps"] == 128 and config.train.timesteps == 32768
    # a flag still wins over the scenario's file, and other scenarios do not read it
    assert resolve("highway", flags={"env": {"n_envs": 8}}).env.n_envs == 8
    assert resolve("merge", "ppo", "pixels").env.backend == "highway-env"
