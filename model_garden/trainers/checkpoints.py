"""Epoch checkpoints for Keras ``run_fn``s: save every epoch, resume after a kill.

A Trainer that dies (pod evicted, node preempted, OOM-killed) and is retried
by the orchestrator within the same pipeline run reuses its execution, hence
its ``model_run_dir`` (TFX's launcher reuses an active execution); with
:class:`EpochCheckpoint` writing there, the retry continues from the last
finished epoch instead of from scratch.
"""

import logging
from typing import Optional

import tensorflow as tf


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Checkpoints model, optimizer and epoch at every epoch end; resumes.

    ``tf.train.CheckpointManager`` in ``directory`` (keeps the last 2), so a
    Trainer killed mid-run restarts from the last finished epoch with its
    weights, momentum slots, step counter (hence learning rate) intact.
    Works under every strategy of :mod:`model_garden.trainers.strategies`
    (Keras' ``BackupAndRestore`` refuses ``OneDeviceStrategy``).

    Args:
      directory: where the chief reads and writes checkpoints.
      model: the compiled model; call ``model.optimizer.build(
        model.trainable_variables)`` before :meth:`restore` so the momentum
        slots exist and are restored.
      write_directory: where this worker writes (non-chief workers of a
        multi-worker strategy write to a scratch folder); default
        ``directory``.
    """

    def __init__(self, directory: str, model, write_directory: Optional[str] = None):
        super().__init__()
        self.directory = directory
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self._checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, epoch=self.epoch
        )
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, write_directory or directory, max_to_keep=2
        )

    def restore(self) -> int:
        """Restores the latest checkpoint in ``directory``; returns its epoch (0: none)."""
        path = tf.train.latest_checkpoint(self.directory)
        if not path:
            return 0
        self._checkpoint.restore(path).assert_existing_objects_matched()
        epoch = int(self.epoch.numpy())
        logging.info("resuming from %s at epoch %d", path, epoch)
        return epoch

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self._manager.save(checkpoint_number=epoch + 1)


def is_chief(strategy) -> bool:
    """Whether this worker writes the run's outputs (always, without a cluster).

    The chief is task ``chief``, or ``worker`` 0 when the cluster has no
    chief (``TF_CONFIG`` of a TFJob; a TPU's host).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
