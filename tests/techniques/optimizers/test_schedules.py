"""schedules: each shipped schedule's step table, and that both trainers follow it."""

from __future__ import annotations

import numpy as np
import pytest

from suite.core.backend import import_keras
from suite.techniques.optimizers.schedules import TableSchedule, learning_rate_for, step_rates

keras = import_keras()


def rates(schedule: str, total: int = 200, rate: float = 0.1) -> np.ndarray:
    return step_rates({"learning_rate": rate, "lr_schedule": schedule}, total)


def test_cosine_warms_up_linearly_then_decays_to_zero():
    table = rates("cosine")
    assert table.dtype == np.float32 and len(table) == 200
    np.testing.assert_allclose(table[:10], 0.1 * np.arange(1, 11) / 10, rtol=1e-6)  # 5% of 200 steps
    assert table[9] == pytest.approx(0.1) and np.all(np.diff(table[9:]) <= 0)
    assert table[104] == pytest.approx(0.05, rel=0.02)  # half way through the decay (steps 10-199): half the rate
    assert 0 < table[-1] < 1e-4


def test_linear_decays_in_a_straight_line():
    table = rates("linear")
    steps = np.diff(table[10:])
    np.testing.assert_allclose(steps, steps[0], rtol=1e-3)
    assert 0 < table[-1] < 0.001


def test_step_divides_by_ten_at_half_and_three_quarters():
    table = rates("step")
    np.testing.assert_allclose(table[[0, 99, 100, 149, 150, 199]], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_constant_is_keras_own_rate_and_schedules_are_tables():
    assert learning_rate_for({"learning_rate": 0.1, "lr_schedule": "constant"}, 50) == 0.1
    assert learning_rate_for({"learning_rate": 0.1}, 50) == 0.1  # a hand-made config without a schedule
    schedule = learning_rate_for({"learning_rate": 0.1, "lr_schedule": "cosine"}, 50)
    assert isinstance(schedule, TableSchedule)
    looked_up = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 25, 49, 80)]
    table = rates("cosine", 50)
    assert looked_up == [table[0], table[25], table[49], table[49]]  # past the end: the last rate


def test_a_scheduled_trial_trains_differently_from_a_constant_one(synthetic_data):
    """The schedule reaches the optimizer: same seed and rate, other steps."""
    from tests.techniques.standard.test_packed import BASE, alone_step_losses, packed_step_losses

    constant = alone_step_losses({**BASE, "lr_schedule": "constant"}, 0, synthetic_data, 2)
    cosine = alone_step_losses({**BASE, "lr_schedule": "cosine"}, 0, synthetic_data, 2)
    assert constant[0] == pytest.approx(cosine[0])  # the first loss is measured before any step
    assert not np.allclose(constant[2:], cosine[2:])
    packed_cosine, _ = packed_step_losses([{**BASE, "lr_schedule": "cosine"}], [0], synthetic_data, 2)
    np.testing.assert_allclose(packed_cosine[0], cosine, rtol=1e-5, atol=1e-6)
