"""CIFAR-10 ExampleGen: a ``FileBasedExampleGen`` with a Beam executor.

The executor finds the layout under ``input_base`` (first match wins):

1. ``python``: ``cifar-10-batches-py/`` (or ``input_base`` itself) holding
   ``data_batch_1..5`` / ``test_batch`` pickles;
2. ``binary``: ``cifar-10-batches-bin/`` (or ``input_base``) holding
   ``data_batch_1..5.bin`` / ``test_batch.bin``;
3. ``image_folder``: a folder with ``train/<class>/*`` and ``test/<class>/*``
   (``input_base`` itself or one sub-folder, e.g. ``cifar-10-images-jpg/``).

and writes one TF-Slim-format ``tf.train.Example`` per image
(:mod:`model_garden.components.image_example`): batch images as PNG
(lossless, 32x32), image-folder files with their original bytes and
format (``jpeg`` or ``png``) and header height/width. An image file whose
header is not 32x32 RGB (CIFAR-10's ``image_shape`` in the dataset
registry: another size, grayscale, RGBA, CMYK) fails the run here with one
:class:`~model_garden.datasets.image_folder.ImageFolderError` naming the
file and both shapes (``.../cat/0001.jpg: image is 64x64x3, cifar10 images
are 32x32x3``); it used to pass and fail in the Trainer (a TF shape error)
or the Evaluator (the JPEG bytes in the message). Nothing is written: TFX's
``WriteSplit`` reshuffles before writing, so in a batch pipeline the write
stage starts only after every file has been read and checked.

Labels are indices into the ``batches.meta`` (``batches.meta.txt``) order
when such a file is found (for image folders: in ``input_base/
cifar-10-batches-py/``, ``input_base/cifar-10-batches-bin/``, ``input_base``
or the image root), else the sorted class folder names. The label names
are logged, written to ``<examples.uri>/label_names.txt`` (line i = the name
of label i) and recorded as the output artifact's custom property
``label_names`` (a JSON list) in ML Metadata.

Splits: ``official`` keeps the dataset's train/test files; ``hash`` reads
every file and splits by a hash of each serialized example (TFX
``SplitConfig`` buckets).
"""

import dataclasses
import json
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam

from model_garden.components.file_example_gen import (
    SpanExampleGenExecutor, input_window, make_file_example_gen, split_files)
from model_garden.components.input_spans import SPAN_DIR_FORMAT, list_spans
from model_garden.components import image_example
from model_garden.datasets import cifar10, image_folder
from model_garden.datasets.registry import get_dataset

DATASET = "cifar10"
LABEL_NAMES_FILE = "label_names.txt"
LABEL_NAMES_PROPERTY = "label_names"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the CIFAR-10 files are under ``input_base``.

    Attributes:
      kind: ``"python"``, ``"binary"`` or ``"image_folder"``.
      folder: the folder holding the batches (or the image root), relative
        to ``input_base`` (``""`` for ``input_base`` itself).
      meta: path of the label-names file, or ``None``.
    """

    kind: str
    folder: str
    meta: Optional[str]

    def _pattern(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts) if self.folder else os.path.join(*parts)

    def patterns(self) -> Tuple[str, str, str]:
        """``(train, test, all)`` glob patterns relative to ``input_base``."""
        if self.kind == "python":
            return (
                self._pattern("data_batch_*"),
                self._pattern("test_batch"),
                self._pattern("*_batch*"),
            )
        if self.kind == "binary":
            return (
                self._pattern("data_batch_*.bin"),
                self._pattern("test_batch.bin"),
                self._pattern("*_batch*.bin"),
            )
        return (
            self._pattern("train", "*", "*"),
            self._pattern("test", "*", "*"),
            self._pattern("*", "*", "*"),
        )


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _has(folder: str, names) -> bool:
    return any(_gfile().exists(os.path.join(folder, n)) for n in names)


def detect_layout(input_base: str) -> Layout:
    """Finds the CIFAR-10 layout under ``input_base`` (see module docstring).

    Raises:
      FileNotFoundError: no layout found, naming ``input_base``.
      cifar10.CifarFormatError: batch files found but some are missing.
      ValueError: more than one image-folder root.
    """
    gfile = _gfile()
    for kind, sub, train, test, meta in (
        ("python", cifar10.PY_DIR, cifar10.PY_TRAIN_FILES, cifar10.PY_TEST_FILES,
         cifar10.PY_META),
        ("binary", cifar10.BIN_DIR, cifar10.BIN_TRAIN_FILES, cifar10.BIN_TEST_FILES,
         cifar10.BIN_META),
    ):
        for rel in (sub, ""):
            folder = os.path.join(input_base, rel) if rel else input_base
            if _has(folder, train + test):
                cifar10.check_complete(folder, train + test)
                meta_path = os.path.join(folder, meta)
                return Layout(kind, rel, meta_path if gfile.exists(meta_path) else None)
    roots = image_folder.find_roots(input_base)
    if len(roots) > 1:
        raise ValueError(f"{input_base}: several image-folder roots {roots}; pass one")
    if not roots:
        raise FileNotFoundError(
            f"{input_base}: no CIFAR-10 files ({cifar10.PY_DIR}/data_batch_*, "
            f"{cifar10.BIN_DIR}/data_batch_*.bin, or an image folder with "
            "train/<class>/ and test/<class>/)"
        )
    root = roots[0]
    rel = os.path.relpath(root, input_base) if root != input_base else ""
    meta_path = None
    for candidate in (
        os.path.join(input_base, cifar10.PY_DIR, cifar10.PY_META),
        os.path.join(input_base, cifar10.BIN_DIR, cifar10.BIN_META),
        os.path.join(input_base, cifar10.PY_META),
        os.path.join(root, cifar10.PY_META),
        os.path.join(root, cifar10.BIN_META),
    ):
        if gfile.exists(candidate):
            meta_path = candidate
            break
    return Layout("image_folder", rel, meta_path)


def label_names_for(input_base: str, layout: Layout) -> List[str]:
    """The class names in label order for ``layout`` (see module docstring)."""
    if layout.meta:
        return cifar10.load_label_names(layout.meta)
    if layout.kind == "image_folder":
        root = os.path.join(input_base, layout.folder)
        return image_folder.class_names_of(root, ["train", "test"])
    return [str(i) for i in range(cifar10.NUM_CLASSES)]


def _batch_examples(path: str, kind: str, num_classes: int):
    """Yields one PNG ``tf.train.Example`` per image of a batch file."""
    load = cifar10.load_python_batch if kind == "python" else cifar10.load_binary_batch
    batch = load(path, num_classes)
    for pixels, label in zip(batch.images, batch.labels):
        yield image_example.png_example(pixels, int(label))


def file_example(path: str, class_names: List[str]):
    """One ``tf.train.Example`` holding an image file's original bytes.

    Args:
      path: a PNG or JPEG file under ``<split>/<class>/``.
      class_names: label order (its class folder's index is the label).

    Returns:
      A TF-Slim ``tf.train.Example`` (:func:`image_example.image_to_tfexample`).

    Raises:
      ImageFolderError: the class folder is not one of ``class_names``, the
        header is broken, or the image is not CIFAR-10's ``image_shape``
        (32x32x3, from the header: height, width, channels).
    """
    item = image_folder.image_file(path, class_names)
    image = image_folder.read_image(path)
    image_folder.check_shape(image, path, get_dataset(DATASET).image_shape, DATASET)
    return image_example.image_to_tfexample(
        image.encoded, image.image_format, image.height, image.width, item.label
    )


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def _CifarToExample(  # pylint: disable=invalid-name
    pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """Reads the files matching ``split_pattern`` into ``tf.train.Example``s."""
    from tfx.types import standard_component_specs

    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    layout = detect_layout(input_base)
    names = label_names_for(input_base, layout)
    files = split_files(input_base, split_pattern)
    logging.info("CIFAR-10 %s layout: %d files for %s", layout.kind, len(files), split_pattern)
    if layout.kind in ("python", "binary"):
        return (
            pipeline
            | "Files" >> beam.Create(files)
            | "Decode" >> beam.FlatMap(_batch_examples, layout.kind, len(names))
            | "Reshuffle" >> beam.Reshuffle()
        )
    return (
        pipeline
        | "Files" >> beam.Create(files)
        | "Read" >> beam.Map(file_example, names)
    )


class Executor(SpanExampleGenExecutor):
    """Beam executor: CIFAR-10 python/binary batches or image folders."""

    def ReadSplit(self) -> beam.PTransform:
        return _CifarToExample

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from tfx.types import artifact_utils, standard_component_specs

        super().Do(input_dict, output_dict, exec_properties)
        # The newest span's folder (input_base itself without the span layout).
        input_base = input_window(exec_properties).folders()[-1]
        names = label_names_for(input_base, detect_layout(input_base))
        logging.info("CIFAR-10 label names (label i = line i): %s", names)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        with _gfile().GFile(os.path.join(examples.uri, LABEL_NAMES_FILE), "w") as f:
            f.write("".join(n + "\n" for n in names))
        examples.set_string_custom_property(LABEL_NAMES_PROPERTY, json.dumps(names))


def read_label_names(examples_uri: str) -> List[str]:
    """The label names an ExampleGen run wrote beside its splits."""
    with _gfile().GFile(os.path.join(examples_uri, LABEL_NAMES_FILE)) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def make_example_gen(input_base: str, split, input_spans=None):
    """The ``ExampleGen`` component for CIFAR-10 files under ``input_base``.

    Args:
      input_base: folder with ``cifar-10-batches-py/``,
        ``cifar-10-batches-bin/`` or an image folder (see module docstring);
        a remote URI (``gs://...``, when compiling for Kubeflow) is not
        inspected and must hold ``cifar-10-batches-py/``.
      split: a :class:`model_garden.datasets.SplitSpec`.

    Returns:
      ``FileBasedExampleGen(...).with_id("ExampleGen")`` producing the splits
      ``train`` and ``test``.
    """
    if "://" in input_base:
        # Compiling for a cluster: the files are not readable from here, so
        # the canonical python batches (what the download extracts) are assumed.
        layout = Layout("python", cifar10.PY_DIR, None)
        logging.info("%s: remote, assuming the %s layout", input_base, cifar10.PY_DIR)
    else:
        spans = list_spans(input_base) if os.path.isdir(input_base) else []
        layout = detect_layout(os.path.join(input_base, SPAN_DIR_FORMAT.format(spans[-1]))
                               if spans else input_base)
    train, test, everything = layout.patterns()
    return make_file_example_gen(
        input_base, split, Executor, {"train": train, "test": test}, everything,
        input_spans=input_spans,
    )
