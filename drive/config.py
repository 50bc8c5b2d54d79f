"""Run configuration: frozen dataclasses filled from YAML presets by a strict loader.

Resolution order, later wins: dataclass defaults < ``configs/algo/<algo>-<obs>.yaml`` <
``configs/env/<env>.yaml`` < ``configs/env/<env>/<algo>-<obs>.yaml`` (a scenario's own settings for one
algorithm, where it has them) < ``configs/recipes/<recipe>.yaml`` (with ``--recipe``) < ``--config FILE`` <
command-line flags < ``--set a.b=value``.
Unknown keys and values of the wrong type are refused with one line naming the key and the valid ones.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from drive.errors import DriveError, check_choice


@dataclass(frozen=True)
class EnvConfig:
    name: str = "highway"  # scenario: highway, merge, roundabout, intersection, racetrack, parking
    obs: str = "pixels"  # observation preset: pixels or kinematics
    backend: str = "highway-env"
    n_envs: int = 1
    vec_env: str = "dummy"  # dummy (one process) or subproc (one process per env)
    config: dict = field(default_factory=dict)  # highway-env config keys set on top of the scenario's


@dataclass(frozen=True)
class EncoderConfig:
    name: str = "nature"  # nature, resnet or compact; used with pixels only
    features_dim: int = 512
    pretrained: str = ""  # an encoder.pt from drive pretrain: its weights (and architecture) start the agent
    freeze: bool = False  # keep the pretrained encoder's weights fixed while the agent learns
    # independent encoders, each with its own MLP (algo.net_arch), whose logits the policy averages (pixels, PPO):
    # an ensemble that is still one SB3 policy (drive.perception.encoders.EncoderEnsemble); 1: a single encoder
    members: int = 1


@dataclass(frozen=True)
class AlgoConfig:
    name: str = "dqn"  # dqn or ppo
    net_arch: list = field(default_factory=lambda: [256, 256])  # MLP head on top of the features
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    hyperparams: dict = field(default_factory=dict)  # keyword arguments of the SB3 algorithm


@dataclass(frozen=True)
class TrainConfig:
    timesteps: int = 2000  # env steps in total, over all envs
    seed: int = 0
    device: str = "auto"  # auto, cpu or cuda
    eval_freq: int = 1000  # env steps between evaluations (0: only at the end)
    eval_episodes: int = 5
    save_freq: int = 1000  # env steps between checkpoints
    video_steps: int = 40  # policy steps of the evaluation video logged to TensorBoard (0: none)
    save_replay_buffer: bool = True  # beside each checkpoint (off-policy agents): resume keeps the buffer
    threads: int = 0  # torch threads (0: the cores not busy when the run starts, at least 1; see drive.cores)


@dataclass(frozen=True)
class TeacherConfig:
    """The privileged teacher of a recipe: a look-ahead planner over the batched simulator."""

    horizon: int = 8  # policy steps looked ahead
    gamma: float = 0.9
    crash_penalty: float = 20.0  # on top of the rewards a crash loses
    tie: float = 0.01  # values this close are equal; the tie goes to keeping lane and speed
    # subtracted from a lane change's value: the teacher changes lane only when it pays this much, so that its
    # student, who sees the neighbouring lanes less well than the planner, is taught fewer of them
    lane_change_cost: float = 0.0
    commit: int = 1  # policy steps the first action is held before a continuation takes over
    # value of a first action over its continuations: max (the best one: optimistic), top<k> (the mean of the k
    # best: the action must leave k ways on that stay good, margins a student who sees less can keep) or mean
    aggregate: str = "max"
    continuations: list = field(default_factory=lambda: ["IDLE", "FASTER", "SLOWER", "LANE_LEFT", "LANE_RIGHT"])
    # vehicles the look-ahead simulates: the ego and the nearest others (drive.agents.planner.nearest_vehicles), a
    # smaller and faster simulation; 0: all of them
    vehicles: int = 0
    # metres ahead of and behind the ego within which the look-ahead sees vehicles (0: no limit on that side);
    # the others leave its simulation. The pixels preset's camera sees about 51 m ahead and 22 m behind: a teacher
    # limited to that labels from what its student can see (Learning by Cheating's privileged view)
    sight_ahead: float = 0.0
    sight_behind: float = 0.0


@dataclass(frozen=True)
class StudentConfig:
    """DAgger of the pixel student: rounds of driving, labelling by the teacher, and fitting."""

    rounds: int = 6
    steps_per_round: int = 30  # policy steps of every env per round (one highway-fast episode)
    beta_decay: float = 0.5  # the teacher drives each step with probability beta_decay ** round
    noise: float = 0.0  # probability of a random action at each step while collecting (DART)
    updates_per_round: int = 400  # gradient steps per round, on batches from all the data so far
    batch_size: int = 256
    tolerance: float = 0.02  # actions within this of the teacher's best value count as right
    regret_weight: float = 1.0  # weight of the expected regret next to the imitation term
    loss: str = "set"  # set (the actions within tolerance), soft (softmax of values / temperature) or regret
    temperature: float = 0.3  # soft: the target is softmax(values / it); regret: logits regress -regret / it
    shift: int = 0  # DrQ random shift of up to this many pixels on every fitted batch (0: none)
    shift_lateral: bool = True  # the shift also moves the scene across the lanes, not only along the road
    select: str = "last"  # model.zip: the last round's student, or the best one driving alone on validation traffic,
    # or (vote) a committee of the last vote_rounds rounds' students and the refit's, acting on their summed logits
    vote_rounds: int = 2
    # weight of an auxiliary loss: the student's features regress the simulator's lane gaps (distances and closing
    # speeds ahead and behind, drive.perception.truth.lane_gaps) beside the imitation loss; 0: none
    gap_weight: float = 0.0
    # the learning rate falls (cosine) to this fraction of the model's over each round's fit, then starts again:
    # the round's student is the end of a quiet descent, not a step of full size; 1: constant
    lr_end: float = 1.0
    # the fit's forward pass in bfloat16 (torch.autocast; the loss in float32): CPUs with AVX512-BF16 or AMX, and
    # GPUs, run the convolutions faster; float32: as before
    precision: str = "float32"
    # with algo.encoder.members > 1: each member fits on its own share of the envs (env i's states go to member
    # i mod members, each member its own batch of batch_size), so the members learn from different states and make
    # different mistakes; false: every member fits on the same batches
    split: bool = False


@dataclass(frozen=True)
class RefitConfig:
    """After the last round: a fresh ensemble student fitted on all the rounds' data, each member on its own share
    of the envs (as ``student.split``), with the student's loss and shift. The rounds' students only choose which
    states the data holds; members of new weights, each seeing its own states, make different mistakes."""

    members: int = 0  # members of the fresh ensemble; 0: no refit (model.zip is a round's student or their vote)
    updates: int = 1600  # gradient steps, each on a batch of batch_size from every member's share
    batch_size: int = 128  # per member


@dataclass(frozen=True)
class RecipeConfig:
    name: str = ""  # empty: plain DQN or PPO; else the recipe file configs/recipes/<name>.yaml
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    refit: RefitConfig = field(default_factory=RefitConfig)


@dataclass(frozen=True)
class RunConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)


CONFIG_DIR = resources.files("drive.configs")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**32 - 1  # numpy's and highway-env's seeds


def check_device(device: str) -> str:
    """A known device, and ``cuda`` only where torch sees a GPU (else the work would silently run on the CPU)."""
    check_choice("device", device, DEVICES)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise DriveError("device 'cuda' was asked for, but torch sees no CUDA GPU; valid here: auto, cpu")
    return device


def preset_names(kind: str) -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in (CONFIG_DIR / kind).iterdir() if p.name.endswith(".yaml"))


def load_preset(kind: str, name: str) -> dict:
    check_choice("env" if kind == "env" else f"{kind} preset", name, preset_names(kind))
    return _read_yaml((CONFIG_DIR / kind / f"{name}.yaml").read_text(), f"{kind}/{name}.yaml")


def scenario_preset(env: str, algo: str, obs: str) -> dict:
    """``configs/env/<env>/<algo>-<obs>.yaml`` if the scenario has one, else nothing."""
    path = CONFIG_DIR / "env" / env / f"{algo}-{obs}.yaml"
    return _read_yaml(path.read_text(), f"env/{env}/{algo}-{obs}.yaml") if path.is_file() else {}


def load_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DriveError(f"config file {str(path)!r} does not exist")
    return _read_yaml(path.read_text(), str(path))


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0]
        raise DriveError(f"{where} is not valid YAML: {first}") from None
    if not isinstance(data, dict):
        raise DriveError(f"{where} must hold a mapping of sections, got {type(data).__name__}")
    return data


def merge(base: dict, update: dict) -> dict:
    """Deep merge: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(items: list[str]) -> dict:
    """``["algo.hyperparams.gamma=0.9"]`` -> nested dict; values are parsed as YAML scalars/lists."""
    tree: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise DriveError(f"--set expects key.path=value, got {item!r}")
        value = _read_scalar(raw)
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DriveError(f"--set {key!r} conflicts with another --set")
        node[leaf] = value
    return tree


def _read_scalar(raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text; a user means the number
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity") else value
        except ValueError:
            return value
    return value


def from_dict(cls: type, data: dict, path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, refusing unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise DriveError(f"config {path or 'root'!r} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        where = f"{path}{key}"
        if key not in fields:
            raise DriveError(f"unknown config key {where!r}; valid: {', '.join(path + k for k in fields)}")
        kwargs[key] = _convert(hints[key], value, where)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, f"{where}.")
    expected = {int: (int,), float: (int, float), str: (str,), bool: (bool,), list: (list,), dict: (dict,)}
    ok = expected.get(hint, (hint,))
    if isinstance(value, bool) and hint is not bool:
        ok = ()
    if not isinstance(value, ok):
        raise DriveError(f"config key {where!r} must be of type {getattr(hint, '__name__', hint)}, got {value!r}")
    return float(value) if hint is float else value


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def resolve(
    env: str = "highway",
    algo: str | None = None,
    obs: str | None = None,
    config_file: str | Path | None = None,
    flags: dict | None = None,
    sets: list[str] | None = None,
    recipe: str | None = None,
) -> RunConfig:
    """The full run config from presets, a recipe, a file, flags and ``--set`` overrides."""
    from drive.agents.algos import ALGOS
    from drive.envs.scenarios import OBS_PRESETS

    env_preset = load_preset("env", env)
    recipe_tree = load_preset("recipes", recipe) if recipe else {}
    if recipe:
        recipe_tree = merge(recipe_tree, {"recipe": {"name": recipe}})
    algo = algo or recipe_tree.get("algo", {}).get("name") or env_preset.get("algo", {}).get("name", "dqn")
    obs = obs or recipe_tree.get("env", {}).get("obs") or env_preset.get("env", {}).get("obs", "pixels")
    check_choice("algorithm", algo, ALGOS)
    check_choice("observation preset", obs, OBS_PRESETS)
    tree = to_dict(RunConfig())
    tree = merge(tree, load_preset("algo", f"{algo}-{obs}"))
    tree = merge(tree, env_preset)
    tree = merge(tree, scenario_preset(env, algo, obs))
    tree = merge(tree, recipe_tree)
    file_tree = load_file(config_file) if config_file is not None else {}
    set_tree = parse_set(sets or [])
    user = merge(file_tree, set_tree)
    if "recipe" in user and not recipe:
        valid = ", ".join(preset_names("recipes"))
        raise DriveError(f"recipe.* keys need a recipe: give --recipe NAME (valid: {valid})")
    if recipe and isinstance(user.get("recipe"), dict) and user["recipe"].get("name", recipe) != recipe:
        raise DriveError(f"recipe.name is set by --recipe ({recipe!r}); drop recipe.name")
    tree = merge(tree, file_tree)
    tree = merge(tree, {"env": {"name": env, "obs": obs}, "algo": {"name": algo}})
    tree = merge(tree, flags or {})
    tree = merge(tree, set_tree)
    return validate(from_dict(RunConfig, tree))


def validate(config: RunConfig) -> RunConfig:
    """Checks that cross fields: names against registries, positive budgets."""
    from drive.agents.algos import ALGOS, check_hyperparams
    from drive.envs.scenarios import BACKENDS, OBS_PRESETS, SCENARIOS
    from drive.perception.encoders import ENCODERS

    check_choice("env", config.env.name, SCENARIOS)
    check_choice("observation preset", config.env.obs, OBS_PRESETS)
    check_choice("backend", config.env.backend, BACKENDS)
    check_choice("algorithm", config.algo.name, ALGOS)
    check_choice("encoder", config.algo.encoder.name, ENCODERS)
    check_device(config.train.device)
    check_hyperparams(config.algo.name, config.algo.hyperparams)
    for key in ("timesteps", "eval_episodes", "save_freq"):
        if getattr(config.train, key) < 1:
            raise DriveError(f"train.{key} must be at least 1, got {getattr(config.train, key)}")
    if config.train.threads < 0:
        raise DriveError(f"train.threads must be at least 0 (0: the free cores), got {config.train.threads}")
    if config.train.eval_freq < 0:
        raise DriveError(f"train.eval_freq must be at least 0 (0: only at the end), got {config.train.eval_freq}")
    if not 0 <= config.train.seed <= MAX_SEED:
        raise DriveError(f"train.seed must be in 0..{MAX_SEED}, got {config.train.seed}")
    _check_network(config.algo)
    encoder = config.algo.encoder
    if encoder.freeze and not encoder.pretrained:
        raise DriveError("--freeze-encoder needs a pretrained encoder: give --encoder PATH")
    if encoder.pretrained and config.env.obs != "pixels":
        raise DriveError(f"--encoder needs the pixels preset, got --obs {config.env.obs}; valid: pixels")
    if config.env.n_envs < 1:
        raise DriveError(f"env.n_envs must be at least 1, got {config.env.n_envs}")
    if config.recipe.name:
        validate_recipe(config)
    return config


def _check_network(algo: AlgoConfig) -> None:
    if not isinstance(algo.net_arch, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in algo.net_arch
    ):
        raise DriveError(f"algo.net_arch must be a list of layer sizes of at least 1, got {algo.net_arch!r}")
    if algo.encoder.features_dim < 1:
        raise DriveError(f"algo.encoder.features_dim must be at least 1, got {algo.encoder.features_dim}")
    if algo.encoder.members < 1:
        raise DriveError(f"algo.encoder.members must be at least 1, got {algo.encoder.members}")
    if algo.encoder.members > 1 and (algo.name != "ppo" or algo.encoder.pretrained):
        raise DriveError(
            f"algo.encoder.members {algo.encoder.members} needs algo.name ppo and no pretrained encoder "
            f"(each member starts from its own random weights), got {algo.name!r}"
            + (f" and {algo.encoder.pretrained!r}" if algo.encoder.pretrained else "")
        )
    rate = algo.hyperparams.get("learning_rate")
    if isinstance(rate, int | float) and rate <= 0:
        raise DriveError(f"algo.hyperparams.learning_rate must be above 0, got {rate}")
    batch = algo.hyperparams.get("batch_size")
    if isinstance(batch, int) and batch < (2 if algo.name == "ppo" else 1):  # PPO normalises advantages per batch
        raise DriveError(f"algo.hyperparams.batch_size must be at least {2 if algo.name == 'ppo' else 1}, got {batch}")


def validate_recipe(config: RunConfig) -> None:
    """A recipe's teacher plans on the batched simulator, and its student is a PPO policy on frames."""
    from drive.envs.batched.constants import ACTION_NAMES

    recipe = config.recipe
    check_choice("recipe", recipe.name, preset_names("recipes"))
    needs = {"env.backend": (config.env.backend, "batched"), "algo.name": (config.algo.name, "ppo")}
    needs["env.obs"] = (config.env.obs, "pixels")
    needs["env.name"] = (config.env.name, "highway")
    for key, (value, valid) in needs.items():
        if value != valid:
            raise DriveError(f"recipe {recipe.name!r} needs {key} {valid!r}, got {value!r}; valid: {valid}")
    for name in recipe.teacher.continuations:
        check_choice("recipe.teacher.continuations entry", name, ACTION_NAMES)
    tops = [f"top{k}" for k in range(2, len(recipe.teacher.continuations))]
    check_choice("recipe.teacher.aggregate", recipe.teacher.aggregate, ("max", "mean", *tops))
    positive = {
        "recipe.teacher.horizon": recipe.teacher.horizon,
        "recipe.student.rounds": recipe.student.rounds,
        "recipe.student.steps_per_round": recipe.student.steps_per_round,
        "recipe.student.updates_per_round": recipe.student.updates_per_round,
        "recipe.student.batch_size": recipe.student.batch_size,
        "recipe.refit.updates": recipe.refit.updates,
        "recipe.refit.batch_size": recipe.refit.batch_size,
    }
    non_negative = {
        "recipe.teacher.tie": recipe.teacher.tie,
        "recipe.teacher.lane_change_cost": recipe.teacher.lane_change_cost,
        "recipe.teacher.crash_penalty": recipe.teacher.crash_penalty,
        "recipe.teacher.sight_ahead": recipe.teacher.sight_ahead,
        "recipe.teacher.sight_behind": recipe.teacher.sight_behind,
        "recipe.student.tolerance": recipe.student.tolerance,
        "recipe.student.regret_weight": recipe.student.regret_weight,
        "recipe.student.shift": recipe.student.shift,
        "recipe.student.gap_weight": recipe.student.gap_weight,
    }
    for low, values in ((1, positive), (0, non_negative)):
        for key, value in values.items():
            if value < low:
                raise DriveError(f"{key} must be at least {low}, got {value}")
    if recipe.teacher.vehicles != 0 and recipe.teacher.vehicles < 2:
        vehicles = recipe.teacher.vehicles
        raise DriveError(f"recipe.teacher.vehicles must be 0 (all) or at least 2 (ego and one other), got {vehicles}")
    if not 1 <= recipe.teacher.commit <= recipe.teacher.horizon:
        raise DriveError(f"recipe.teacher.commit must be between 1 and the horizon, got {recipe.teacher.commit}")
    if not recipe.teacher.continuations:
        raise DriveError(f"recipe.teacher.continuations must name at least one of {', '.join(ACTION_NAMES)}")
    check_choice("recipe.student.select", recipe.student.select, ("last", "best", "vote"))
    _check_vote(config)
    check_choice("recipe.student.loss", recipe.student.loss, ("set", "soft", "regret"))
    check_choice("recipe.student.precision", recipe.student.precision, ("float32", "bfloat16"))
    if recipe.student.temperature <= 0:
        raise DriveError(f"recipe.student.temperature must be above 0, got {recipe.student.temperature}")
    _check_split(config)
    _check_refit(config)
    for key, value in (
        ("recipe.teacher.gamma", recipe.teacher.gamma),
        ("recipe.student.beta_decay", recipe.student.beta_decay),
        ("recipe.student.noise", recipe.student.noise),
        ("recipe.student.lr_end", recipe.student.lr_end),
    ):
        if not 0 <= value <= 1:
            raise DriveError(f"{key} must be between 0 and 1, got {value}")


def _check_vote(config: RunConfig) -> None:
    """``select: vote`` needs rounds to vote and at least two students (rounds, or a round and the refit)."""
    recipe = config.recipe
    if recipe.student.select != "vote":
        return
    voters = recipe.student.vote_rounds
    if not 1 <= voters <= recipe.student.rounds:
        raise DriveError(
            f"recipe.student.vote_rounds must be between 1 and recipe.student.rounds ({recipe.student.rounds}),"
            f" got {voters}"
        )
    if voters + (recipe.refit.members > 0) < 2:
        raise DriveError(
            "recipe.student.select=vote needs two students or more: vote_rounds at least 2, or a refit"
            " (recipe.refit.members)"
        )


def _check_split(config: RunConfig) -> None:
    """``recipe.student.split`` shares the envs among the ensemble's members: it needs members, and each member's
    states are its own, so no shared auxiliary head."""
    student, members = config.recipe.student, config.algo.encoder.members
    if not student.split:
        return
    if members < 2:
        raise DriveError(f"recipe.student.split needs algo.encoder.members of at least 2, got {members}")
    if config.env.n_envs < members:
        n_envs = config.env.n_envs
        raise DriveError(
            f"recipe.student.split needs env.n_envs of at least algo.encoder.members ({members}), got {n_envs}"
        )
    if student.gap_weight > 0:
        raise DriveError(f"recipe.student.split needs recipe.student.gap_weight 0, got {student.gap_weight}")


def _check_refit(config: RunConfig) -> None:
    """``recipe.refit`` builds an ensemble whose members share the envs: none, or at least two members, each with
    at least one env (its budget is checked with the other counts)."""
    refit = config.recipe.refit
    if refit.members == 0:
        return
    if refit.members < 2:
        raise DriveError(f"recipe.refit.members must be 0 (no refit) or at least 2, got {refit.members}")
    if config.env.n_envs < refit.members:
        n_envs = config.env.n_envs
        raise DriveError(f"recipe.refit.members {refit.members} needs env.n_envs of at least it, got {n_envs}")


def dump(config: RunConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
