"""Where the images of TF-Slim's datasets are and how each is labelled: flowers, ImageNet.

Pure Python (no TensorFlow): the image ExampleGen
(:mod:`model_garden.components.image_example_gen`) lists the files with it
in its driver process, and only the paths travel to the Beam workers.

Two kinds of :class:`ImageSource`:

* class folders, ``<folder>/<class>/<image>``: TF's ``flower_photos/daisy/
  *.jpg`` (``download_and_convert_flowers.py``: label = index of the class in
  sorted order) and ImageNet's ``train/n01440764/*.JPEG``;
* a folder of images plus a label file: ImageNet validation
  (``ILSVRC2012_val_*.JPEG`` with Slim's or Kaggle's labels) and our sample
  (``sample-images/`` with ``sample-images-labels.csv``), read by
  :mod:`model_garden.datasets.imagenet`.

A source belongs to an official split (``train``/``test``) or to none (the
flowers and the ImageNet sample have no official split: only a hash split
of what is present applies).
"""

import dataclasses
import os
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from model_garden.datasets import imagenet
from model_garden.datasets.image_folder import isdir, isfile, listdir

FLOWERS_DIR = "flower_photos"
#: ImageNet train and validation folders: Slim's raw-data layout
#: (``build_imagenet_data.py --train_directory/--validation_directory``)
#: and Kaggle's ImageNet Object Localization Challenge layout.
IMAGENET_TRAIN_DIRS = ("train", os.path.join("ILSVRC", "Data", "CLS-LOC", "train"))
IMAGENET_VALIDATION_DIRS = ("validation", "val", os.path.join("ILSVRC", "Data", "CLS-LOC", "val"))
IMAGENET_SAMPLE_DIR = "sample-images"
IMAGENET_HOWTO = (
    "ImageNet cannot be downloaded without an account: get ILSVRC2012 from "
    "https://image-net.org/download-images (or Kaggle's imagenet-object-localization-"
    "challenge) and pass its folder with --data-dir"
)


class LayoutError(ValueError):
    """The folder does not hold the dataset in any known layout; names the folder."""


class LabelledImage(NamedTuple):
    """One image file and its label.

    Attributes:
      path: the file's path.
      relpath: its path relative to the dataset folder (what the hash split hashes).
      label: the TF-Slim label (int).
      text: ``image/class/text``: the class name.
      synset: ``image/class/synset`` (ImageNet), else ``None``.
    """

    path: str
    relpath: str
    label: int
    text: str
    synset: Optional[str]


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One folder of images.

    Attributes:
      folder: the folder.
      split: the official split it is (``"train"``/``"test"``), or ``None``.
      label_file: ``None``: class folders; else the label file of a flat folder.
    """

    folder: str
    split: Optional[str]
    label_file: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    """A dataset folder as found: its sources and its labels.

    Attributes:
      root: the dataset folder (``input_base`` or one span of it).
      sources: the image folders.
      labels_txt: ``labels.txt`` (``<label>:<name>`` lines, TF-Slim's
        ``dataset_utils.write_label_file``).
      label_names: name of label ``i`` at index ``i`` (ImageNet: ``background``
        first unless ``labels_offset=1``).
      label_of: ``(class folder name) -> (label, text, synset)``.
      label_map: the ImageNet :class:`~model_garden.datasets.imagenet.LabelMap`, else ``None``.
    """

    root: str
    sources: Tuple[ImageSource, ...]
    labels_txt: str
    label_names: Tuple[str, ...]
    label_of: Callable[[str], Tuple[int, str, Optional[str]]] = dataclasses.field(compare=False)
    label_map: Optional[imagenet.LabelMap] = None

    def has_official_split(self) -> bool:
        """Whether every source belongs to an official split."""
        return all(s.split for s in self.sources)

    def images(self, split: Optional[str] = None) -> Iterator[LabelledImage]:
        """Every image of the sources of ``split`` (``None``: of every source), sorted by path.

        Raises:
          LayoutError: a class folder that is not a known class.
          imagenet.ImageNetFormatError: a label file problem (names file and line).
        """
        for source in self.sources:
            if split is not None and source.split != split:
                continue
            if source.label_file:
                yield from self._labelled(source)
            else:
                yield from self._class_folders(source)

    def _class_folders(self, source: ImageSource) -> Iterator[LabelledImage]:
        for class_name in _sorted_dirs(source.folder):
            class_dir = os.path.join(source.folder, class_name)
            try:
                label, text, synset = self.label_of(class_name)
            except KeyError as e:
                raise LayoutError(f"{class_dir}: {e.args[0]}") from None
            for name in sorted(listdir(class_dir)):
                path = os.path.join(class_dir, name)
                if name.startswith(".") or isdir(path):
                    continue
                yield LabelledImage(path, os.path.relpath(path, self.root), label, text, synset)

    def _labelled(self, source: ImageSource) -> Iterator[LabelledImage]:
        labels = imagenet.read_validation_labels(source.label_file)
        assert self.label_map is not None
        for path, label, synset in imagenet.labelled_images(source.folder, labels, self.label_map):
            _, text, _ = self.label_of(synset)
            yield LabelledImage(path, os.path.relpath(path, self.root), label, text, synset)


def _sorted_dirs(folder: str) -> List[str]:
    return sorted(n for n in listdir(folder)
                  if not n.startswith(".") and isdir(os.path.join(folder, n)))


def find_flowers(input_base: str, labels_offset: int = 0) -> DatasetLayout:
    """TF's flower photos: ``input_base/flower_photos/<class>/*.jpg`` (or ``input_base/<class>/``).

    Labels: the sorted class folders, 0-based (``download_and_convert_flowers.py``);
    no official split. Files beside the class folders (``LICENSE.txt``) are not images.

    Raises:
      LayoutError: no class folders, or ``labels_offset`` given (it is ImageNet's).
    """
    if labels_offset:
        raise LayoutError(f"{input_base}: labels_offset is ImageNet's (its background "
                          "class); the flowers have no background class")
    root = os.path.join(input_base, FLOWERS_DIR)
    root = root if isdir(root) else input_base
    names = _sorted_dirs(root) if isdir(root) else []
    if not names:
        raise LayoutError(f"{input_base}: no flower photos ({FLOWERS_DIR}/<class>/*.jpg)")
    index = {n: i for i, n in enumerate(names)}

    def label_of(class_name: str):
        return index[class_name], class_name, None

    return DatasetLayout(
        root=input_base, sources=(ImageSource(root, None),),
        labels_txt="".join(f"{i}:{n}\n" for i, n in enumerate(names)),
        label_names=tuple(names), label_of=label_of)


def _first_dir(base: str, candidates: Sequence[str]) -> Optional[str]:
    for rel in candidates:
        if isdir(os.path.join(base, rel)):
            return os.path.join(base, rel)
    return None


def _first_file(base: str, candidates: Sequence[str]) -> Optional[str]:
    for name in candidates:
        if isfile(os.path.join(base, name)):
            return os.path.join(base, name)
    return None


def find_imagenet(input_base: str, labels_offset: int = 0) -> DatasetLayout:
    """ImageNet (ILSVRC-2012) as Slim, Kaggle or our sample lay it out.

    ``input_base`` holds ``LOC_synset_mapping.txt`` (the synset order) and any of:

    * ``train/<synset>/*.JPEG`` (or Kaggle's ``ILSVRC/Data/CLS-LOC/train/``): split ``train``;
    * ``validation/`` (or ``val/``, Kaggle's ``ILSVRC/Data/CLS-LOC/val/``) with
      ``imagenet_2012_validation_synset_labels.txt`` or ``LOC_val_solution.csv``
      beside it or in ``input_base``: split ``test``;
    * ``sample-images/`` with ``sample-images-labels.csv``: no official split.

    Raises:
      LayoutError: no mapping file or none of the folders (the message says
        how to get ImageNet, which needs an account).
      imagenet.ImageNetFormatError: a malformed mapping file.
    """
    mapping = os.path.join(input_base, imagenet.SYNSET_MAPPING)
    if not isfile(mapping):
        raise LayoutError(f"{input_base}: no {imagenet.SYNSET_MAPPING} (the synset order). "
                          + IMAGENET_HOWTO)
    label_map = imagenet.read_synset_mapping(mapping, labels_offset)
    sources: List[ImageSource] = []
    train = _first_dir(input_base, IMAGENET_TRAIN_DIRS)
    if train:
        sources.append(ImageSource(train, "train"))
    validation = _first_dir(input_base, IMAGENET_VALIDATION_DIRS)
    label_names = (imagenet.SLIM_VALIDATION_LABELS, imagenet.KAGGLE_VALIDATION_LABELS)
    if validation:
        label_file = (_first_file(validation, label_names)
                      or _first_file(os.path.dirname(validation), label_names)
                      or _first_file(input_base, label_names))
        if not label_file:
            raise LayoutError(f"{validation}: no validation label file ({' or '.join(label_names)}) "
                              f"beside it or in {input_base}")
        sources.append(ImageSource(validation, "test", label_file))
    sample = os.path.join(input_base, IMAGENET_SAMPLE_DIR)
    sample_labels = os.path.join(input_base, imagenet.SAMPLE_LABELS)
    if not sources and isdir(sample) and isfile(sample_labels):
        sources.append(ImageSource(sample, None, sample_labels))
    if not sources:
        raise LayoutError(f"{input_base}: no ImageNet images ({IMAGENET_TRAIN_DIRS[0]}/<synset>/, "
                          f"{IMAGENET_VALIDATION_DIRS[0]}/ with its label file, or "
                          f"{IMAGENET_SAMPLE_DIR}/ with {imagenet.SAMPLE_LABELS}). " + IMAGENET_HOWTO)
    names = ([] if labels_offset else [imagenet.BACKGROUND]) + list(label_map.names)

    def label_of(synset: str):
        label = label_map.label(synset)  # KeyError names the synset
        return label, names[label], synset

    return DatasetLayout(root=input_base, sources=tuple(sources), labels_txt=label_map.labels_txt(),
                         label_names=tuple(names), label_of=label_of, label_map=label_map)


#: dataset name -> layout finder ``(input_base, labels_offset) -> DatasetLayout``.
LAYOUTS: Dict[str, Callable[..., DatasetLayout]] = {
    "flowers": find_flowers,
    "imagenet": find_imagenet,
}


def find_layout(dataset: str, input_base: str, labels_offset: int = 0) -> DatasetLayout:
    """The :class:`DatasetLayout` of ``dataset`` (a key of :data:`LAYOUTS`) in ``input_base``.

    Raises:
      KeyError: an unknown dataset; LayoutError: as the finders.
    """
    if dataset not in LAYOUTS:
        raise KeyError(f"no image layout for dataset {dataset!r}: one of {sorted(LAYOUTS)}")
    if not isdir(input_base):
        raise LayoutError(f"{input_base}: no such folder")
    return LAYOUTS[dataset](input_base, labels_offset)
