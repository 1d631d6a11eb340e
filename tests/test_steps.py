"""The Trainer's step budget split into Keras epochs is exact."""

import pytest

from model_garden.trainers.steps import epoch_plan


@pytest.mark.parametrize("train_steps", [1, 7, 20, 300, 1200, 8141, 182 * 391, 9973])
def test_plan_never_overshoots_the_budget(train_steps):
    epochs, per_epoch = epoch_plan(train_steps)
    assert epochs * per_epoch == train_steps
    assert 1 <= epochs <= max(train_steps, 10) and epochs <= 100


def test_plan_prefers_ten_epochs_and_honours_steps_per_epoch():
    assert epoch_plan(1200) == (10, 120)
    assert epoch_plan(8141) == (7, 1163)  # 8141 = 7 x 1163
    assert epoch_plan(1200, steps_per_epoch=300) == (4, 300)
    with pytest.raises(ValueError, match="does not divide"):
        epoch_plan(1200, steps_per_epoch=7)
    with pytest.raises(ValueError, match=">= 1"):
        epoch_plan(0)
