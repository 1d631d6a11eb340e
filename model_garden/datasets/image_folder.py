"""Image-folder datasets: ``<root>/<split>/<class>/<image>``.

The layout of Keras ``image_dataset_from_directory``, of TF-Slim's flowers
converter (``research/slim/datasets/download_and_convert_flowers.py``: one
folder per class, label = index of the class in sorted order) and of the
JPEG/PNG copies of CIFAR-10 (``train/airplane/0000.jpg``). Files are read
as their original encoded bytes; nothing is decoded. The format (``png`` or
``jpeg``), the true height and width and the number of colour channels come
from the file header, not from the file name; a dataset of fixed image size
(CIFAR-10's 32x32x3) refuses any other with :func:`check_shape`.

Pure Python (no TensorFlow), so that ExampleGens for CIFAR-10, flowers and
ImageNet can share it inside Beam workers.
"""

import dataclasses
import os
import struct
from typing import Iterable, List, Optional, Sequence, Tuple

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class ImageFolderError(ValueError):
    """A file or folder of an image-folder dataset is not what it should be.

    The message always names the file or folder.
    """


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One image of an image folder.

    Attributes:
      path: the file's path.
      class_name: the name of its class folder.
      label: 0-based class index.
    """

    path: str
    class_name: str
    label: int


@dataclasses.dataclass(frozen=True)
class EncodedImage:
    """The original bytes of one image file and what its header says.

    Attributes:
      encoded: the file's bytes, unchanged.
      image_format: ``"png"`` or ``"jpeg"`` (TF-Slim's ``image/format``).
      height: pixels (from the PNG ``IHDR`` or the JPEG ``SOFn`` header).
      width: pixels.
      channels: the colour channels the header declares: 1 grayscale, 2
        grayscale + alpha, 3 RGB (a JPEG's YCbCr), 4 RGBA or a JPEG's
        CMYK/YCCK (see :func:`sniff_image`).
    """

    encoded: bytes
    image_format: str
    height: int
    width: int
    channels: int

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(height, width, channels)``, as the header says (see :func:`sniff_image`)."""
        return self.height, self.width, self.channels


def _gfile():
    import tensorflow as tf  # lazily: only for non-local paths

    return tf.io.gfile


def _is_local(path: str) -> bool:
    return "://" not in path


def isdir(path: str) -> bool:
    """``os.path.isdir``, through ``tf.io.gfile`` for a remote (``gs://``) path."""
    return os.path.isdir(path) if _is_local(path) else _gfile().isdir(path)


def isfile(path: str) -> bool:
    """``os.path.isfile``, through ``tf.io.gfile`` for a remote path."""
    if _is_local(path):
        return os.path.isfile(path)
    return _gfile().exists(path) and not _gfile().isdir(path)


def open_text(path: str):
    """``open(path, encoding="utf-8", newline="")``, through ``tf.io.gfile`` for a remote path."""
    if _is_local(path):
        return open(path, encoding="utf-8", newline="")
    import io

    return io.StringIO(_gfile().GFile(path).read())


def listdir(path: str) -> List[str]:
    """``os.listdir``, through ``tf.io.gfile`` for a remote path (no trailing ``/``)."""
    if _is_local(path):
        return os.listdir(path)
    return [name.rstrip("/") for name in _gfile().listdir(path)]


def read_bytes(path: str) -> bytes:
    """The bytes of the file ``path`` (local or remote)."""
    if _is_local(path):
        with open(path, "rb") as f:
            return f.read()
    with _gfile().GFile(path, "rb") as f:
        return f.read()


def class_names_of(root: str, splits: Sequence[str]) -> List[str]:
    """The sorted class folder names found under ``root/<split>/`` for all splits.

    Taking the union over the splits keeps labels identical across splits
    even when a class is missing from one of them.

    Raises:
      ImageFolderError: no split folder or no class folder exists.
    """
    names = set()
    for split in splits:
        split_dir = os.path.join(root, split)
        if not isdir(split_dir):
            raise ImageFolderError(f"{split_dir}: no such split folder")
        names.update(
            n for n in listdir(split_dir)
            if not n.startswith(".") and isdir(os.path.join(split_dir, n))
        )
    if not names:
        raise ImageFolderError(f"{root}: no class folders under {list(splits)}")
    return sorted(names)


def image_file(path: str, class_names: Sequence[str]) -> ImageFile:
    """The :class:`ImageFile` for ``path``, labelled by its parent folder.

    Raises:
      ImageFolderError: the parent folder is not one of ``class_names``.
    """
    class_name = os.path.basename(os.path.dirname(path))
    try:
        label = list(class_names).index(class_name)
    except ValueError:
        raise ImageFolderError(
            f"{path}: class folder {class_name!r} is not one of {list(class_names)}"
        ) from None
    return ImageFile(path, class_name, label)


def list_images(
    root: str, split: str, class_names: Optional[Sequence[str]] = None
) -> List[ImageFile]:
    """Every image under ``root/split/<class>/``, sorted by class then name.

    Args:
      root: the image-folder root (holding ``train/``, ``test/``, ...).
      split: the split folder name.
      class_names: label order; ``None`` means the sorted class folders of
        ``split`` (TF-Slim's convention). Given names (e.g. CIFAR-10's
        ``batches.meta`` order) must cover every class folder.

    Returns:
      :class:`ImageFile` entries; hidden files (``.*``) are skipped.

    Raises:
      ImageFolderError: a missing split folder, a class folder not in
        ``class_names``, or a file without an image extension.
    """
    split_dir = os.path.join(root, split)
    if class_names is None:
        class_names = class_names_of(root, [split])
    if not isdir(split_dir):
        raise ImageFolderError(f"{split_dir}: no such split folder")
    files = []
    for class_name in sorted(listdir(split_dir)):
        class_dir = os.path.join(split_dir, class_name)
        if class_name.startswith(".") or not isdir(class_dir):
            continue
        for name in sorted(listdir(class_dir)):
            if name.startswith("."):
                continue
            path = os.path.join(class_dir, name)
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                raise ImageFolderError(
                    f"{path}: not an image file (expected {IMAGE_EXTENSIONS})"
                )
            files.append(image_file(path, class_names))
    return files


#: PNG IHDR colour type -> channels (PNG spec 11.2.2): 0 grayscale, 2 RGB,
#: 3 palette (its PLTE entries are RGB; a tRNS transparency chunk is not read),
#: 4 grayscale + alpha, 6 RGBA.
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
#: JPEG frame component counts that decode (ITU T.81 allows 1-255; libjpeg and
#: TensorFlow's decode_jpeg read grayscale, YCbCr/RGB and CMYK/YCCK).
JPEG_CHANNELS = (1, 3, 4)


def _png_header(data: bytes, path: str) -> Tuple[int, int, int]:
    """``(height, width, channels)`` from a PNG's ``IHDR`` chunk."""
    # 8-byte signature, then the IHDR chunk: length, b"IHDR", width, height,
    # bit depth (byte 24), colour type (byte 25).
    if len(data) < 26 or data[12:16] != b"IHDR":
        raise ImageFolderError(f"{path}: PNG without an IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    if data[25] not in PNG_CHANNELS:
        raise ImageFolderError(f"{path}: PNG colour type {data[25]} is not one of "
                               f"{sorted(PNG_CHANNELS)}")
    return height, width, PNG_CHANNELS[data[25]]


# JPEG start-of-frame markers (ITU T.81 table B.1): SOF0-3, 5-7, 9-11, 13-15.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RSTn, SOI, EOI.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])


def jpeg_frame(data: bytes, path: str = "<bytes>") -> Tuple[int, int, int]:
    """``(height, width, components)`` from a JPEG's frame (SOFn) header.

    ``components``: 1 grayscale, 3 YCbCr/RGB, 4 CMYK/YCCK (ITU T.81 B.2.2).

    Raises:
      ImageFolderError: no frame header, or a corrupt marker sequence.
    """
    i = 2  # after SOI (FF D8)
    n = len(data)
    while i < n:
        if data[i] != 0xFF:
            raise ImageFolderError(f"{path}: corrupt JPEG (no marker at byte {i})")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if marker in _SOF_MARKERS:
            if i + 8 > n:
                break
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return height, width, data[i + 7]
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += length
    raise ImageFolderError(f"{path}: JPEG without a frame (SOFn) header")


def sniff_image(data: bytes, path: str = "<bytes>") -> Tuple[str, int, int, int]:
    """``(format, height, width, channels)`` of encoded image bytes, from the header.

    Channels: a PNG's colour type (:data:`PNG_CHANNELS`), a JPEG's frame
    component count (1 grayscale, 3 YCbCr, 4 CMYK/YCCK; :func:`jpeg_frame`).
    That is the channel count ``tf.io.decode_image`` gives, except for a
    4-component JPEG, which TensorFlow converts to RGB (3).

    Args:
      data: PNG or JPEG file bytes.
      path: named in errors.

    Returns:
      ``("png" | "jpeg", height, width, channels)``.

    Raises:
      ImageFolderError: neither PNG nor JPEG, a broken header, an unknown
        PNG colour type, a JPEG of other than 1, 3 or 4 components, or a
        height or width of 0.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        image_format, (height, width, channels) = "png", _png_header(data, path)
    elif data[:3] == b"\xff\xd8\xff":
        image_format, (height, width, channels) = "jpeg", jpeg_frame(data, path)
    else:
        raise ImageFolderError(f"{path}: neither PNG nor JPEG (starts {data[:8]!r})")
    if height == 0 or width == 0:  # nothing decodes it (a JPEG's DNL height is not supported)
        raise ImageFolderError(f"{path}: the {image_format.upper()} header says "
                               f"{height}x{width} pixels (height x width): an empty image")
    if image_format == "jpeg" and channels not in JPEG_CHANNELS:  # libjpeg, TF: 1, 3 or 4
        raise ImageFolderError(f"{path}: the JPEG header says {channels} colour components, "
                               f"not one of {JPEG_CHANNELS}")
    return image_format, height, width, channels


def read_image(path: str) -> EncodedImage:
    """Reads one image file without decoding it.

    Raises:
      ImageFolderError: as :func:`sniff_image`, naming ``path``.
    """
    data = read_bytes(path)
    return EncodedImage(data, *sniff_image(data, path))


def format_shape(shape: Sequence[int]) -> str:
    """``(32, 32, 3)`` -> ``"32x32x3"`` (height x width x channels)."""
    return "x".join(map(str, shape))


def check_shape(image: EncodedImage, path: str, shape: Tuple[int, int, int],
                dataset: str) -> None:
    """Refuses an image whose header shape is not the dataset's fixed ``shape``.

    Args:
      image: the file's :class:`EncodedImage` (from :func:`read_image`).
      path: the file, named in the error.
      shape: ``(height, width, channels)`` every image of ``dataset`` has
        (:attr:`model_garden.datasets.registry.Dataset.image_shape`).
      dataset: the dataset's name, for the message.

    Raises:
      ImageFolderError: ``"<path>: image is 64x64x3, cifar10 images are
        32x32x3"``.
    """
    if image.shape != tuple(shape):
        raise ImageFolderError(f"{path}: image is {format_shape(image.shape)}, {dataset} "
                               f"images are {format_shape(shape)}")


def find_roots(base: str, splits: Iterable[str] = ("train", "test")) -> List[str]:
    """Image-folder roots at ``base`` or one level below it.

    A root is a folder holding every one of ``splits`` as a sub-folder.

    Returns:
      The roots found, ``base`` first when it is one, then sorted sub-folders.
    """
    splits = list(splits)

    def is_root(folder):
        return all(isdir(os.path.join(folder, s)) for s in splits)

    if not isdir(base):
        return []
    roots = [base] if is_root(base) else []
    for name in sorted(listdir(base)):
        sub = os.path.join(base, name)
        if not name.startswith(".") and isdir(sub) and is_root(sub):
            roots.append(sub)
    return roots
