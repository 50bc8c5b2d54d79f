"""``drive train-agent --recipe driver``: stages in one run folder, resume by round, refusals in one line."""

import json

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO

from drive.agents.recipe import read_round_data
from drive.cli import main
from tests.cli.test_cli import _sets

TINY_RECIPE = [
    "env.n_envs=4",
    "env.config.duration=5",
    "recipe.student.rounds=2",
    "recipe.student.vote_rounds=2",
    "recipe.student.steps_per_round=3",
    "recipe.student.updates_per_round=2",
    "recipe.student.batch_size=8",
    "recipe.teacher.horizon=2",
    "algo.encoder.features_dim=16",
    "train.eval_episodes=1",
]


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train-agent", "--recipe", "driver", "--runs-dir", str(runs), "-q", *_sets(TINY_RECIPE)]) == 0
    (run,) = runs.iterdir()
    return run


def test_the_recipe_writes_every_stage_and_a_final_model(recipe_run):
    run = recipe_run
    assert run.name.startswith("highway-driver-")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["recipe"]["name"] == "driver" and config["env"]["backend"] == "batched"
    teacher = json.loads((run / "teacher" / "metrics.json").read_text())
    assert teacher["backend"] == "batched" and teacher["config"]["horizon"] == 2
    rounds = json.loads((run / "student" / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1]
    assert [r["env_steps"] for r in rounds] == [12, 24] and [r["samples"] for r in rounds] == [12, 24]
    assert rounds[0]["beta"] == 1.0 and rounds[1]["beta"] == 0.5
    assert rounds[1]["seconds_total"] >= rounds[0]["seconds_total"] > 0
    assert {p.name for p in (run / "student").iterdir()} >= {"round_00.zip", "round_01.zip", "data_01.npz"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["summary"]["episodes"] == 1 and metrics["idm"]["episodes"] == 1
    assert metrics["timesteps"] == 24


def test_the_default_driver_is_the_vote_of_the_last_rounds_seen_through_the_recipes_camera(recipe_run):
    chosen = json.loads((recipe_run / "student" / "chosen.json").read_text())
    assert chosen["vote"] == ["round_00", "round_01"]  # vote_rounds=2 of the tiny run's 2 rounds, no refit
    policy = PPO.load(recipe_run / "model.zip").policy
    assert len(policy.features_extractor.trunks) == 2
    assert policy.observation_space.shape == (4, 224, 40)  # configs/recipes/driver.yaml's camera, (stack, W, H)
    assert read_round_data(recipe_run, 0)[0].shape[1:] == (4, 224, 40)


def test_the_recipe_keeps_the_round_that_drove_best_alone_on_validation_traffic(tmp_path):

    runs = tmp_path / "runs"
    sets = [*TINY_RECIPE, "recipe.student.rounds=3", "recipe.student.select=best"]
    assert main(["train-agent", "--recipe", "driver", "--runs-dir", str(runs), "-q", *_sets(sets)]) == 0
    (run,) = runs.iterdir()
    rounds = json.loads((run / "student" / "rounds.json").read_text())
    returns = [r["alone"]["mean_return"] for r in rounds]
    assert all(r["alone"]["episodes"] >= 4 for r in rounds)  # every env drove at least one episode alone
    chosen = json.loads((run / "student" / "chosen.json").read_text())["round"]
    assert returns[chosen] == max(returns)
    final = PPO.load(run / "model.zip").policy.state_dict()
    kept = PPO.load(run / "student" / f"round_{chosen:02d}.zip").policy.state_dict()
    assert all(torch.equal(final[k], kept[k]) for k in final)


REFIT = ["recipe.refit.members=2", "recipe.refit.updates=3", "recipe.refit.batch_size=4"]


@pytest.fixture(scope="module")
def refit_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("refit")
    sets = [*TINY_RECIPE, *REFIT, "recipe.student.select=best"]
    assert main(["train-agent", "--recipe", "driver", "--runs-dir", str(runs), "-q", *_sets(sets)]) == 0
    (run,) = runs.iterdir()
    return run


def test_the_refit_fits_a_fresh_ensemble_on_every_rounds_data(refit_run):

    refit = json.loads((refit_run / "student" / "refit.json").read_text())
    rounds = json.loads((refit_run / "student" / "rounds.json").read_text())
    assert refit["members"] == 2 and refit["updates"] == 3 and refit["samples"] == rounds[-1]["samples"] == 24
    assert refit["seconds_total"] > rounds[-1]["seconds_total"] and refit["alone"]["episodes"] >= 4
    extractor = PPO.load(refit_run / "student" / "refit.zip").policy.pi_features_extractor
    assert len(extractor.trunks) == 2  # the refit's ensemble, though the rounds' students had one encoder
    metrics = json.loads((refit_run / "metrics.json").read_text())
    assert metrics["train_seconds"] == pytest.approx(refit["seconds_total"])


def test_select_best_weighs_the_refit_beside_the_rounds(refit_run):

    rounds = json.loads((refit_run / "student" / "rounds.json").read_text())
    refit = json.loads((refit_run / "student" / "refit.json").read_text())
    returns = [r["alone"]["mean_return"] for r in rounds] + [refit["alone"]["mean_return"]]
    chosen = json.loads((refit_run / "student" / "chosen.json").read_text())
    kept = "refit.zip" if chosen.get("refit") else f"round_{chosen['round']:02d}.zip"
    assert returns[-1 if chosen.get("refit") else chosen["round"]] == max(returns)
    final = PPO.load(refit_run / "model.zip").policy.state_dict()
    assert all(torch.equal(final[k], v) for k, v in PPO.load(refit_run / "student" / kept).policy.state_dict().items())


def _logits(model, frames):
    """The policy's action logits before the softmax."""
    policy = model.policy
    with torch.no_grad():
        features = policy.extract_features(frames, policy.pi_features_extractor)
        return policy.action_net(policy.mlp_extractor.forward_actor(features))


def test_select_vote_keeps_a_committee_whose_logits_are_its_students_sum(tmp_path):
    sets = [*TINY_RECIPE, *REFIT, "recipe.student.select=vote", "recipe.student.vote_rounds=2"]
    assert main(["train-agent", "--recipe", "driver", "--runs-dir", str(tmp_path), "-q", *_sets(sets)]) == 0
    (run,) = tmp_path.iterdir()
    chosen = json.loads((run / "student" / "chosen.json").read_text())
    assert chosen["vote"] == ["round_00", "round_01", "refit"] and chosen["alone"]["episodes"] >= 4
    final = PPO.load(run / "model.zip")
    assert len(final.policy.features_extractor.trunks) == 4  # two single students and the refit's two members
    frames = torch.as_tensor(np.concatenate([read_round_data(run, k)[0][:6] for k in range(2)]))
    students = [PPO.load(run / "student" / f"{name}.zip") for name in chosen["vote"]]
    assert torch.allclose(_logits(final, frames), sum(_logits(s, frames) for s in students), atol=1e-5)
    assert json.loads((run / "metrics.json").read_text())["summary"]["episodes"] == 1


def test_select_last_keeps_the_refit_the_last_stage(tmp_path):

    runs = tmp_path / "runs"
    sets = [*TINY_RECIPE, *REFIT, "recipe.student.rounds=1", "recipe.student.select=last"]
    assert main(["train-agent", "--recipe", "driver", "--runs-dir", str(runs), "-q", *_sets(sets)]) == 0
    (run,) = runs.iterdir()
    final = PPO.load(run / "model.zip").policy.state_dict()
    refit = PPO.load(run / "student" / "refit.zip").policy.state_dict()
    assert final.keys() == refit.keys() and all(torch.equal(final[k], refit[k]) for k in final)
    assert not (run / "student" / "chosen.json").exists()


def test_a_resumed_run_keeps_a_finished_refit_and_redoes_a_stopped_one(refit_run, tmp_path):
    import shutil

    run = tmp_path / refit_run.name
    shutil.copytree(refit_run, run)
    refit = (run / "student" / "refit.json").read_text()
    for name in ("model.zip", "metrics.json"):
        (run / name).unlink()
    assert main(["train-agent", "--resume", str(run), "-q"]) == 0
    assert (run / "student" / "refit.json").read_text() == refit  # read back, not fitted again
    for name in ("model.zip", "metrics.json", "student/refit.json"):
        (run / name).unlink()  # as if stopped during the refit
    assert main(["train-agent", "--resume", str(run), "-q"]) == 0
    again = json.loads((run / "student" / "refit.json").read_text())
    assert again["seconds"] != json.loads(refit)["seconds"] and (run / "metrics.json").is_file()


def test_the_recipe_prints_its_verdict_beside_the_idm_driver(tmp_path, capsys):
    runs = tmp_path / "runs"
    sets = [*TINY_RECIPE, "recipe.student.rounds=1", "recipe.student.select=last"]
    assert main(["train-agent", "--recipe", "driver", "--runs-dir", str(runs), "-q", *_sets(sets)]) == 0
    out = capsys.readouterr().out
    assert "IDM driver" in out and "crash rate" in out and "speed" in out


def test_evaluate_and_watch_take_a_recipe_run(recipe_run, tmp_path, capsys):
    assert main(["evaluate", "--run", str(recipe_run), "--episodes", "1", "--runs-dir", str(tmp_path), "-q"]) == 0
    assert "1 episodes: return" in capsys.readouterr().out
    video = tmp_path / "driver.gif"
    assert main(["watch", "--run", str(recipe_run), "--out", str(video), "-q"]) == 0
    assert video.stat().st_size > 0


def test_an_interrupted_recipe_resumes_at_the_next_round(recipe_run, tmp_path):
    import shutil

    run = tmp_path / recipe_run.name
    shutil.copytree(recipe_run, run)
    rounds = json.loads((run / "student" / "rounds.json").read_text())
    (run / "student" / "rounds.json").write_text(json.dumps(rounds[:1]))  # as if stopped during round 1
    for name in ("model.zip", "metrics.json"):
        (run / name).unlink()
    assert main(["train-agent", "--resume", str(run), "-q"]) == 0
    resumed = json.loads((run / "student" / "rounds.json").read_text())
    assert [r["round"] for r in resumed] == [0, 1] and resumed[0] == rounds[0]
    assert resumed[1]["samples"] == rounds[1]["samples"]  # round 0's data was reloaded, not lost
    assert (run / "model.zip").is_file() and (run / "metrics.json").is_file()


def test_a_stopped_recipe_run_is_evaluated_from_its_last_finished_round(recipe_run, tmp_path, capsys):
    import shutil

    run = tmp_path / recipe_run.name
    shutil.copytree(recipe_run, run)
    (run / "model.zip").unlink()
    assert main(["evaluate", "--run", str(run), "--episodes", "1", "--runs-dir", str(tmp_path / "e"), "-q"]) == 0
    (run / "student" / "rounds.json").unlink()
    assert main(["evaluate", "--run", str(run), "--episodes", "1", "--runs-dir", str(tmp_path / "e"), "-q"]) == 2
    assert "has no finished round yet" in capsys.readouterr().err


def test_a_finished_recipe_run_is_not_resumed(recipe_run, capsys):
    assert main(["train-agent", "--resume", str(recipe_run), "-q"]) == 2
    assert "is finished" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "pilot"], "valid: driver"),
        (["--recipe", "driver", "--backend", "highway-env"], "needs env.backend 'batched'"),
        (["--recipe", "driver", "--algo", "dqn"], "needs algo.name 'ppo'"),
        (["--recipe", "driver", "--set", "recipe.student.rounds=0"], "recipe.student.rounds must be at least 1"),
        (["--recipe", "driver", "--set", "recipe.student.epochs=3"], "unknown config key 'recipe.student.epochs'"),
        (["--recipe", "driver", "--set", "recipe.teacher.aggregate=min"], "valid: max, mean, top2, top3, top4"),
        (["--recipe", "driver", "--set", "recipe.teacher.aggregate=top5"], "(did you mean 'top4'?)"),
        (["--recipe", "driver", "--set", "recipe.student.loss=x"], "valid: set, soft, regret"),
        (["--recipe", "driver", "--set", "recipe.student.temperature=0"], "temperature must be above 0, got 0.0"),
        (["--recipe", "driver", "--set", "recipe.student.noise=2"], "noise must be between 0 and 1, got 2.0"),
        (["--recipe", "driver", "--set", "recipe.teacher.lane_change_cost=-1"], "lane_change_cost must be at least 0"),
        (["--recipe", "driver", "--set", "recipe.student.select=first"], "valid: last, best, vote"),
        (
            ["--recipe", "driver", "--set", "recipe.student.select=vote", "--set", "recipe.student.vote_rounds=8"],
            "recipe.student.vote_rounds must be between 1 and recipe.student.rounds (7), got 8",
        ),
        (
            ["--recipe", "driver", "--set", "recipe.student.select=vote", "--set", "recipe.student.vote_rounds=1"],
            "recipe.student.select=vote needs two students or more: vote_rounds at least 2, or a refit",
        ),
        (["--recipe", "driver", "--set", "recipe.teacher.commit=0"], "recipe.teacher.commit must be between 1"),
        (["--recipe", "driver", "--set", "recipe.student.tolerance=-1"], "recipe.student.tolerance must be at least 0"),
        (["--set", "recipe.student.rounds=3"], "recipe.* keys need a recipe: give --recipe NAME (valid: driver)"),
        (["--recipe", "driver", "--timesteps", "5000"], "a recipe is budgeted in rounds"),
    ],
)
def test_bad_recipe_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train-agent", *args, "--runs-dir", str(runs), "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not runs.exists()
