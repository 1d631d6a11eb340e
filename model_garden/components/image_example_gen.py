"""The image ExampleGen of TF-Slim's datasets: flowers and ImageNet folders -> sharded TFRecords.

A ``FileBasedExampleGen`` with its own Beam executor (the custom-ExampleGen
recipe of the TFX guide), for the layouts of
:mod:`model_garden.datasets.image_layouts`: one folder per class
(``flower_photos/<class>/*.jpg``, ImageNet ``train/n01440764/*.JPEG``) or a
folder of images plus a label file (ImageNet validation, our sample).

What it writes, as TF-Slim's ``download_and_convert_flowers.py`` and
``build_imagenet_data.py`` do:

* one ``tf.train.Example`` per image with Slim's keys
  (:mod:`model_garden.components.image_example`): ``image/encoded``,
  ``image/format``, ``image/class/label``, ``image/class/text``,
  ``image/height``, ``image/width`` (ImageNet also ``image/class/synset``);
  images that are not a 3-channel JPEG or an RGB ``.png`` (a PNG inside a
  ``.JPEG``, CMYK, grayscale) are re-encoded to RGB JPEG
  (:mod:`model_garden.components.image_normalize`);
* a fixed number of shards per split, ``Split-<split>/data_tfrecord-
  SSSSS-of-NNNNN.gz`` (TFX's file name and GZIP format; Slim's shard counts
  by default: flowers 5 and 5, ImageNet 1,024 train and 128 validation),
  the images of a split shuffled with a fixed seed (Slim: ``random.seed``)
  and dealt to the shards in turn;
* ``labels.txt`` (``<label>:<name>``, Slim's ``write_label_file``) and
  ``label_names.txt`` (line ``i`` = the name of label ``i``) beside the
  splits, and the custom properties ``label_names`` (JSON list),
  ``images_written``, ``images_reencoded``, ``images_skipped`` and
  ``conversion_seconds`` (first shard started to last shard written).

An undecodable or truncated file fails the run with an error naming it, or,
with ``skip_bad_images``, is left out, listed in ``skipped_images.txt``
(``<path>: <reason>``) and counted (Beam counter ``images_skipped`` and the
``images_skipped`` property): never silently.

Memory stays flat as the dataset grows: the driver lists paths (and only
paths) into one manifest file per shard; each Beam worker streams its
shards' images one at a time into a temporary file that is renamed into
place when the shard is complete. No Beam shuffle ever carries image bytes.
Shards are spread over the workers longest-first (LPT), so a split's few
large shards do not end up on one worker.

Splits: ``official`` keeps the dataset's train/validation folders (ImageNet);
``hash`` splits what is present by a hash of each image's path relative to
the dataset folder (stable when files are added), into the ``SplitConfig``
buckets.
"""

import dataclasses
import hashlib
import json
import logging
import os
import random
from typing import Dict, List, Optional, Sequence, Tuple

import apache_beam as beam

from model_garden.components.file_example_gen import (
    OPTIONS_KEY, SpanExampleGenExecutor, input_window, make_file_example_gen, stamp_window)
from model_garden.components.image_shards import (
    FILE_NAME, ShardTask, assign_slots, write_json, write_slot)
from model_garden.datasets import image_layouts

LABELS_FILE = "labels.txt"
LABEL_NAMES_FILE = "label_names.txt"
SKIPPED_FILE = "skipped_images.txt"
_WORK_DIR = ".image_example_gen"

#: Default (train, test) shard counts: ``download_and_convert_flowers.py``
#: ``_NUM_SHARDS = 5``; ``build_imagenet_data.py`` ``--train_shards=1024``,
#: ``--validation_shards=128``.
DEFAULT_SHARDS = {"flowers": (5, 5), "imagenet": (1024, 128)}
#: ``download_and_convert_flowers.py`` ``_RANDOM_SEED = 0``.
SEED = 0


class ImageExampleGenError(ValueError):
    """Bad options or data for the image ExampleGen; names the folder or file."""


@dataclasses.dataclass(frozen=True)
class ImageGenOptions:
    """The ``example_gen_options`` of the image ExampleGen.

    Attributes:
      dataset: a key of :data:`model_garden.datasets.image_layouts.LAYOUTS`.
      train_shards: shards of ``train`` (``0``: the dataset's default).
      test_shards: shards of ``test`` (``0``: the dataset's default).
      skip_bad_images: skip (and count) undecodable files instead of failing.
      labels_offset: ImageNet: 0 keeps label 0 for the background class
        (1,001 labels); 1 gives the 1,000-label form.
      seed: the shuffle seed.
    """

    dataset: str
    train_shards: int = 0
    test_shards: int = 0
    skip_bad_images: bool = False
    labels_offset: int = 0
    seed: int = SEED

    def __post_init__(self):
        if self.dataset not in image_layouts.LAYOUTS:
            raise ImageExampleGenError(f"no image layout for dataset {self.dataset!r}: "
                                       f"one of {sorted(image_layouts.LAYOUTS)}")
        for name in ("train_shards", "test_shards"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ImageExampleGenError(f"{name} must be a whole number >= 1 (0: the "
                                           f"default), not {value!r}")
        if self.labels_offset not in (0, 1):
            raise ImageExampleGenError(f"labels_offset must be 0 or 1, not {self.labels_offset!r}")

    def shards(self, split: str) -> int:
        """The shard count of ``split`` (``train``; anything else counts as ``test``)."""
        train, test = DEFAULT_SHARDS[self.dataset]
        if split == "train":
            return self.train_shards or train
        return self.test_shards or test

    def to_json(self) -> str:
        """The execution property (key-sorted JSON)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: Optional[str]) -> "ImageGenOptions":
        """Inverse of :meth:`to_json`.

        Raises:
          ImageExampleGenError: missing, not JSON, or bad values.
        """
        try:
            return cls(**json.loads(text or ""))
        except (TypeError, ValueError) as e:
            if isinstance(e, ImageExampleGenError):
                raise
            raise ImageExampleGenError(f"bad {OPTIONS_KEY} {text!r}: {e}") from None


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def hash_bucket(relpath: str, total: int) -> int:
    """The bucket (``0 .. total-1``) of an image by its path relative to the dataset folder."""
    digest = hashlib.sha256(relpath.replace(os.sep, "/").encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def _no_official_split(folder: str, dataset: str) -> ImageExampleGenError:
    return ImageExampleGenError(
        f"{folder}: {dataset} here has no official train/test split (TF-Slim draws the "
        "flowers' 350 validation photos at random): use --split hash (or hash:TRAIN/TEST)")


def split_images(folders: Sequence[str], options: ImageGenOptions, input_config,
                 output_config) -> Tuple[image_layouts.DatasetLayout, Dict[str, list]]:
    """Lists the images of every span folder and assigns each to an output split.

    Returns:
      ``(layout of the newest folder, {split: [LabelledImage, ...]})``, each
      split's images shuffled with ``options.seed``.

    Raises:
      ImageExampleGenError: spans with different classes, an official split
        of a dataset without one, or a split without images.
      image_layouts.LayoutError, imagenet.ImageNetFormatError: bad folders
        or label files (named).
    """
    layouts = [image_layouts.find_layout(options.dataset, f, options.labels_offset)
               for f in folders]
    newest = layouts[-1]
    for folder, layout in zip(folders, layouts):
        if layout.label_names != newest.label_names:
            raise ImageExampleGenError(f"{folder} has other classes than {folders[-1]}: every "
                                       "span must hold the same classes")
    out: Dict[str, list] = {}
    hash_splits = list(output_config.split_config.splits)
    if hash_splits:
        bounds, total = [], 0
        for split in hash_splits:
            total += split.hash_buckets
            bounds.append((total, split.name))
        out = {s.name: [] for s in hash_splits}
        for layout in layouts:
            for image in layout.images():
                bucket = hash_bucket(image.relpath, total)
                out[next(name for bound, name in bounds if bucket < bound)].append(image)
    else:
        for layout, folder in zip(layouts, folders):
            if not layout.has_official_split():
                raise _no_official_split(folder, options.dataset)
        for split in input_config.splits:
            out[split.name] = [i for layout in layouts for i in layout.images(split.name)]
    for name, images in out.items():
        if not images:
            raise ImageExampleGenError(f"{', '.join(folders)}: no images for split {name!r}")
        random.Random(options.seed).shuffle(images)
    return newest, out


def plan_shards(split_uris: Dict[str, str], images: Dict[str, list], options: ImageGenOptions,
                work_dir: str) -> List[ShardTask]:
    """Writes one manifest per shard under ``work_dir``; the images are dealt in turn.

    A split with fewer images than shards gets one shard per image.
    """
    gfile = _gfile()
    gfile.makedirs(work_dir)
    tasks = []
    for split, split_images_ in images.items():
        count = min(options.shards(split), len(split_images_))
        if count < options.shards(split):
            logging.info("%s: %d images, so %d shards instead of %d", split, len(split_images_),
                         count, options.shards(split))
        gfile.makedirs(split_uris[split])
        for index in range(count):
            part = split_images_[index::count]
            name = f"{FILE_NAME}-{index:05d}-of-{count:05d}.gz"
            manifest = os.path.join(work_dir, f"{split}-{index:05d}.jsonl")
            with gfile.GFile(manifest, "w") as f:
                for image in part:
                    f.write(json.dumps([image.path, image.label, image.text, image.synset]) + "\n")
            tasks.append(ShardTask(split, index, count, len(part), manifest,
                                   os.path.join(split_uris[split], name),
                                   os.path.join(work_dir, f"{split}-{name}")))
    return tasks


def _worker_slots(beam_pipeline_args: Sequence[str], tasks: int) -> int:
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

    options = PipelineOptions(list(beam_pipeline_args))
    runner = options.view_as(StandardOptions).runner
    if runner and "Direct" not in str(runner) and "FnApi" not in str(runner):
        return tasks  # a distributed runner: one slot per shard
    return options.view_as(DirectOptions).direct_num_workers or os.cpu_count() or 1


class Executor(SpanExampleGenExecutor):
    """Beam executor of the image ExampleGen (see the module docstring)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from tfx.components.example_gen import utils as example_gen_utils
        from tfx.proto import example_gen_pb2
        from tfx.types import artifact_utils
        from tfx.types import standard_component_specs as specs
        from tfx.utils import proto_utils

        self._log_startup(input_dict, output_dict, exec_properties)
        window = input_window(exec_properties)
        options = ImageGenOptions.from_json(exec_properties.get(OPTIONS_KEY))
        input_config = proto_utils.json_to_proto(exec_properties[specs.INPUT_CONFIG_KEY],
                                                 example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(exec_properties[specs.OUTPUT_CONFIG_KEY],
                                                  example_gen_pb2.Output())
        examples = artifact_utils.get_single_instance(output_dict[specs.EXAMPLES_KEY])
        split_names = example_gen_utils.generate_output_split_names(input_config, output_config)
        examples.split_names = artifact_utils.encode_split_names(split_names)

        layout, images = split_images(window.folders(), options, input_config, output_config)
        split_uris = {s: artifact_utils.get_split_uri([examples], s) for s in split_names}
        work_dir = os.path.join(examples.uri, _WORK_DIR)
        tasks = plan_shards(split_uris, images, options, work_dir)
        slots = assign_slots(tasks, _worker_slots(self._beam_pipeline_args or [], len(tasks)))
        summary_path = os.path.join(work_dir, "summary.json")
        logging.info("ImageExampleGen: %s in %d shards on %d worker slots",
                     {s: len(v) for s, v in images.items()}, len(tasks), len(slots))
        with self._make_beam_pipeline() as pipeline:
            _ = (pipeline
                 | "Slots" >> beam.Create(slots)
                 | "Spread" >> beam.Reshuffle()
                 | "WriteShards" >> beam.FlatMap(write_slot, options.skip_bad_images)
                 | "Collect" >> beam.combiners.ToList()
                 | "Summary" >> beam.Map(write_json, summary_path))
        with _gfile().GFile(summary_path) as f:
            summaries = json.load(f)
        self._publish(examples, layout, summaries, window)
        _gfile().rmtree(work_dir)

    @staticmethod
    def _publish(examples, layout, summaries, window) -> None:
        from tfx.components.util import examples_utils
        from tfx.proto import example_gen_pb2

        gfile = _gfile()
        skipped = sorted(s for summary in summaries for s in summary["skipped"])
        written = sum(s["written"] for s in summaries)
        reencoded = sum(s["reencoded"] for s in summaries)
        with gfile.GFile(os.path.join(examples.uri, LABELS_FILE), "w") as f:
            f.write(layout.labels_txt)
        with gfile.GFile(os.path.join(examples.uri, LABEL_NAMES_FILE), "w") as f:
            f.write("".join(n + "\n" for n in layout.label_names))
        with gfile.GFile(os.path.join(examples.uri, SKIPPED_FILE), "w") as f:
            f.write("".join(s + "\n" for s in skipped))
        examples.set_string_custom_property("label_names", json.dumps(list(layout.label_names)))
        examples.set_int_custom_property("images_written", written)
        examples.set_int_custom_property("images_reencoded", reencoded)
        examples.set_int_custom_property("images_skipped", len(skipped))
        # From the first shard's start to the last one's end: Beam's start-up excluded.
        seconds = max(s["finished"] for s in summaries) - min(s["started"] for s in summaries)
        examples.set_float_custom_property("conversion_seconds", round(seconds, 3))
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        stamp_window(examples, window)
        logging.info("ImageExampleGen: %d images written (%d re-encoded), %d skipped, in %.1f s "
                     "(%.0f images/s)", written, reencoded, len(skipped), seconds,
                     written / max(seconds, 1e-9))
        if skipped:
            logging.warning("ImageExampleGen skipped %d bad images (listed in %s): %s",
                            len(skipped), os.path.join(examples.uri, SKIPPED_FILE),
                            "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))


def make_example_gen(dataset: str, input_base: str, split, input_spans=None, *,
                     train_shards: int = 0, test_shards: int = 0, skip_bad_images: bool = False,
                     labels_offset: int = 0):
    """The image ``ExampleGen`` of ``dataset`` reading ``input_base``.

    Args:
      dataset: ``"flowers"`` or ``"imagenet"``.
      input_base: the dataset folder (see :mod:`model_garden.datasets.image_layouts`).
      split: a :class:`model_garden.datasets.SplitSpec`.
      input_spans: as :func:`model_garden.components.file_example_gen.make_file_example_gen`.
      train_shards, test_shards, skip_bad_images, labels_offset: :class:`ImageGenOptions`.

    Returns:
      The component, node id ``ExampleGen``, splits ``train`` and ``test``.

    Raises:
      ImageExampleGenError: bad options, or an official split of a local
        folder that has none (flowers, the ImageNet sample).
      image_layouts.LayoutError: a local folder (the newest span's) without
        the dataset in it.
    """
    from model_garden.components.input_spans import SpanWindow

    options = ImageGenOptions(dataset, train_shards, test_shards, skip_bad_images, labels_offset)
    # A local folder is checked now (the newest span's, with spans), so a wrong
    # folder fails before anything runs; a remote one, or a window resolved at
    # run time (a Kubeflow placeholder), only when the ExampleGen runs.
    folder = None
    if "://" not in input_base:
        folder = input_base
        if isinstance(input_spans, str):
            folder = SpanWindow.from_json(input_spans).folders()[-1]
        elif input_spans is not None:
            folder = None
    if folder is not None:
        layout = image_layouts.find_layout(dataset, folder, labels_offset)
        if split.kind == "official" and not layout.has_official_split():
            raise _no_official_split(input_base, dataset)
    return make_file_example_gen(input_base, split, Executor, {"train": "train", "test": "test"},
                                 "*", input_spans=input_spans, options=options.to_json())


def make_flowers_example_gen(input_base: str, split, input_spans=None, **options):
    """:func:`make_example_gen` of the flowers (the dataset registry's factory)."""
    return make_example_gen("flowers", input_base, split, input_spans, **options)


def make_imagenet_example_gen(input_base: str, split, input_spans=None, **options):
    """:func:`make_example_gen` of ImageNet (the dataset registry's factory)."""
    return make_example_gen("imagenet", input_base, split, input_spans, **options)
