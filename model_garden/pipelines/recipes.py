"""The recipe registry: one name -> one complete pipeline configuration.

Like TF-Slim's ``nets_factory`` (one name, one builder), every recipe is data:
which dataset feeds it, which curated schema and ``preprocessing_fn`` it uses,
which ``run_fn`` trains it, its hyperparameters, how the Evaluator judges it
and where the Pusher puts it. Adding a recipe is one :class:`Recipe` entry in
:data:`RECIPES` plus its modules. Nothing here imports TensorFlow, so
``model-garden list`` is instant.
"""

import dataclasses
import math
from typing import Any, Mapping, Sequence, Tuple

from model_garden import nets
from model_garden.datasets import get_dataset
from model_garden.registry import Registry
from model_garden.trainers import configs


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """How the Evaluator judges a model (TFMA ``EvalConfig`` ingredients).

    Attributes:
      label_key: the raw feature holding the label.
      prediction_key: the serving output TFMA reads predictions from
        (``None`` when the model has a single output).
      metrics: TFMA / Keras metric class names, e.g.
        ``"SparseCategoricalAccuracy"``.
      threshold_metric: the metric the blessing is gated on (one of
        ``metrics``); it must be at least ``threshold`` and must not fall
        below the latest blessed model's value.
      threshold: default lower bound of ``threshold_metric`` (overridable by
        ``--threshold``).
      slices: feature-key tuples to slice metrics by, besides the overall
        slice.
      metric_kwargs: optional constructor arguments by metric class name,
        e.g. ``{"SparseTopKCategoricalAccuracy": {"k": 5}}``.
    """

    label_key: str
    prediction_key: str
    metrics: Sequence[str]
    threshold_metric: str
    threshold: float
    slices: Sequence[Tuple[str, ...]] = ()
    metric_kwargs: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=dict
    )


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One pipeline: dataset -> schema -> Transform -> Trainer -> Evaluator.

    Attributes:
      name: registry key, e.g. ``"mnist"``; also the pushed model's name.
      description: one line for ``model-garden list``.
      dataset: key in :data:`model_garden.datasets.DATASETS`.
      schema_file: curated schema, a file name in ``model_garden/schemas/``.
      preprocessing_fn: dotted import path of the Transform
        ``preprocessing_fn``.
      run_fn: dotted import path of the Trainer ``run_fn``.
      train_steps: default Trainer training steps.
      eval_steps: default Trainer evaluation steps.
      config: the Trainer's typed config
        (:mod:`model_garden.trainers.configs`), passed as its
        ``custom_config``; ``--set KEY=VALUE`` overrides fields
        (:meth:`~model_garden.trainers.configs.TrainerConfig.override`).
      eval: the Evaluator configuration.
      materialize: whether Transform writes transformed examples (``False``
        for large images: the Trainer then applies the transform graph).
    """

    name: str
    description: str
    dataset: str
    schema_file: str
    preprocessing_fn: str
    run_fn: str
    train_steps: int
    eval_steps: int
    config: configs.TrainerConfig
    eval: EvalSpec
    materialize: bool = True


def _check(recipe: Recipe) -> None:
    if recipe.eval.threshold_metric not in recipe.eval.metrics:
        raise ValueError(
            f"recipe {recipe.name!r}: threshold metric "
            f"{recipe.eval.threshold_metric!r} is not among {list(recipe.eval.metrics)}"
        )


#: name -> :class:`Recipe`.
RECIPES: Registry[Recipe] = Registry("recipe", _check)
#: Adds a :class:`Recipe` (``ValueError``: a second one of the same name, or a
#: threshold metric that is not one of its metrics).
register = RECIPES.register
#: The registered recipe ``name`` (``KeyError`` naming the known ones).
get_recipe = RECIPES.lookup


def epochs_of(dataset: str, epochs: int, batch_size: int) -> int:
    """Steps of ``epochs`` passes over ``dataset``'s official train split at ``batch_size``:
    ``ceil(epochs * examples / batch_size)`` (the examples of all epochs in full batches)."""
    return math.ceil(epochs * get_dataset(dataset).split_sizes["train"] / batch_size)


# --- MNIST: tensorflow/models official/mnist (r1/mnist/mnist.py) -------------
_MNIST = configs.MnistConfig()
register(
    Recipe(
        name="mnist",
        description="official/mnist CNN (2 conv + 1024 dense) on MNIST digits",
        dataset="mnist",
        schema_file="mnist.pbtxt",
        preprocessing_fn="model_garden.schemas.mnist.preprocessing_fn",
        run_fn="model_garden.trainers.mnist.run_fn",
        # 15 epochs of the 80/20 hash split of the 10k test set (8,000 digits)
        # at batch 100, what `make demo` trains on (10 epochs measured
        # 98.3-98.4% eval accuracy); 2 epochs of the full 60k training set.
        train_steps=15 * 8000 // _MNIST.batch_size,
        eval_steps=20,
        config=_MNIST,
        eval=EvalSpec(
            label_key="image/class/label",
            prediction_key="probabilities",
            # The plot: the run report's confusion matrix (html_report).
            metrics=("SparseCategoricalAccuracy", "MultiClassConfusionMatrixPlot"),
            threshold_metric="SparseCategoricalAccuracy",
            # What the full 60k training set reaches (official/mnist: 99.2%);
            # the 8k digits of a hash split of the 10k test set reach ~98.5%.
            threshold=0.99,
        ),
    )
)


# --- Census income: tensorflow/models official/r1/wide_deep (census_main.py) --
# README: "The final accuracy should be over 83% with any of the three model types."
for _kind in configs.CENSUS_LEARNING_RATES:
    _census = configs.WideDeepConfig(model_type=_kind)
    register(
        Recipe(
            name=f"census_{_kind}",
            description=f"official/r1/wide_deep {_kind} model on UCI Adult (census income)",
            dataset="census",
            schema_file="census.pbtxt",
            preprocessing_fn="model_garden.schemas.census.preprocessing_fn",
            run_fn="model_garden.trainers.wide_deep.run_fn",
            # 10 epochs of adult.data at the official batch 40 (the official
            # 40 epochs gained nothing measurable for `wide`).
            train_steps=epochs_of("census", 10, _census.batch_size),
            eval_steps=get_dataset("census").split_sizes["test"] // _census.batch_size,
            config=_census,
            eval=EvalSpec(
                label_key="income_bracket",
                prediction_key="probabilities",
                # The plots: the run report's calibration and ROC curves
                # (ROC from ConfusionMatrixPlot's per-threshold counts).
                metrics=("BinaryAccuracy", "AUC", "Precision", "Recall",
                         "Calibration", "CalibrationPlot", "ConfusionMatrixPlot"),
                threshold_metric="BinaryAccuracy",
                threshold=0.83,
                slices=(("gender",), ("race",)),
            ),
        )
    )

# --- CIFAR-10 ResNet: tensorflow/models official/resnet (cifar10_main.py) ----
# He et al. 2015 (arXiv:1512.03385) Table 6, CIFAR-10 test error (%).
_CIFAR10_RESNET_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43}
_CIFAR10 = get_dataset("cifar10")
for _depth, _error in _CIFAR10_RESNET_ERROR.items():
    _resnet = configs.ImageClassifierConfig(
        net=f"resnet_v1_{_depth}_cifar", num_classes=_CIFAR10.num_classes,
        train_examples=_CIFAR10.split_sizes["train"])
    register(
        Recipe(
            name=f"cifar10_resnet{_depth}",
            description=f"official/resnet ResNet-{_depth} v1 (--set net=resnet_v2_{_depth}_cifar: "
            "pre-activation) on CIFAR-10",
            dataset="cifar10",
            schema_file="cifar10.pbtxt",
            preprocessing_fn="model_garden.schemas.cifar10.preprocessing_fn",
            run_fn="model_garden.trainers.image_classifier.run_fn",
            # official/resnet: 182 epochs at batch 128 (71,094 steps).
            train_steps=epochs_of("cifar10", 182, _resnet.batch_size),
            eval_steps=_CIFAR10.split_sizes["test"] // _resnet.batch_size,
            config=_resnet,
            eval=EvalSpec(
                label_key="image/class/label",
                prediction_key="probabilities",
                metrics=("SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
                         "MultiClassConfusionMatrixPlot"),
                threshold_metric="SparseCategoricalAccuracy",
                # the paper's accuracy less one point (seed-to-seed variance)
                threshold=round(1 - _error / 100 - 0.01, 4),
                metric_kwargs={"SparseTopKCategoricalAccuracy": {"k": 5}},
            ),
            # Images: no decoded copy of the dataset; the Trainer applies the
            # transform graph to raw examples.
            materialize=False,
        )
    )


# --- TF-Slim's zoo on its datasets: every (dataset, network) pair ------------
#: The TF-Slim image datasets that get a recipe per ImageNet network.
SLIM_DATASETS = ("flowers", "imagenet")
#: Flowers: Slim's fine-tuning budget, 1,000 steps at batch 32
#: (research/slim/scripts/finetune_inception_v3_on_flowers.sh).
FLOWERS_STEPS = 1000
#: ImageNet: official/resnet's 90 epochs (imagenet_main.py ``train_epochs``);
#: Slim's train_image_classifier.py trains until stopped, so its nets get the same.
IMAGENET_EPOCHS = 90
#: Flowers' threshold: Slim's README publishes no flowers accuracy; a
#: fine-tuned ImageNet network that cannot reach this has not learned.
FLOWERS_THRESHOLD = 0.85


def slim_config(dataset: str, net: str, **fields) -> configs.ImageClassifierConfig:
    """The Trainer config of recipe ``<dataset>_<net>``: the family's training defaults.

    ResNets on ImageNet: official/resnet's schedule
    (:func:`~model_garden.trainers.configs.official_imagenet_resnet`);
    everything else: Slim's ``train_image_classifier.py`` defaults
    (:func:`~model_garden.trainers.configs.slim_defaults`; VGG with
    ``vgg_arg_scope``'s weight decay 5e-4). On flowers, the logits (and
    auxiliary logits) are ``checkpoint_exclude_scopes``: an ImageNet
    checkpoint's 1,001 classes are not flowers' 5.
    """
    from model_garden.nets import released

    data = get_dataset(dataset)
    common = dict(net=net, num_classes=data.num_classes, train_examples=data.split_sizes["train"])
    if dataset == "flowers":
        common.update(checkpoint_exclude_scopes=released.RELEASED[net].logits_scopes,
                      lr_schedule="fixed")
    common.update(fields)
    if net.startswith("resnet") and dataset == "imagenet":
        return configs.official_imagenet_resnet(**common)
    if net.startswith("vgg"):
        common.setdefault("weight_decay", 5e-4)
    return configs.slim_defaults(**common)


def _slim_recipe(dataset: str, net: str) -> Recipe:
    from model_garden.nets import released

    spec = nets.get_net(net)
    data = get_dataset(dataset)
    published = released.RELEASED[net]
    fields = {}
    if dataset == "flowers" and net == "inception_v3":
        # Slim's README "Fine-tuning a model from an existing checkpoint": the
        # released checkpoint, logits and aux logits excluded and the only ones trained.
        fields["trainable_scopes"] = published.logits_scopes
    config = slim_config(dataset, net, **fields)
    if dataset == "imagenet":
        train_steps = epochs_of(dataset, IMAGENET_EPOCHS, config.batch_size)
        # The published top-1 less one point (seed-to-seed variance).
        threshold = round(published.top1 / 100 - 0.01, 4)
    else:
        train_steps, threshold = FLOWERS_STEPS, FLOWERS_THRESHOLD
    ckpt = published.ckpt or "no released checkpoint"
    how = (f"fine-tunes the logits of Slim's {ckpt} (--set checkpoint_path=...)" if fields
           else f"all layers, or from Slim's {ckpt} by --set checkpoint_path=..."
           if published.ckpt else "all layers")
    family = ("official/resnet ImageNet schedule" if dataset == "imagenet"
              and net.startswith("resnet") else "Slim's training defaults")
    return Recipe(
        name=f"{dataset}_{net}",
        description=f"TF-Slim {net} ({spec.default_image_size} px) on {dataset}, {family}; {how}",
        dataset=dataset,
        schema_file=f"{dataset}.pbtxt",
        preprocessing_fn="model_garden.schemas.slim_images.preprocessing_fn",
        run_fn="model_garden.trainers.image_classifier.run_fn",
        train_steps=train_steps,
        eval_steps=max(1, data.split_sizes["test"] // config.batch_size),
        config=config,
        eval=EvalSpec(
            label_key="image/class/label",
            prediction_key="probabilities",
            metrics=("SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
                     "MultiClassConfusionMatrixPlot"),
            threshold_metric="SparseCategoricalAccuracy",
            threshold=threshold,
            # top-1 and top-5 per class as well as overall
            slices=(("image/class/label",),),
            metric_kwargs={"SparseTopKCategoricalAccuracy": {"k": 5}},
        ),
        materialize=False,
    )


def _register_slim_recipes() -> None:
    from model_garden.nets import released

    for dataset in SLIM_DATASETS:
        for net in sorted(nets.NETS):
            if net in released.RELEASED:  # Slim's ImageNet networks (not the CIFAR ResNets)
                register(_slim_recipe(dataset, net))


_register_slim_recipes()
