"""Typed Trainer configs: one frozen dataclass per trainer family.

A :class:`~model_garden.pipelines.recipes.Recipe` holds one instance; the
Trainer receives it as ``custom_config`` (:meth:`TrainerConfig.to_custom_config`,
JSON-able) and its ``run_fn`` reads it back with :func:`from_custom_config`.
``--set KEY=VALUE`` goes through :meth:`TrainerConfig.override` when ``run``
or ``compile`` starts, so a typo or a bad value is one :class:`ConfigError`
that lists the valid keys before anything runs. Each default is written
here, once. In the spirit of TF Model Garden's
``official/core/config_definitions.py`` (typed dataclass configs overridden
by ``--params_override``), flat rather than nested.

Imports no TensorFlow (``model-garden list`` and the CLI stay instant).
"""

import dataclasses
import math
import typing
from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar

from model_garden import nets  # imports no TensorFlow either
from model_garden.trainers.strategies import STRATEGIES

T = TypeVar("T", bound="TrainerConfig")

MIXED_PRECISION = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """An unknown key or a bad value for a Trainer config (names the valid keys)."""


def _choices(*values: Any) -> Dict[str, Any]:
    return {"choices": values}


def _positive() -> Dict[str, Any]:
    return {"min": 1}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    """What every ``run_fn`` reads.

    Attributes:
      batch_size: global batch size (examples per step over all replicas).
      strategy: ``tf.distribute`` strategy name
        (:mod:`model_garden.trainers.strategies`).
      steps_per_epoch: steps per Keras epoch, the granularity of validation,
        TensorBoard and checkpoints; must divide ``train_steps``. ``0``: the
        divisor nearest to 10 epochs (:func:`model_garden.trainers.steps.epoch_plan`).
    """

    batch_size: int = dataclasses.field(default=32, metadata=_positive())
    strategy: str = dataclasses.field(default="auto", metadata=_choices(*STRATEGIES))
    steps_per_epoch: int = dataclasses.field(default=0, metadata={"min": 0})

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            converted = _convert(type(self), field.name, hints[field.name], value)
            if converted is not value:
                object.__setattr__(self, field.name, converted)
            choices = field.metadata.get("choices")
            if choices is not None and converted not in choices:
                raise ConfigError(f"{type(self).__name__}.{field.name}: {converted!r} is not one "
                                  f"of {list(choices)}")
            low = field.metadata.get("min")
            if low is not None and converted is not None and converted < low:
                raise ConfigError(f"{type(self).__name__}.{field.name}: {converted!r} must be "
                                  f">= {low}")

    @classmethod
    def keys(cls) -> Tuple[str, ...]:
        """The valid keys (field names), in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def override(self: T, overrides: Mapping[str, Any]) -> T:
        """A copy with ``overrides`` applied (``--set`` strings are converted to each field's type).

        Raises:
          ConfigError: an unknown key (listing the valid ones) or a value that is
            not of the field's type or not among its choices.
        """
        unknown = sorted(set(overrides) - set(self.keys()))
        if unknown:
            raise ConfigError(f"unknown {type(self).__name__} key(s) {unknown}; valid keys: "
                              f"{', '.join(self.keys())}")
        return dataclasses.replace(self, **dict(overrides))

    def check_runnable(self) -> None:
        """Checks what a run needs beyond valid fields (``ConfigError``); none here."""

    def to_custom_config(self) -> Dict[str, Any]:
        """The Trainer's ``custom_config``: every field, tuples as lists (JSON)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def from_custom_config(cls: Type[T], custom_config: Optional[Mapping[str, Any]]) -> T:
    """The ``cls`` instance a ``run_fn`` trains with, from ``fn_args.custom_config``.

    Raises:
      ConfigError: an unknown key, a missing required key or a bad value.
    """
    values = dict(custom_config or {})
    unknown = sorted(set(values) - set(cls.keys()))
    if unknown:
        raise ConfigError(f"custom_config has unknown {cls.__name__} key(s) {unknown}; valid "
                          f"keys: {', '.join(cls.keys())}")
    try:
        return cls(**values)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"custom_config for {cls.__name__}: {e}") from None


def _convert(cls, name: str, hint, value):
    """``value`` as type ``hint``; strings (from ``--set``) are parsed."""
    where = f"{cls.__name__}.{name}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union and type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(cls, name, inner, value)
    if origin in (tuple, Tuple):
        item = args[0]
        if isinstance(value, str):
            value = [v for v in value.strip("[]() ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {value!r} is not a list (give A,B,C)")
        return tuple(_convert(cls, name, item, v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ConfigError(f"{where}: {value!r} is not true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a whole number") from None
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a number")
        if isinstance(value, float):
            out = value
        else:
            try:
                out = float(str(value).strip())
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not a number") from None
        if not math.isfinite(out):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
        return out
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {value!r} is not a string")
        return value
    raise TypeError(f"{where}: unsupported field type {hint!r}")  # a bug in this module


# --- MNIST: tensorflow/models official/mnist ---------------------------------

#: Learning-rate schedules of :class:`MnistConfig`.
LR_SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MnistConfig(TrainerConfig):
    """The official MNIST CNN's Trainer (:mod:`model_garden.trainers.mnist`).

    Attributes:
      batch_size: 100 (official/r1/mnist ``--batch_size``).
      learning_rate: Adam's initial rate. The official model trains 40
        epochs of 60k images at 1e-4; the default recipe trains 15 epochs of
        an 8k hash split, where 1e-3 converges and 1e-4 does not (measured).
      lr_schedule: ``cosine`` (default): the rate decays from
        ``learning_rate`` to 0 over the Trainer's ``train_steps`` (SGDR,
        Loshchilov & Hutter 2017, without restarts), so the last epoch, the
        model that is exported, is not one step of a still-large rate away
        from a dip (at a constant 1e-3 the last epoch's accuracy swung by
        0.8 points between runs, and ``make demo`` missed its threshold in
        one run of three); ``constant``: the official model's constant rate.
        Chosen on a validation split of the training examples,
        ``benchmarks/mnist_lr_schedule.py``, never on the Evaluator's split.
    """

    batch_size: int = dataclasses.field(default=100, metadata=_positive())
    learning_rate: float = 1e-3
    lr_schedule: str = dataclasses.field(default="cosine", metadata=_choices(*LR_SCHEDULES))


# --- Census: tensorflow/models official/r1/wide_deep -------------------------

#: Learning rates of the canned estimators the official model uses, by
#: ``model_type``: (wide part FTRL, deep part Adagrad), the constants of
#: tensorflow_estimator ``canned/linear.py`` (``_LEARNING_RATE`` 0.2),
#: ``canned/dnn.py`` (0.05) and ``canned/dnn_linear_combined.py``
#: (``_LINEAR_LEARNING_RATE`` 0.005, ``_DNN_LEARNING_RATE`` 0.001). The FTRL
#: rate is capped at ``1/sqrt(#wide columns)`` as the estimators do
#: (:func:`model_garden.trainers.wide_deep.build_model`).
CENSUS_LEARNING_RATES: Mapping[str, Tuple[Optional[float], Optional[float]]] = {
    "wide": (0.2, None),
    "deep": (None, 0.05),
    "wide_deep": (0.005, 0.001),
}

#: How the census models reduce the per-example loss over a batch: ``sum``
#: (the TF1 canned estimators' default, ``loss_reduction=SUM``) or
#: ``sum_over_batch_size`` (the mean: Keras' default and the TF2 ``*V2``
#: estimators').
CENSUS_LOSS_REDUCTIONS = ("sum", "sum_over_batch_size")

#: The loss reduction of each ``model_type`` when
#: :attr:`WideDeepConfig.loss_reduction` is ``None``, chosen by validation
#: accuracy on a split of ``adult.data`` (4 of every 5 rows train, every 5th
#: validates; never ``adult.test``), 10 epochs, 3 seeds,
#: ``benchmarks/census_loss_reduction.py``: ``wide_deep`` 85.19% with
#: ``sum`` against 84.34% with the mean (the gain is the deep part's Adagrad
#: at 0.001: its gradients alone x40 give 85.10%, the wide FTRL's alone
#: 84.30%); ``wide`` 83.62% with the mean against 83.37%; ``deep`` 85.77%
#: against 85.82% (a tie within the seeds' 0.5-point spread; the mean kept,
#: its AUC 0.9158 against 0.9134).
CENSUS_DEFAULT_LOSS_REDUCTION: Mapping[str, str] = {
    "wide": "sum_over_batch_size",
    "deep": "sum_over_batch_size",
    "wide_deep": "sum",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class WideDeepConfig(TrainerConfig):
    """The census wide/deep Trainer (:mod:`model_garden.trainers.wide_deep`).

    Attributes:
      model_type: ``wide`` (linear), ``deep`` (DNN) or ``wide_deep`` (both).
      batch_size: 40 (official ``census_main.define_census_flags``).
      learning_rate: FTRL rate of the wide part (``wide``, ``wide_deep``) or
        the Adagrad rate (``deep``); ``None``: :data:`CENSUS_LEARNING_RATES`.
      dnn_learning_rate: Adagrad rate of the deep part of ``wide_deep``;
        ``None``: :data:`CENSUS_LEARNING_RATES`.
      loss_reduction: one of :data:`CENSUS_LOSS_REDUCTIONS`, the reduction of
        the training loss that every optimizer (FTRL and Adagrad) minimizes;
        ``None``: :data:`CENSUS_DEFAULT_LOSS_REDUCTION` (``sum`` for
        ``wide_deep``, the mean for ``wide`` and ``deep``). The official
        model (TensorFlow 1.x, ``official/r1/wide_deep/census_main.py``)
        builds the v1 ``tf.estimator.LinearClassifier`` / ``DNNClassifier`` /
        ``DNNLinearCombinedClassifier``, whose ``loss_reduction`` defaults to
        ``tf.compat.v1.losses.Reduction.SUM`` (tensorflow_estimator
        ``canned/linear.py``, ``canned/dnn.py``,
        ``canned/dnn_linear_combined.py``); ``sum_over_batch_size`` is the
        batch mean (Keras' default), whose gradients are ``batch_size``
        times smaller.
    """

    model_type: str = dataclasses.field(metadata=_choices(*CENSUS_LEARNING_RATES))
    batch_size: int = dataclasses.field(default=40, metadata=_positive())
    learning_rate: Optional[float] = None
    dnn_learning_rate: Optional[float] = None
    loss_reduction: Optional[str] = dataclasses.field(
        default=None, metadata=_choices(None, *CENSUS_LOSS_REDUCTIONS))


# --- Image classification: official/resnet, TF-Slim --------------------------


#: Optimizers of :class:`ImageClassifierConfig` (TF-Slim ``train_image_classifier.py``'s
#: ``--optimizer`` names).
OPTIMIZERS = ("momentum", "rmsprop")
#: Learning-rate schedules of :class:`ImageClassifierConfig`: official/resnet's
#: ``piecewise`` constant, Slim's ``exponential`` (staircase) and ``fixed``.
IMAGE_LR_SCHEDULES = ("piecewise", "exponential", "fixed")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageClassifierConfig(TrainerConfig):
    """The image-classification Trainer (:mod:`model_garden.trainers.image_classifier`).

    Defaults are official/resnet's CIFAR-10 hyperparameters
    (``cifar10_main.py``, ``resnet_run_loop.py``); :func:`slim_defaults` and
    :func:`official_imagenet_resnet` give the TF-Slim and ImageNet ResNet ones.

    Attributes:
      net: network name in :data:`model_garden.nets.NETS` (its preprocessing
        and default image size come with it).
      num_classes: outputs of the classifier (the dataset's classes, as the
        ExampleGen wrote them: ImageNet with ``labels_offset`` 1 has 1,000).
      train_examples: examples in one pass over the training data (the
        dataset's train split): sets the learning-rate schedule's steps.
      image_size: input height = width in pixels; ``0``: the network's
        ``default_image_size`` (MobileNet v1 was released at 224/192/160/128).
      batch_size: 128.
      optimizer: ``momentum`` (SGD with ``momentum``) or ``rmsprop``
        (``rmsprop_decay``, ``rmsprop_momentum``, ``opt_epsilon``, Slim's flags).
      base_learning_rate: the rate at a batch of ``lr_batch_denominator``,
        scaled linearly by ``batch_size / lr_batch_denominator`` (the
        official models' rule); ``lr_batch_denominator`` 0: not scaled
        (Slim's ``--learning_rate``).
      lr_batch_denominator: 128 (official/resnet CIFAR-10; 256 for ImageNet).
      lr_schedule: ``piecewise``: ``decay_rates[i]`` after
        ``boundary_epochs[i-1]`` data epochs (official/resnet);
        ``exponential``: times ``lr_decay_factor`` every ``epochs_per_decay``
        epochs, staircase (Slim's ``exponential_decay``); ``fixed``: constant.
      momentum: SGD momentum.
      rmsprop_decay, rmsprop_momentum, opt_epsilon: RMSProp's (Slim 0.9, 0.9, 1.0).
      weight_decay: L2 weight decay (official/resnet's, see the net's docstring).
      boundary_epochs: data epochs where the rate drops (``piecewise``).
      decay_rates: rate multipliers before the first and after each boundary.
      lr_decay_factor, epochs_per_decay: ``exponential`` (Slim 0.94, 2.0).
      aux_loss_weight: weight of the auxiliary logits' cross-entropy for the
        networks that have them (Slim ``train_image_classifier.py``: 0.4).
      checkpoint_path: initial weights: a TF-Slim ``.ckpt``, a SavedModel
        pushed by this project, or a Keras ``.h5`` weights file
        (:mod:`model_garden.trainers.initialize`); ``""``: none. Read once,
        when a run starts without checkpoints of its own.
      checkpoint_exclude_scopes: Slim scopes not restored from
        ``checkpoint_path`` (the logits when the class count differs).
      trainable_scopes: when given, only layers under these scopes train
        (Slim's ``--trainable_scopes``); the others keep the checkpoint's
        weights bit for bit (batch norm included, see
        :func:`model_garden.trainers.initialize.freeze_outside`).
      epochs_between_evals: validate every this many Keras epochs.
      mixed_precision: Keras dtype policy; ``auto``: ``mixed_bfloat16`` on TPU,
        ``mixed_float16`` with a GPU, else ``float32``.
    """

    net: str
    num_classes: int = dataclasses.field(metadata={"min": 2})
    train_examples: int = dataclasses.field(metadata=_positive())
    image_size: int = dataclasses.field(default=0, metadata={"min": 0})
    batch_size: int = dataclasses.field(default=128, metadata=_positive())
    optimizer: str = dataclasses.field(default="momentum", metadata=_choices(*OPTIMIZERS))
    base_learning_rate: float = 0.1
    lr_batch_denominator: int = dataclasses.field(default=128, metadata={"min": 0})
    lr_schedule: str = dataclasses.field(default="piecewise",
                                         metadata=_choices(*IMAGE_LR_SCHEDULES))
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_momentum: float = 0.9
    opt_epsilon: float = 1.0
    weight_decay: float = 2e-4
    boundary_epochs: Tuple[int, ...] = (91, 136, 182)
    decay_rates: Tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
    lr_decay_factor: float = 0.94
    epochs_per_decay: float = 2.0
    aux_loss_weight: float = 0.4
    checkpoint_path: str = ""
    checkpoint_exclude_scopes: Tuple[str, ...] = ()
    trainable_scopes: Tuple[str, ...] = ()
    epochs_between_evals: int = dataclasses.field(default=1, metadata=_positive())
    mixed_precision: str = dataclasses.field(default="auto", metadata=_choices(*MIXED_PRECISION))

    def __post_init__(self):
        super().__post_init__()
        if self.net not in nets.NETS:
            raise ConfigError(f"ImageClassifierConfig.net: unknown network {self.net!r}; "
                              f"known: {', '.join(sorted(nets.NETS))}")
        if len(self.decay_rates) != len(self.boundary_epochs) + 1:
            raise ConfigError(f"ImageClassifierConfig: decay_rates needs one more entry than "
                              f"boundary_epochs ({len(self.boundary_epochs)}), got "
                              f"{len(self.decay_rates)}")
        if self.epochs_per_decay <= 0:
            raise ConfigError(f"ImageClassifierConfig.epochs_per_decay: {self.epochs_per_decay} "
                              "must be > 0")

    def check_runnable(self) -> None:
        """What a run needs beyond valid fields (called when ``run``/``compile`` start).

        Raises:
          ConfigError: ``trainable_scopes`` without a ``checkpoint_path`` (the
            frozen layers would keep their random initial weights); the
            message names the released TF-Slim checkpoint of the network.
        """
        if self.trainable_scopes and not self.checkpoint_path:
            from model_garden.nets import released

            hint = released.hint(self.net)
            raise ConfigError(
                f"trainable_scopes {list(self.trainable_scopes)} train only those layers, so the "
                f"others need weights: --set checkpoint_path=PATH ({hint}), or "
                "--set trainable_scopes= to train every layer")

    @property
    def input_size(self) -> int:
        """The network's input side in pixels (``image_size`` or the net's default)."""
        return self.image_size or nets.get_net(self.net).default_image_size


def slim_defaults(**fields) -> ImageClassifierConfig:
    """TF-Slim ``train_image_classifier.py``'s defaults, with ``fields`` set.

    RMSProp (decay 0.9, momentum 0.9, epsilon 1.0), learning rate 0.01 at
    batch 32 (not scaled), exponential decay by 0.94 every 2 epochs
    (staircase), weight decay 4e-5 (the Inception and MobileNet arg scopes),
    auxiliary-logits loss weight 0.4.
    """
    values = dict(batch_size=32, optimizer="rmsprop", base_learning_rate=0.01,
                  lr_batch_denominator=0, lr_schedule="exponential", lr_decay_factor=0.94,
                  epochs_per_decay=2.0, rmsprop_decay=0.9, rmsprop_momentum=0.9,
                  opt_epsilon=1.0, weight_decay=4e-5, aux_loss_weight=0.4)
    values.update(fields)
    return ImageClassifierConfig(**values)


def official_imagenet_resnet(**fields) -> ImageClassifierConfig:
    """tensorflow/models ``official/resnet/imagenet_main.py``'s schedule, with ``fields`` set.

    SGD with momentum 0.9, learning rate 0.1 x batch/256 (``batch_denom``
    256), x0.1 at epochs 30, 60, 80 and 90 (``boundary_epochs`` [30, 60,
    80, 90], ``decay_rates`` [1, 0.1, 0.01, 0.001, 1e-4]), weight decay
    1e-4, batch 256 (8 GPUs x 32), 90 epochs (the recipe's steps).
    """
    values = dict(batch_size=256, optimizer="momentum", momentum=0.9, base_learning_rate=0.1,
                  lr_batch_denominator=256, lr_schedule="piecewise",
                  boundary_epochs=(30, 60, 80, 90), decay_rates=(1.0, 0.1, 0.01, 0.001, 1e-4),
                  weight_decay=1e-4)
    values.update(fields)
    return ImageClassifierConfig(**values)
