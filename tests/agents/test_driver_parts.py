"""The driver recipe's parts with small budgets: the planner teacher, the distillation loss, DAgger's fit."""

import itertools
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from drive.agents.algos import build_model
from drive.agents.dagger import Dataset, GapHead, agreement, collect, distill_loss, features_and_logits, fit
from drive.agents.planner import BEHIND_WEIGHT, OUT_OF_SIGHT, Planner, aggregate, nearest_vehicles, within_sight
from drive.config import StudentConfig, TeacherConfig, resolve
from drive.envs import make_venv
from drive.envs.batched import constants as C
from drive.perception.truth import GAP_NAMES


def _episodes(venv, act, n):
    """One episode per env of ``venv`` (n envs): return, crashed."""
    venv.seed(123)
    venv.reset()
    done, results = np.zeros(n, bool), {}
    while not done.all():
        _, _, dones, infos = venv.step(act())
        for i in np.flatnonzero(dones & ~done):
            results[i] = (infos[i]["episode"]["r"], infos[i]["episode"]["crashed"])
        done |= dones
    returns, crashed = zip(*(results[i] for i in range(n)), strict=True)
    return np.mean(returns), np.mean(crashed)


def test_the_planner_drives_far_better_than_random_on_the_batched_simulator():
    n = 8
    venv = make_venv("highway", "kinematics", n, backend="batched")
    planner = Planner(venv.sim, TeacherConfig(horizon=5))
    planned_return, planned_crashes = _episodes(venv, lambda: planner.act(venv.sim).numpy(), n)
    rng = np.random.default_rng(0)
    random_return, random_crashes = _episodes(venv, lambda: rng.integers(0, 5, n), n)
    assert planned_crashes <= 1 / n < random_crashes
    assert planned_return > 20 > random_return + 5


def test_the_planner_keeps_lane_and_speed_on_a_near_tie():
    planner = Planner(make_venv("highway", "kinematics", 1, backend="batched").sim, TeacherConfig(tie=0.01))
    values = torch.tensor(
        [
            [1.0, 1.0, 1.0, 1.0, 1.0],  # all equal: IDLE
            [1.0, 0.995, 0.0, 0.0, 0.0],  # LANE_LEFT barely better: still IDLE
            [1.0, 0.9, 0.0, 0.95, 0.0],  # a clear gain: LANE_LEFT
            [0.0, 0.5, 0.0, 0.505, 0.0],  # FASTER within the tie of IDLE: IDLE
            [0.0, -20.0, 0.5, -20.0, -20.0],  # only LANE_RIGHT avoids a crash
        ]
    )
    assert planner.choose(values).tolist() == [C.IDLE, C.IDLE, C.LANE_LEFT, C.IDLE, C.LANE_RIGHT]


def test_a_lane_change_cost_lowers_only_the_lane_changes_values():
    venv = make_venv("highway", "kinematics", 4, backend="batched", seed=3)
    free = Planner(venv.sim, TeacherConfig(horizon=3)).action_values(venv.sim)
    costly = Planner(venv.sim, TeacherConfig(horizon=3, lane_change_cost=0.3)).action_values(venv.sim)
    lane_changes = [C.LANE_LEFT, C.LANE_RIGHT]
    others = [C.IDLE, C.FASTER, C.SLOWER]
    torch.testing.assert_close(free[:, lane_changes] - costly[:, lane_changes], torch.full((4, 2), 0.3).double())
    torch.testing.assert_close(free[:, others], costly[:, others])


def test_a_topk_teacher_values_an_action_by_its_k_best_continuations():
    # one env; LANE_LEFT is saved by one continuation only, IDLE by three
    branches = torch.tensor([[[5.0, -20, -20], [4.0, 4.0, 4.0], [0, 0, 0], [1.0, 2.0, 3.0], [-1.0, -1, -1]]])
    assert aggregate(branches, "max")[0].tolist() == [5.0, 4.0, 0.0, 3.0, -1.0]
    assert aggregate(branches, "top2")[0].tolist() == [-7.5, 4.0, 0.0, 2.5, -1.0]
    assert aggregate(branches, "mean")[0, 0] == pytest.approx(-35 / 3)


def test_the_nearest_vehicles_keep_the_ego_first_and_the_closest_others_in_slot_order():
    state = make_venv("highway", "kinematics", 6, backend="batched", seed=5).sim.state
    kept = nearest_vehicles(state, 8)
    assert kept.position.shape == (6, 8, 2) and kept.speed.shape == (6, 8) and kept.time.shape == (6,)
    torch.testing.assert_close(kept.position[:, 0], state.position[:, 0])  # the ego stays in slot 0
    for env in range(6):
        dx = state.position[env, 1:, 0] - state.position[env, 0, 0]
        reach = torch.where(dx >= 0, dx, -BEHIND_WEIGHT * dx)
        farthest_kept = torch.sort(reach).values[6]
        for slot in range(1, 8):  # each kept vehicle is one of the 7 nearest, with its own speed and lane
            original = int((state.position[env, :, 0] == kept.position[env, slot, 0]).nonzero()[0])
            assert original > 0 and reach[original - 1] <= farthest_kept
            assert kept.speed[env, slot] == state.speed[env, original]
            assert kept.lane[env, slot] == state.lane[env, original]
    order = [int((state.position[0, :, 0] == x).nonzero()[0]) for x in kept.position[0, :, 0]]
    assert order == sorted(order)  # slots keep their order (highway-env's vehicle order)


def test_a_planner_on_the_nearest_vehicles_values_actions_like_one_on_all():
    venv = make_venv("highway", "kinematics", 16, backend="batched", seed=11)
    config = TeacherConfig(horizon=4, aggregate="top2")
    every = Planner(venv.sim, config).action_values(venv.sim)
    torch.testing.assert_close(nearest_vehicles(venv.sim.state, 21).position, venv.sim.state.position)
    nearest = Planner(venv.sim, TeacherConfig(horizon=4, aggregate="top2", vehicles=15))
    assert nearest.model.num_vehicles == 15
    chosen = nearest.choose(nearest.action_values(venv.sim))
    regret = every.max(-1).values - every.gather(1, chosen[:, None])[:, 0]
    assert float(regret.mean()) < 0.2  # the few far vehicles hardly change what the next seconds are worth


def test_vehicles_out_of_the_teachers_sight_leave_its_look_ahead_and_the_rest_stay():
    state = make_venv("highway", "kinematics", 6, backend="batched", seed=5).sim.state
    seen = within_sight(state, ahead=40.0, behind=10.0)
    dx = state.position[:, 1:, 0] - state.position[:, :1, 0]
    hidden = (dx > 40.0) | (dx < -10.0)
    assert hidden.any() and (~hidden).any()
    moved = state.position[:, 1:, 0] - seen.position[:, 1:, 0]
    torch.testing.assert_close(moved, hidden.to(moved.dtype) * OUT_OF_SIGHT)  # those out of sight, all by as much
    torch.testing.assert_close(seen.position[:, 0], state.position[:, 0])  # the ego stays
    torch.testing.assert_close(seen.position[..., 1], state.position[..., 1])  # lanes unchanged
    assert torch.equal(seen.speed, state.speed) and seen.position is not state.position  # the sim's own is untouched


def test_a_short_sighted_teacher_values_an_action_as_if_the_far_traffic_were_not_there():
    venv = make_venv("highway", "kinematics", 8, backend="batched", seed=11)
    config = TeacherConfig(horizon=4, aggregate="top2")
    blind = Planner(venv.sim, TeacherConfig(horizon=4, aggregate="top2", sight_ahead=1e-3, sight_behind=1e-3))
    alone = make_venv("highway", "kinematics", 8, backend="batched", seed=11)
    alone.sim.state = within_sight(alone.sim.state, 1e-3, 1e-3)  # the same traffic, every other vehicle far away
    torch.testing.assert_close(blind.action_values(venv.sim), Planner(alone.sim, config).action_values(alone.sim))


def test_the_distillation_loss_accepts_any_good_action_and_punishes_costly_ones():
    values = torch.tensor([[1.0, 1.0, 0.0, 0.0, -20.0]])  # LANE_LEFT and IDLE both best; SLOWER crashes
    sure = lambda a: torch.nn.functional.one_hot(torch.tensor([a]), 5).float() * 20  # noqa: E731
    student = StudentConfig(tolerance=0.02, regret_weight=1.0, loss="set")
    on_left, on_idle, on_right, on_slower = (distill_loss(sure(a), values, student) for a in (0, 1, 2, 4))
    assert on_left[0] < 1e-3 and on_idle[0] < 1e-3
    assert bool(on_left[1]) and bool(on_idle[1]) and not bool(on_right[1])
    assert on_slower[0] > on_right[0] + 15  # the regret term: a crash costs far more than a slower lane


def test_the_soft_target_shares_ties_and_gives_a_crash_nothing():
    values = torch.tensor([[1.0, 1.0, 0.7, 0.0, -20.0]])
    student = StudentConfig(loss="soft", temperature=0.3, regret_weight=0.0)
    loss_at = lambda logits: float(distill_loss(torch.tensor([logits]), values, student)[0])  # noqa: E731
    tied = loss_at([5.0, 5.0, 4.0, 5 - 1 / 0.3, -65.0])  # the target itself: softmax(values / 0.3)
    assert tied < loss_at([8.0, 2.0, 4.0, 0.0, -65.0]) - 1  # all on one of two equal actions costs more
    assert tied < loss_at([5.0, 5.0, 4.0, 5 - 1 / 0.3, 4.0]) - 0.1  # a quarter of the mass on the crash costs more


class LaneTeacher:
    """A teacher whose best action is read off the road: LANE_LEFT in the rightmost of highway-fast's three
    lanes, LANE_RIGHT elsewhere. It drives at random among lane changes and IDLE, so that the states cover
    every lane."""

    def __init__(self, seed=0):
        self.rng = torch.Generator().manual_seed(seed)

    def action_values(self, sim):
        values = torch.zeros(sim.num_envs, 5)
        rightmost = sim.state.lane[:, 0] >= 2
        values[torch.arange(sim.num_envs), torch.where(rightmost, C.LANE_LEFT, C.LANE_RIGHT)] = 1.0
        return values

    def choose(self, values):
        return torch.tensor([C.LANE_LEFT, C.IDLE, C.LANE_RIGHT])[torch.randint(3, (len(values),), generator=self.rng)]


def _lane_data(teacher):
    sets = ["algo.encoder.name=compact", "algo.encoder.features_dim=64", "algo.hyperparams.learning_rate=0.001"]
    config = resolve("highway", "ppo", "pixels", sets=sets)
    venv = make_venv("highway", "pixels", 32, backend="batched", seed=5)
    venv.reset()
    model = build_model(config, venv, device="cpu")
    generator = torch.Generator().manual_seed(0)
    train, held_out = Dataset.empty(), Dataset.empty()
    collect(venv, teacher, model.policy, 8, 1.0, train, generator)
    venv.seed(999)  # held-out states from other traffic
    venv.reset()
    collect(venv, teacher, model.policy, 3, 1.0, held_out, generator)
    return model, train, held_out, generator


def test_dagger_fits_a_pixel_student_to_its_teacher_on_held_out_states():
    torch.manual_seed(0)
    model, train, held_out, generator = _lane_data(LaneTeacher())
    frames, values, _ = held_out.arrays()
    before = agreement(model.policy, frames, values, tolerance=0.02)
    fit(model.policy, train, StudentConfig(batch_size=64, regret_weight=1.0), generator, updates=150)
    after = agreement(model.policy, frames, values, tolerance=0.02)
    assert 0.2 < (values[:, C.LANE_LEFT] == 1).mean() < 0.8  # both labels are common
    assert after >= 0.9 and after > before + 0.2


def test_a_bfloat16_forward_pass_fits_the_student_as_well():
    torch.manual_seed(0)
    model, train, held_out, generator = _lane_data(LaneTeacher())
    frames, values, _ = held_out.arrays()
    first = next(model.policy.parameters()).detach().clone()
    fit(model.policy, train, StudentConfig(batch_size=64, precision="bfloat16"), generator, updates=150)
    assert next(model.policy.parameters()).dtype == torch.float32  # the weights stay float32
    assert not torch.equal(first, next(model.policy.parameters()))
    assert agreement(model.policy, frames, values, tolerance=0.02) >= 0.9


def _gap_error(model, head, frames, gaps):
    with torch.no_grad():
        features, _ = features_and_logits(model.policy, torch.from_numpy(frames))
        return float(head.loss(features, torch.from_numpy(gaps)))


def test_the_gap_head_learns_to_read_the_lane_gaps_on_held_out_states():
    torch.manual_seed(0)
    model, train, held_out, generator = _lane_data(LaneTeacher())
    frames, _, gaps = held_out.arrays()
    head = GapHead(model.policy.features_dim, learning_rate=1e-3)
    before = _gap_error(model, head, frames, gaps)
    fitted = fit(model.policy, train, StudentConfig(batch_size=64, gap_weight=1.0), generator, 150, head)
    after = _gap_error(model, head, frames, gaps)
    assert after < 0.5 * before and after < np.var(gaps, 0).mean()  # better than the targets' mean
    assert fitted["gap_loss"] > 0


def test_states_without_recorded_gaps_add_no_gap_loss():
    head = GapHead(8, learning_rate=1e-3)
    features = torch.randn(4, 8)
    gaps = torch.zeros(4, len(GAP_NAMES))
    gaps[2:] = torch.nan  # a round saved before the gaps were recorded
    assert float(head.loss(features, gaps)) == pytest.approx(float(head.loss(features[:2], gaps[:2])))
    assert float(head.loss(features[2:], gaps[2:])) == 0.0


class CrashLaneTeacher(LaneTeacher):
    """The same lanes, with values on a crash's scale: the wrong lane change crashes (-25), keeping the lane is
    safe but worth less (0.5), so an undecided student is drawn to IDLE."""

    def action_values(self, sim):
        right = super().action_values(sim)
        values = torch.tensor([0.0, 0.5, 0.0, 0.5, 0.3]).repeat(sim.num_envs, 1)
        values[:, [C.LANE_LEFT, C.LANE_RIGHT]] = torch.where(right[:, [C.LANE_LEFT, C.LANE_RIGHT]] > 0, 1.0, -25.0)
        return values


def test_the_soft_loss_learns_when_a_wrong_choice_costs_a_crash():
    # The set loss with an expected-regret weight of 2 (the recipe's until 2026-11-30) saturates onto one constant
    # action on these labels: held-out agreement stays at the share of states where that action is right
    # (docs/driver.md).
    torch.manual_seed(0)
    model, train, held_out, generator = _lane_data(CrashLaneTeacher())
    student = StudentConfig(batch_size=64, loss="soft", temperature=0.3, regret_weight=0.1)
    fit(model.policy, train, student, generator, updates=150)
    frames, values, _ = held_out.arrays()
    assert agreement(model.policy, frames, values, tolerance=0.02) >= 0.9


class SlowerTeacher(LaneTeacher):
    def choose(self, values):
        return torch.full((len(values),), C.SLOWER)


@pytest.mark.parametrize(("beta", "low", "high"), [(0.0, 0.0, 0.0), (0.5, 0.3, 0.7), (1.0, 1.0, 1.0)])
def test_the_teacher_drives_each_step_with_probability_beta(beta, low, high):
    venv = make_venv("highway", "pixels", 16, backend="batched", seed=1)
    venv.reset()
    config = resolve("highway", "ppo", "pixels", sets=["algo.encoder.name=compact", "algo.encoder.features_dim=16"])
    model = build_model(config, venv, device="cpu")
    with torch.no_grad():  # a student that always says LANE_LEFT
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.copy_(torch.tensor([10.0, 0, 0, 0, 0]))
    sent = []
    step_async = venv.step_async
    venv.step_async = lambda actions: (sent.append(np.asarray(actions).copy()), step_async(actions))[1]
    data = Dataset.empty()
    collect(venv, SlowerTeacher(), model.policy, 4, beta, data, torch.Generator().manual_seed(0))
    actions = np.concatenate(sent)
    assert set(np.unique(actions)) <= {C.LANE_LEFT, C.SLOWER}
    assert low <= (actions == C.SLOWER).mean() <= high
    frames, values, gaps = data.arrays()
    assert frames.shape == (64, 4, 128, 64) and frames.dtype == np.uint8 and values.shape == (64, 5)
    assert gaps.shape == (64, len(GAP_NAMES)) and np.isfinite(gaps).all()


def test_dart_noise_replaces_that_share_of_actions_by_random_ones():
    venv = make_venv("highway", "pixels", 16, backend="batched", seed=1)
    venv.reset()
    sent = []
    step_async = venv.step_async
    venv.step_async = lambda actions: (sent.append(np.asarray(actions).copy()), step_async(actions))[1]
    collect(venv, SlowerTeacher(), None, 8, 1.0, Dataset.empty(), torch.Generator().manual_seed(0), noise=0.5)
    actions = np.concatenate(sent)  # 128 actions: SLOWER, or with probability 0.5 one of the five at random
    assert 0.45 <= (actions == C.SLOWER).mean() <= 0.8
    assert set(np.unique(actions)) == set(range(5))


@pytest.mark.parametrize(
    "bad",
    [
        "recipe.student.rounds=0",
        "recipe.teacher.continuations=[IDLE,BRAKE]",
        "recipe.teacher.aggregate=top5",  # there are 5 continuations: top5 is the mean, top1 the max
        "recipe.teacher.aggregate=top1",
        "recipe.student.gap_weight=-1",
        "recipe.student.lr_end=1.5",
        "recipe.student.precision=float16",
        "recipe.teacher.vehicles=1",
        "algo.encoder.members=0",
        "recipe.student.split=true",  # needs algo.encoder.members of at least 2
        "recipe.teacher.sight_ahead=-1",
        "recipe.refit.members=1",  # 0 (none) or at least 2
        "recipe.refit.updates=0",
        "recipe.refit.batch_size=0",
    ],
)
def test_bad_recipe_values_are_refused(bad):
    from drive.errors import DriveError

    with pytest.raises(DriveError, match=bad.split("=")[0].split(".")[-1].rstrip("s")):
        resolve("highway", recipe="driver", sets=[bad])


def test_the_round_learning_rate_falls_to_lr_end_then_restarts():
    from drive.agents.dagger import _cosine

    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    schedule = _cosine(optimizer, updates=5, end=0.1)
    rates = []
    for k in range(5):
        schedule(k)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-4)
    assert all(a > b for a, b in itertools.pairwise(rates))  # falling all the way
    schedule(0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def _ensemble_student(tmp_path=None):
    config = resolve("highway", recipe="driver", sets=["algo.encoder.members=3", "algo.encoder.features_dim=32"])
    venv = make_venv("highway", "pixels", 4, backend="batched", seed=2)
    return build_model(config, venv, device="cpu"), torch.from_numpy(venv.reset())


def test_an_ensemble_policy_acts_on_the_sum_of_its_members_logits():
    from drive.perception.encoders import member_logits

    model, frames = _ensemble_student()
    features, logits = features_and_logits(model.policy, frames)
    members = member_logits(features, model.policy.action_net, 3)
    assert members.shape == (3, 4, 5)
    torch.testing.assert_close(members.sum(0), logits)
    torch.testing.assert_close(model.policy.get_distribution(frames).distribution.logits, torch.log_softmax(logits, -1))


def test_each_member_learns_alone_from_its_own_loss():
    from drive.perception.encoders import member_logits

    model, frames = _ensemble_student()
    features, _ = features_and_logits(model.policy, frames)
    member_logits(features, model.policy.action_net, 3)[0].sum().backward()
    trunks = model.policy.features_extractor.trunks
    assert trunks[0][0].trunk[0].weight.grad.abs().sum() > 0
    untouched = [t[0].trunk[0].weight.grad for t in trunks[1:]]  # members 1 and 2
    assert all(grad is None or not grad.any() for grad in untouched)
    assert len({float(t[0].trunk[0].weight.sum()) for t in trunks}) == 3  # each from its own random weights


def test_an_ensemble_student_saves_and_loads_as_an_sb3_model(tmp_path):
    from drive.agents.policies import load_model

    model, frames = _ensemble_student()
    model.save(tmp_path / "model.zip")
    loaded = load_model(tmp_path / "model.zip", "ppo", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(
            features_and_logits(loaded.policy, frames)[1], features_and_logits(model.policy, frames)[1]
        )


def test_each_member_gets_the_rows_of_its_own_envs():
    from drive.agents.dagger import member_shares

    shares = member_shares(rows=24, envs=6, members=3)  # 4 steps of 6 envs, step-major
    assert [rows.tolist()[:4] for rows in shares] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    assert sorted(torch.cat(shares).tolist()) == list(range(24))  # disjoint and complete


def test_split_logits_are_each_members_own_on_its_own_frames():
    from drive.agents.dagger import split_logits
    from drive.perception.encoders import member_logits

    model, frames = _ensemble_student()
    frames = frames[torch.arange(6) % 4]  # 6 frame stacks: member k's are rows 2k and 2k + 1
    with torch.no_grad():
        split = split_logits(model.policy, frames)
        features, _ = features_and_logits(model.policy, frames)
        full = member_logits(features, model.policy.action_net, 3)  # every member on every frame
    assert split.shape == (3, 2, 5)
    for k in range(3):
        torch.testing.assert_close(split[k], full[k, 2 * k : 2 * k + 2])


def test_a_split_fit_teaches_each_member_its_own_envs_labels():
    from drive.agents.dagger import split_logits

    sets = ["algo.encoder.members=2", "algo.encoder.features_dim=32", "recipe.student.split=true", "env.n_envs=2"]
    config = resolve("highway", recipe="driver", sets=sets)
    venv = make_venv("highway", "pixels", 2, backend="batched", seed=3)
    model = build_model(config, venv, device="cpu")
    frames = np.concatenate([venv.reset() for _ in range(10)])  # 20 rows, env r % 2
    values = np.zeros((20, 5), np.float32)
    values[0::2, C.IDLE] = values[1::2, C.FASTER] = 1.0  # env 0's states say IDLE, env 1's FASTER
    dataset = Dataset.empty()
    dataset.add(frames, values)
    student = replace(config.recipe.student, batch_size=8, shift=0)
    fit(model.policy, dataset, student, torch.Generator().manual_seed(0), updates=40, envs=2)
    with torch.no_grad():  # both members on the same frames: each chose what its own envs were labelled
        choices = split_logits(model.policy, torch.from_numpy(np.concatenate([frames, frames]))).argmax(-1)
    assert (choices[0] == C.IDLE).all() and (choices[1] == C.FASTER).all()


def test_a_refit_with_more_members_than_envs_is_refused():
    from drive.errors import DriveError

    sets = ["recipe.refit.members=3", "env.n_envs=2"]
    with pytest.raises(DriveError, match=re.escape("recipe.refit.members 3 needs env.n_envs of at least it, got 2")):
        resolve("highway", recipe="driver", sets=sets)


def test_a_split_ensemble_refuses_the_shared_gap_head():
    from drive.errors import DriveError

    sets = ["algo.encoder.members=3", "recipe.student.split=true", "recipe.student.gap_weight=1"]
    with pytest.raises(DriveError, match=re.escape("recipe.student.split needs recipe.student.gap_weight 0, got 1.0")):
        resolve("highway", recipe="driver", sets=sets)
    resolve("highway", recipe="driver", sets=sets[:2])  # without the gap head it is a valid recipe
