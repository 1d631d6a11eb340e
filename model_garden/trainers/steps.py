"""The Trainer's step budget: Keras epochs that add up to it, and the fit loop."""

from typing import Optional, Tuple


def epoch_plan(train_steps: int, steps_per_epoch: Optional[int] = None,
               target_epochs: int = 10) -> Tuple[int, int]:
    """``(epochs, steps_per_epoch)`` whose product is exactly ``train_steps``.

    Keras epochs are only the granularity of validation, TensorBoard and
    checkpoints; the Trainer's ``train_steps`` is the budget and is never
    overshot.

    Args:
      train_steps: total training steps (``FnArgs.train_steps``), >= 1.
      steps_per_epoch: wanted steps per epoch; must divide ``train_steps``.
      target_epochs: without ``steps_per_epoch``, the number of epochs is the
        divisor of ``train_steps`` nearest to this.

    Raises:
      ValueError: ``train_steps`` < 1, or ``steps_per_epoch`` does not
        divide it.
    """
    if train_steps < 1:
        raise ValueError(f"train_steps must be >= 1, got {train_steps}")
    if steps_per_epoch:
        if train_steps % steps_per_epoch:
            raise ValueError(
                f"steps_per_epoch {steps_per_epoch} does not divide train_steps {train_steps}"
            )
        return train_steps // steps_per_epoch, steps_per_epoch
    divisors = [d for d in range(1, min(train_steps, 10 * target_epochs) + 1) if train_steps % d == 0]
    epochs = min(divisors, key=lambda d: (abs(d - target_epochs), -d))
    return epochs, train_steps // epochs


def fit(model, train_ds, eval_ds, fn_args, config, callbacks=()):
    """Trains ``model`` for exactly ``fn_args.train_steps`` steps (Keras ``fit``).

    Validates on ``fn_args.eval_steps`` batches of ``eval_ds`` after each
    epoch of :func:`epoch_plan` (``config["steps_per_epoch"]`` if set) and
    writes TensorBoard logs to ``fn_args.model_run_dir``.

    Returns:
      The Keras ``History``.
    """
    import logging

    import tensorflow as tf

    train_steps = int(fn_args.train_steps)
    epochs, steps_per_epoch = epoch_plan(
        train_steps, int(config.get("steps_per_epoch") or 0) or None
    )
    logging.info("training %s %d steps: %d epochs of %d",
                 model.name, train_steps, epochs, steps_per_epoch)
    return model.fit(
        train_ds,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        validation_data=eval_ds,
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir), *callbacks],
        verbose=2,
    )
