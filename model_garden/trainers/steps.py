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


def fit(model, train_ds, eval_ds, fn_args, config, callbacks=(), initial_epoch: int = 0,
        validation_freq: int = 1):
    """Trains ``model`` for exactly ``fn_args.train_steps`` steps (Keras ``fit``).

    Validates on ``fn_args.eval_steps`` batches of ``eval_ds`` after every
    ``validation_freq``-th epoch of :func:`epoch_plan` (``config.steps_per_epoch``
    steps per epoch if set) and writes TensorBoard logs to
    ``fn_args.model_run_dir`` (Keras writes a non-chief worker's logs to a
    temporary folder of its own and removes it).

    Args:
      model: a compiled Keras model.
      train_ds, eval_ds: ``tf.data`` datasets of ``(features, label)`` batches;
        ``train_ds`` repeats forever.
      fn_args: the Trainer's ``FnArgs`` (``train_steps``, ``eval_steps``,
        ``model_run_dir``).
      config: a :class:`model_garden.trainers.configs.TrainerConfig`.
      callbacks: extra Keras callbacks.
      initial_epoch: the epoch to resume from (a restored checkpoint's);
        epochs before it are not trained again.
      validation_freq: validate every this many epochs (and after the last).

    Returns:
      The Keras ``History``.

    Raises:
      ValueError: see :func:`epoch_plan`.
    """
    import logging

    import tensorflow as tf

    train_steps = int(fn_args.train_steps)
    epochs, steps_per_epoch = epoch_plan(train_steps, config.steps_per_epoch or None)
    logging.info("training %s %d steps: %d epochs of %d, from epoch %d",
                 model.name, train_steps, epochs, steps_per_epoch, initial_epoch)
    validate_at = sorted({*range(validation_freq, epochs + 1, validation_freq), epochs})
    return model.fit(
        train_ds,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=eval_ds,
        validation_steps=fn_args.eval_steps,
        validation_freq=validate_at,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir), *callbacks],
        verbose=2,
    )
