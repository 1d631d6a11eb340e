"""ImageNet (ILSVRC-2012) labels: the synset order, TF-Slim's label numbering, the label files.

Pure Python (no TensorFlow), for the image ExampleGen's Beam workers.

* Synset order: the canonical sorted order of ``LOC_synset_mapping.txt``
  (Kaggle's ImageNet Object Localization Challenge; one ``<synset> <names>``
  line per class, 1,000 lines, sorted by synset), which is the order of
  ``imagenet_lsvrc_2015_synsets.txt`` in tensorflow/models
  ``research/slim/datasets/``.
* Labels: as TF-Slim's ``build_imagenet_data.py`` writes them, label 0 is
  the background class and synset ``i`` (0-based in that order) is label
  ``i + 1``: 1,001 labels, what Slim's checkpoints expect. ``labels_offset=1``
  gives the 1,000-label form (Slim's ``train_image_classifier.py
  --labels_offset``, its README's troubleshooting section).
* Validation labels, three forms: Slim's
  ``imagenet_2012_validation_synset_labels.txt`` (line ``k`` is the synset of
  ``ILSVRC2012_val_{k:08d}.JPEG``, ``k`` from 1), Kaggle's
  ``LOC_val_solution.csv`` (``ImageId,PredictionString``; the first token of
  the prediction string is the synset) and our sample's
  ``sample-images-labels.csv`` (``filename,synset,label_index,class_names``).
"""

import csv
import dataclasses
import io
import os
import re
from typing import Dict, Iterator, List, Sequence, Tuple

from model_garden.datasets.image_folder import listdir, read_bytes

class ImageNetFormatError(ValueError):
    """An ImageNet label or mapping file is malformed; the message names file and line."""


#: A WordNet synset id, e.g. ``n01440764``.
SYNSET = re.compile(r"n\d{8}")
SLIM_VALIDATION_LABELS = "imagenet_2012_validation_synset_labels.txt"
KAGGLE_VALIDATION_LABELS = "LOC_val_solution.csv"
SAMPLE_LABELS = "sample-images-labels.csv"
SYNSET_MAPPING = "LOC_synset_mapping.txt"
BACKGROUND = "background"


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """Synsets -> TF-Slim labels.

    Attributes:
      synsets: the synsets in canonical (sorted) order.
      names: the human-readable names of each synset (``"tench, Tinca tinca"``).
      labels_offset: 0 (default): label 0 is ``background`` and synset ``i``
        is label ``i + 1`` (1,001 labels); 1: synset ``i`` is label ``i``.
    """

    synsets: Tuple[str, ...]
    names: Tuple[str, ...]
    labels_offset: int = 0
    _index: Dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.labels_offset not in (0, 1):
            raise ValueError(f"labels_offset must be 0 or 1, not {self.labels_offset!r}")
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(self.synsets)})

    @property
    def num_classes(self) -> int:
        """Number of labels: 1,001 with the background class, 1,000 without."""
        return len(self.synsets) + 1 - self.labels_offset

    def label(self, synset: str) -> int:
        """The label of ``synset``.

        Raises:
          KeyError: a synset that is not in the mapping.
        """
        index = self._index.get(synset)
        if index is None:
            raise KeyError(f"synset {synset!r} is not one of the {len(self.synsets)} classes")
        return index + 1 - self.labels_offset

    def labels_txt(self) -> str:
        """``labels.txt`` as TF-Slim's ``dataset_utils.write_label_file`` writes it:
        one ``<label>:<name>`` line per label, ``0:background`` first unless offset."""
        lines = [] if self.labels_offset else [f"0:{BACKGROUND}"]
        lines += [f"{self.label(s)}:{n}" for s, n in zip(self.synsets, self.names)]
        return "\n".join(lines) + "\n"


def _text(path: str) -> io.StringIO:
    """The file's text (UTF-8, a leading byte order mark dropped), lines split as ``newline=""``.

    Raises:
      FileNotFoundError: no such file.
      ImageNetFormatError: not UTF-8 (names the file, the line and the byte).
    """
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ImageNetFormatError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} "
                                  f"at offset {e.start})") from None
    return io.StringIO(text[1:] if text.startswith("\ufeff") else text, newline="")


def _lines(path: str) -> Iterator[Tuple[int, str]]:
    for number, line in enumerate(_text(path), start=1):
        if line.strip():
            yield number, line.rstrip("\n")


def read_synset_mapping(path: str, labels_offset: int = 0) -> LabelMap:
    """The :class:`LabelMap` of a ``LOC_synset_mapping.txt``.

    Raises:
      FileNotFoundError: no such file.
      ImageNetFormatError: a line that is not ``<synset> <names>``, a repeated
        synset, synsets not in sorted order, text that is not UTF-8, or an
        empty file (names file:line).
    """
    synsets: List[str] = []
    names: List[str] = []
    for number, line in _lines(path):
        synset, _, name = line.partition(" ")
        if not SYNSET.fullmatch(synset) or not name.strip():
            raise ImageNetFormatError(f"{path}:{number}: not '<synset> <names>': {line[:80]!r}")
        if synsets and synset <= synsets[-1]:
            raise ImageNetFormatError(f"{path}:{number}: synset {synset} is out of the sorted "
                                      f"order (after {synsets[-1]}) or repeated")
        synsets.append(synset)
        names.append(name.strip())
    if not synsets:
        raise ImageNetFormatError(f"{path}: no synsets")
    return LabelMap(tuple(synsets), tuple(names), labels_offset)


def read_validation_labels(path: str) -> Dict[str, str]:
    """``{image file name: synset}`` from any of the three label files (see the module).

    The form is told by the file's name: Slim's ``...synset_labels.txt``,
    Kaggle's ``LOC_val_solution.csv`` or our ``sample-images-labels.csv``
    (any other ``.csv`` is read by its header: ``ImageId`` or ``filename``).

    Raises:
      FileNotFoundError: no such file.
      ImageNetFormatError: a malformed line or header, text that is not UTF-8
        or not CSV, or an image listed twice (names file:line).
    """
    name = os.path.basename(path)
    if name.endswith(".txt"):
        return _slim_labels(path)
    reader = csv.reader(_text(path))
    try:
        header = next(reader, None)
        if header is None:
            raise ImageNetFormatError(f"{path}: empty file")
        if header[:2] == ["ImageId", "PredictionString"]:
            rows = ((reader.line_num, r[0], ((r[1].split() if len(r) > 1 else []) or [""])[0])
                    for r in reader if r)
            suffix = ".JPEG"
        elif header[:2] == ["filename", "synset"]:
            rows = ((reader.line_num, r[0], r[1] if len(r) > 1 else "") for r in reader if r)
            suffix = ""
        else:
            raise ImageNetFormatError(f"{path}:1: header {header[:2]} is neither "
                                      "ImageId,PredictionString nor filename,synset")
        return _collect(path, ((n, image + suffix, synset) for n, image, synset in rows))
    except csv.Error as e:  # a NUL byte, a field over csv's limit, a bad quote
        raise ImageNetFormatError(f"{path}:{reader.line_num}: not CSV ({e})") from None


def _slim_labels(path: str) -> Dict[str, str]:
    return _collect(path, ((n, f"ILSVRC2012_val_{n:08d}.JPEG", line.strip())
                           for n, line in _lines(path)))


def _collect(path: str, rows) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for number, image, synset in rows:
        if not SYNSET.fullmatch(synset):
            raise ImageNetFormatError(f"{path}:{number}: {synset!r} is not a synset (nXXXXXXXX)")
        if image in out:
            raise ImageNetFormatError(f"{path}:{number}: {image} is listed twice")
        out[image] = synset
    if not out:
        raise ImageNetFormatError(f"{path}: no labels")
    return out


def labelled_images(folder: str, labels: Dict[str, str], label_map: LabelMap,
                    extensions: Sequence[str] = (".jpeg", ".jpg", ".png")
                    ) -> Iterator[Tuple[str, int, str]]:
    """``(path, label, synset)`` of every image file in ``folder`` (sorted by name).

    Raises:
      ImageNetFormatError: an image without a label, or a label of an unknown
        synset (names the file).
    """
    for name in sorted(listdir(folder)):
        if name.startswith(".") or not name.lower().endswith(tuple(extensions)):
            continue
        path = os.path.join(folder, name)
        synset = labels.get(name)
        if synset is None:
            raise ImageNetFormatError(f"{path}: no label in the label file")
        try:
            label = label_map.label(synset)
        except KeyError as e:
            raise ImageNetFormatError(f"{path}: {e.args[0]}") from None
        yield path, label, synset
