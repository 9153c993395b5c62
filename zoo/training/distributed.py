"""Multi-worker training with ``tf.distribute.MultiWorkerMirroredStrategy`` (TensorFlow backend).

Keras 3's ``model.fit`` does not run under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585: its
symbolic build and its metric reduction both receive per-replica values they cannot handle). The
strategy itself works, and so do Keras models, optimizers and callbacks, so :class:`DistributedFit`
replaces only ``fit``'s loop: a ``tf.function`` train step run with ``strategy.run`` on every replica
(the Keras optimizer all-reduces the gradients), the loss averaged over the *global* batch (the last,
partial batch included, as ``fit`` does), and the ordinary Keras callbacks driven through a
``CallbackList`` — so EarlyStopping, ReduceLROnPlateau, CSVLogger, TensorBoard and BackupAndRestore
behave as they do under ``fit``.

Validation runs on every worker over the whole validation set with the (identical) local weights, so
all workers see the same ``val_loss`` and take the same early-stopping and learning-rate decisions —
no worker can stop while another waits in a collective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class DistributedFit:
    """``model.fit`` for a compiled Keras model whose variables were created under ``strategy.scope()``.

    The model must output class probabilities and be compiled (its optimizer is used; its loss is the
    categorical cross-entropy of the protocol).
    """

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy) -> None:
        if getattr(model, "optimizer", None) is None:
            raise ValueError("DistributedFit: compile the model first (its optimizer is used)")
        self.model = model
        self.strategy = strategy
        self._loss = keras.losses.CategoricalCrossentropy(reduction=None)
        self._train_step = tf.function(self._distributed_train_step)
        self._eval_step = tf.function(self._local_eval_step)

    # ------------------------------------------------------------------------------------ steps
    def _batch_sums(self, y: tf.Tensor, probabilities: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Summed loss, number of correct predictions and number of examples of one batch."""
        losses = self._loss(y, probabilities)
        correct = tf.equal(tf.argmax(probabilities, axis=-1), tf.argmax(y, axis=-1))
        return (
            tf.reduce_sum(losses),
            tf.reduce_sum(tf.cast(correct, tf.float32)),
            tf.cast(tf.shape(y)[0], tf.float32),
        )

    def _replica_train_step(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        context = tf.distribute.get_replica_context()
        global_count = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.shape(y)[0], tf.float32))
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            probabilities = self.model(x, training=True)
            loss_sum, correct, count = self._batch_sums(y, probabilities)
            # The global batch mean: gradients are summed over replicas by the optimizer.
            loss = loss_sum / global_count
            if self.model.losses:
                loss += tf.add_n(self.model.losses) / self.strategy.num_replicas_in_sync
        gradients = tape.gradient(loss, variables)
        self.model.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss_sum, correct, count

    def _distributed_train_step(self, batch: Any) -> tuple[tf.Tensor, ...]:
        per_replica = self.strategy.run(self._replica_train_step, args=batch)
        return tuple(self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per_replica)

    def _local_eval_step(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return self._batch_sums(y, self.model(x, training=False))

    # ------------------------------------------------------------------------------------- loops
    def evaluate(self, dataset: tf.data.Dataset) -> dict[str, float]:
        """Loss and accuracy over a whole (undistributed) dataset, on this worker alone."""
        totals = np.zeros(3)
        for x, y in dataset:
            totals += [float(v) for v in self._eval_step(x, y)]
        return {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]}

    def fit(
        self,
        train: tf.data.Dataset,
        *,
        validation_data: tf.data.Dataset,
        epochs: int,
        steps_per_epoch: int,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: int = 2,
    ) -> keras.callbacks.History:
        """Train like ``model.fit(train, validation_data=..., epochs=..., steps_per_epoch=...)``.

        ``train`` yields global batches (``steps_per_epoch`` per epoch, epochs laid out one after the
        other); it is sharded over the workers by ``tf.distribute``. A ``BackupAndRestore`` callback
        that restored a backup sets the first epoch, as under ``fit``.
        """
        model = self.model
        history = keras.callbacks.History()
        callback_list = keras.callbacks.CallbackList(
            [*callbacks, history],
            add_progbar=verbose != 0,
            model=model,
            verbose=verbose,
            epochs=epochs,
            steps=steps_per_epoch,
        )
        model.stop_training = False
        callback_list.on_train_begin()
        initial_epoch = int(getattr(model, "_initial_epoch", None) or 0)
        iterator = iter(self.strategy.experimental_distribute_dataset(train))
        logs: dict[str, float] = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            totals = np.zeros(3)
            for step in range(steps_per_epoch):
                callback_list.on_train_batch_begin(step)
                totals += [float(v) for v in self._train_step(next(iterator))]
                logs = {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]}
                callback_list.on_train_batch_end(step, logs)
            validation = self.evaluate(validation_data)
            logs = {**logs, **{f"val_{key}": value for key, value in validation.items()}}
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
        return history
