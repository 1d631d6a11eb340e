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
    """

    model_type: str = dataclasses.field(metadata=_choices(*CENSUS_LEARNING_RATES))
    batch_size: int = dataclasses.field(default=40, metadata=_positive())
    learning_rate: Optional[float] = None
    dnn_learning_rate: Optional[float] = None


# --- Image classification: official/resnet, TF-Slim --------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageClassifierConfig(TrainerConfig):
    """The image-classification Trainer (:mod:`model_garden.trainers.image_classifier`).

    Defaults are official/resnet's CIFAR-10 hyperparameters
    (``cifar10_main.py``, ``resnet_run_loop.py``).

    Attributes:
      net: network name in :data:`model_garden.nets.NETS` (its preprocessing
        and default image size come with it).
      num_classes: outputs of the classifier (the dataset's classes).
      train_examples: examples in one pass over the training data (the
        dataset's train split): sets the learning-rate schedule's steps.
      batch_size: 128.
      base_learning_rate: SGD rate for batch 128, scaled by ``batch_size / 128``.
      momentum: SGD momentum.
      weight_decay: L2 weight decay (official/resnet's, see the net's docstring).
      boundary_epochs: data epochs where the rate drops.
      decay_rates: rate multipliers before the first and after each boundary.
      epochs_between_evals: validate every this many Keras epochs.
      mixed_precision: Keras dtype policy; ``auto``: ``mixed_bfloat16`` on TPU,
        ``mixed_float16`` with a GPU, else ``float32``.
    """

    net: str
    num_classes: int = dataclasses.field(metadata={"min": 2})
    train_examples: int = dataclasses.field(metadata=_positive())
    batch_size: int = dataclasses.field(default=128, metadata=_positive())
    base_learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    boundary_epochs: Tuple[int, ...] = (91, 136, 182)
    decay_rates: Tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
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
