import math

import pytest

from dl_core import schedules
from dl_core.translation.training import teacher_forcing_schedule


def test_decay_shapes_hit_their_endpoints():
    for make in (schedules.linear, schedules.cosine, schedules.exponential, schedules.polynomial):
        fn = make(1.0, 0.01)
        assert fn(0.0) == pytest.approx(1.0) and fn(1.0) == pytest.approx(0.01)
        assert fn(0.25) > fn(0.5) > fn(0.75)  # monotone decay
    assert schedules.cosine(1.0, 0.0)(0.5) == pytest.approx(0.5)
    assert schedules.exponential(1.0, 0.01)(0.5) == pytest.approx(0.1)


def test_one_cycle_warms_up_then_anneals():
    fn = schedules.one_cycle(1.0, div=25, final_div=1e4, pct_start=0.25)
    assert fn(0.0) == pytest.approx(1 / 25)
    assert fn(0.25) == pytest.approx(1.0)
    assert fn(1.0) == pytest.approx(1e-4)
    values = [fn(p / 100) for p in range(101)]
    peak = values.index(max(values))
    assert peak == 25 and values[:peak] == sorted(values[:peak]) and values[peak:] == sorted(values[peak:], reverse=True)
    mom = schedules.one_cycle_momentum(0.95, 0.85, pct_start=0.25)
    assert mom(0.0) == pytest.approx(0.95) and mom(0.25) == pytest.approx(0.85) and mom(1.0) == pytest.approx(0.95)


def test_slanted_triangular_matches_the_lessons_use_clr():
    fn = schedules.slanted_triangular(1.0, div=20, cut_frac=0.1)
    assert fn(0.0) == pytest.approx(0.05) and fn(0.1) == pytest.approx(1.0) and fn(1.0) == pytest.approx(0.05)
    assert fn(0.05) == pytest.approx((0.05 + 1.0) / 2)


def test_sgdr_restarts_at_the_start_of_each_longer_cycle():
    fn = schedules.sgdr(1.0, n_cycles=3, cycle_mult=2)  # cycles of 1, 2, 4 units: restarts at 1/7 and 3/7
    assert fn(0.0) == pytest.approx(1.0)
    assert fn(1 / 7 - 1e-9) == pytest.approx(0.0, abs=1e-6)
    assert fn(1 / 7 + 1e-9) == pytest.approx(1.0, abs=1e-6)
    assert fn(3 / 7 + 1e-9) == pytest.approx(1.0, abs=1e-6)
    assert fn(1.0) == pytest.approx(0.0, abs=1e-9)


def test_phases_must_cover_the_whole_fit():
    with pytest.raises(ValueError, match="sum to"):
        schedules.phases([(0.5, schedules.constant(1.0))])


def test_teacher_forcing_schedule_follows_the_lesson():
    lesson = teacher_forcing_schedule(0.0)
    assert [round(lesson(e, 12), 2) for e in range(12)] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0]
    floored = teacher_forcing_schedule(0.5)
    assert floored(0, 12) == 1.0 and min(floored(e, 12) for e in range(12)) == 0.5
    assert all(not math.isnan(floored(e, 3)) for e in range(3))


# --- lesson 13's training phases: values at chosen iterations, worked out by hand --------------------------------
def test_every_decay_formula_at_a_quarter_of_its_phase():
    t = 0.25
    assert schedules.decay("linear", 1.0, 0.1)(t) == pytest.approx(1.0 + (0.1 - 1.0) * t)  # 0.775
    assert schedules.decay("cosine", 1.0, 0.1)(t) == pytest.approx(0.1 + 0.9 / 2 * (1 + math.cos(math.pi / 4)))  # 0.8682
    assert schedules.decay("exponential", 1.0, 0.1)(t) == pytest.approx(0.1**0.25)  # 0.5623
    assert schedules.decay("polynomial", 1.0, 0.1, power=2)(t) == pytest.approx(0.1 + 0.9 * 0.75**2)  # 0.60625
    assert schedules.decay("constant", 1.0, 0.1)(t) == 1.0
    with pytest.raises(schedules.ScheduleError, match="unknown decay"):
        schedules.decay("sawtooth", 1.0, 0.1)


def test_the_lessons_1cycle_preset_iteration_by_iteration():
    # 10 epochs of 10 iterations, div 20, 20% annihilation: up for 40 iterations, down for 40, annihilate for 20
    lr, momentum = schedules.phase_schedules(schedules.one_cycle_phases(10, 1.0, div=20, pct=20, max_mom=0.95, min_mom=0.85))
    lrs, moms = schedules.sample(lr, 100), schedules.sample(momentum, 100)
    expected = {0: (0.05, 0.95), 20: (0.525, 0.90), 40: (1.0, 0.85), 60: (0.525, 0.90), 80: (0.05, 0.95),
                90: (0.02525, 0.95), 99: (0.05 - 0.0495 * 0.95, 0.95)}
    for i, (want_lr, want_momentum) in expected.items():
        assert (lrs[i], moms[i]) == (pytest.approx(want_lr), pytest.approx(want_momentum)), i


def test_the_sgdr_preset_restarts_at_the_start_of_each_doubled_cycle():
    lr, momentum = schedules.phase_schedules(schedules.sgdr_phases(1.0, n_cycles=3, cycle_len=1, cycle_mult=2))
    lrs = schedules.sample(lr, 70)  # cycles of 10, 20 and 40 iterations, each cosine 1.0 -> 0.01
    for start, length in ((0, 10), (10, 20), (30, 40)):
        assert lrs[start] == pytest.approx(1.0)
        assert lrs[start + length // 2] == pytest.approx(0.01 + 0.99 / 2)  # halfway: cos = 0
        assert lrs[start + length - 1] < 0.05
    assert set(schedules.sample(momentum, 70)) == {0.9}


def test_the_two_sgd_phases_preset_holds_each_lr():
    lr, momentum = schedules.phase_schedules(schedules.two_sgd_phases())  # 1 epoch at 1e-2, then 2 at 1e-3
    lrs = schedules.sample(lr, 30)
    assert lrs[:10] == [0.01] * 10 and lrs[10:] == [0.001] * 20
    assert schedules.sample(momentum, 30) == [0.9] * 30


def test_phases_share_the_fit_by_their_lengths():
    plan = [schedules.Phase(1, (0.1, 0.1), lr_decay="constant"), schedules.Phase(3, (0.2, 0.4), (0.9, 0.8), "linear", "linear")]
    lr, momentum = schedules.phase_schedules(plan)
    assert lr(0.2) == 0.1 and lr(0.25) == pytest.approx(0.2) and lr(0.625) == pytest.approx(0.3) and lr(1.0) == pytest.approx(0.4)
    assert momentum(0.625) == pytest.approx(0.85)


@pytest.mark.parametrize("phase, message", [
    (schedules.Phase(0, (0.1, 0.1)), "length must be more than 0"),
    (schedules.Phase(-2, (0.1, 0.1)), "length must be more than 0"),
    (schedules.Phase(1, (0.0, 0.1)), "LR start must be more than 0"),
    (schedules.Phase(1, (0.1, -1.0)), "LR end must be more than 0"),
    (schedules.Phase(1, (0.1, 0.1), (1.0, 0.9)), r"momentum start must be in \[0, 1\)"),
    (schedules.Phase(1, (0.1, 0.1), (0.9, -0.1)), r"momentum end must be in \[0, 1\)"),
    (schedules.Phase(1, (float("nan"), 0.1)), "finite number"),
    (schedules.Phase(float("inf"), (0.1, 0.1)), "finite number"),
    (schedules.Phase(1, (0.1, 0.1), lr_decay="zigzag"), "is not one of"),
    (schedules.Phase(1, (0.1, 0.1), (0.0, 0.9), momentum_decay="exponential"), "both ends above 0"),
    (schedules.Phase(1, (0.1, 0.01), lr_decay="polynomial", power=0), "power must be more than 0"),
    (schedules.Phase(20_000, (0.1, 0.1)), "at most 10,000"),
])
def test_schedule_validation_says_which_phase_and_why(phase, message):
    with pytest.raises(schedules.ScheduleError, match=message):
        schedules.check_phases([schedules.Phase(1, (0.1, 0.1)), phase] if "10,000" not in message else [phase])


def test_an_empty_or_endless_phase_list_is_refused():
    with pytest.raises(schedules.ScheduleError, match="no phases"):
        schedules.check_phases([])
    with pytest.raises(schedules.ScheduleError, match="too many"):
        schedules.check_phases([schedules.Phase(1, (0.1, 0.1))] * 1000)
