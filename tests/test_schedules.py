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
