"""Issue 13: an image of the wrong size or channels is refused by the CIFAR-10 ExampleGen.

A 64x64 JPEG among CIFAR-10's 32x32 ones used to pass the ExampleGen and
fail in the Trainer (a TF shape error) or the Evaluator (the JPEG bytes in
the message). Now the ExampleGen refuses it, naming the file and both
shapes, before any example is written. Every bad image here is made from a
real photo of ``shared/data/cifar10`` (resized, converted to grayscale, to
RGBA PNG, ...) in a tmp copy of a small image-folder layout; the channels
the header reader reports are checked against what TensorFlow decodes.
"""

import glob
import io
import os
import re
import shutil
import subprocess
import sys

import pytest

from model_garden.components import cifar10_example_gen as gen
from model_garden.datasets import SplitSpec, get_dataset, image_folder
from tests.test_cifar10_example_gen import _run_do

JPG = "cifar-10-images-jpg"
CLASSES = ("cat", "dog")


def _real_jpeg(data_root, split="test", class_name="cat", index=1) -> str:
    return os.path.join(data_root, "cifar10", JPG, split, class_name, f"{index:04d}.jpg")


def _encode(data_root, mode: str, size=(32, 32), image_format="JPEG") -> bytes:
    """A real CIFAR-10 JPEG converted with PIL to ``mode`` at ``size`` (width, height)."""
    from PIL import Image

    image = Image.open(_real_jpeg(data_root)).convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.BICUBIC)
    out = io.BytesIO()
    image.convert(mode).save(out, format=image_format)
    return out.getvalue()


#: name -> (file name, PIL mode, size (w, h), format, header shape (h, w, c)).
BAD = {
    "64x64 jpeg": ("0001.jpg", "RGB", (64, 64), "JPEG", (64, 64, 3)),
    "32x48 png": ("0001.png", "RGB", (48, 32), "PNG", (32, 48, 3)),
    "grayscale jpeg": ("0001.jpg", "L", (32, 32), "JPEG", (32, 32, 1)),
    "grayscale png": ("0001.png", "L", (32, 32), "PNG", (32, 32, 1)),
    "grayscale+alpha png": ("0001.png", "LA", (32, 32), "PNG", (32, 32, 2)),
    "rgba png": ("0001.png", "RGBA", (32, 32), "PNG", (32, 32, 4)),
    "cmyk jpeg": ("0001.jpg", "CMYK", (32, 32), "JPEG", (32, 32, 4)),
}


def _small_folder(tmp_path, data_root, per_class=3) -> str:
    """``<tmp>/cifar10/{train,test}/{cat,dog}/000N.jpg``: real JPEGs, copied."""
    base = tmp_path / "cifar10"
    for split in ("train", "test"):
        for class_name in CLASSES:
            folder = base / split / class_name
            folder.mkdir(parents=True)
            for i in range(per_class):
                shutil.copy(_real_jpeg(data_root, split, class_name, i), folder)
    return str(base)


def _plant(base: str, data_root, case: str) -> str:
    """Replaces ``test/cat/0001.jpg`` of ``base`` by the bad image ``case``; its path."""
    name, mode, size, image_format, _ = BAD[case]
    os.remove(os.path.join(base, "test", "cat", "0001.jpg"))
    path = os.path.join(base, "test", "cat", name)
    with open(path, "wb") as f:
        f.write(_encode(data_root, mode, size, image_format))
    return path


def _message(path: str, shape) -> str:
    return (f"^{re.escape(path)}: image is {'x'.join(map(str, shape))}, "
            "cifar10 images are 32x32x3")


@pytest.mark.parametrize("case", sorted(BAD))
def test_header_shape_is_what_tensorflow_decodes(tmp_path, data_root, case):
    """The channels come from the header (PNG colour type, JPEG frame components) and
    are what TensorFlow decodes, except CMYK: 4 components, which it decodes to RGB."""
    import tensorflow as tf

    _, mode, size, image_format, shape = BAD[case]
    data = _encode(data_root, mode, size, image_format)
    path = str(tmp_path / f"image.{image_format.lower()}")
    with open(path, "wb") as f:
        f.write(data)
    image = image_folder.read_image(path)
    assert image.shape == shape
    decoded = tuple(tf.io.decode_image(data, expand_animations=False).shape)
    assert decoded == (shape[:2] + (3,) if mode == "CMYK" else shape)


def test_real_cifar_and_imagenet_headers_have_their_channels(data_root):
    """Real files: CIFAR's JPEGs and PNGs are 32x32x3; the ImageNet sample's pencil
    sharpener is a grayscale JPEG (1 component), as TensorFlow decodes it."""
    import tensorflow as tf

    files = (sorted(glob.glob(os.path.join(data_root, "cifar10", JPG, "test", "cat", "*.jpg")))
             + sorted(glob.glob(os.path.join(data_root, "cifar10", "kaggle-train-png-first200",
                                             "frog", "*.png"))))
    assert files
    for path in files:
        assert image_folder.read_image(path).shape == (32, 32, 3), path
    gray = os.path.join(data_root, "imagenet", "sample-images", "n03908714_pencil_sharpener.JPEG")
    image = image_folder.read_image(gray)
    decoded = tf.io.decode_image(image.encoded, expand_animations=False)
    assert image.channels == 1 and image.shape == tuple(decoded.shape)


@pytest.mark.parametrize("name", [f"{JPG}/train/cat/0000.jpg",
                                  "kaggle-train-png-first200/frog/1.png"])
def test_an_impossible_channel_count_is_refused(tmp_path, data_root, name):
    """A JPEG frame of 2 components or a PNG colour type 5: nothing decodes them."""
    with open(os.path.join(data_root, "cifar10", name), "rb") as f:
        data = bytearray(f.read())
    if name.endswith(".png"):
        data[25] = 5  # IHDR colour type
        expected = "PNG colour type 5 is not one of"
    else:
        sof = next(i for i in range(2, len(data) - 1)
                   if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
        data[sof + 9] = 2  # SOFn component count
        expected = "the JPEG header says 2 colour components"
    bad = tmp_path / os.path.basename(name)
    bad.write_bytes(bytes(data))
    with pytest.raises(image_folder.ImageFolderError, match=f"^{re.escape(str(bad))}: {expected}"):
        image_folder.read_image(str(bad))


def test_registry_shape_is_the_cifar10_schema_shape():
    from model_garden.datasets import cifar10
    from model_garden.schemas import cifar10 as schema

    assert get_dataset("cifar10").image_shape == (32, 32, 3)
    assert get_dataset("cifar10").image_shape == (schema.HEIGHT, schema.WIDTH, schema.CHANNELS)
    assert (cifar10.HEIGHT, cifar10.WIDTH) == (32, 32)
    for name in ("flowers", "imagenet", "mnist", "census"):  # sizes vary / fixed by the format
        assert get_dataset(name).image_shape is None, name


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_wrong_shape_is_refused_naming_the_file_and_both_shapes(tmp_path, data_root, case):
    base = _small_folder(tmp_path, data_root, per_class=2)
    path = _plant(base, data_root, case)
    with pytest.raises(image_folder.ImageFolderError, match=_message(path, BAD[case][4]) + "$"):
        gen.file_example(path, list(CLASSES))
    good = os.path.join(base, "test", "cat", "0000.jpg")  # its neighbour is still read
    assert gen.file_example(good, list(CLASSES)).features.feature["image/height"].int64_list.value == [32]


@pytest.mark.parametrize("case,split", [("64x64 jpeg", "official"), ("rgba png", "hash")])
def test_the_executor_fails_before_writing_any_example(tmp_path, data_root, case, split):
    """The real ExampleGen executor (Beam in-process): the run fails at the bad file;
    no example file, no label names are written."""
    base = _small_folder(tmp_path, data_root)
    path = _plant(base, data_root, case)
    out = tmp_path / "out"
    with pytest.raises(image_folder.ImageFolderError, match=_message(path, BAD[case][4])):
        _run_do(base, str(out), SplitSpec.parse(split))
    written = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files]
    assert written == []  # TFX's WriteSplit reshuffles first: the write stage never ran


@pytest.mark.slow
def test_model_garden_run_fails_at_the_example_gen(tmp_path, data_root):
    """``model-garden run cifar10_resnet20``: ExampleGen FAILED, the cause on the last
    line (file and both shapes), nothing after it ran, nothing published."""
    from ml_metadata.proto import metadata_store_pb2

    from model_garden.pipelines import report

    base = _small_folder(tmp_path, data_root)
    path = _plant(base, data_root, "64x64 jpeg")
    root = tmp_path / "root"
    cmd = [sys.executable, "-m", "model_garden.cli", "run", "cifar10_resnet20",
           "--data-dir", base, "--output-root", str(root), "--train-steps", "1",
           "--eval-steps", "1", "--direct-running-mode", "in_memory"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    # One line names the component and the cause; then the run's full log and its report.
    error, log_line, report_line = proc.stderr.strip().splitlines()[-3:]
    assert report_line.startswith(f"report: {root / 'cifar10_resnet20' / 'reports'}")
    assert os.path.isfile(report_line.split(" ", 1)[1])
    prefix = "Error: the cifar10_resnet20 pipeline failed at ExampleGen (run "
    assert error.startswith(prefix), proc.stderr[-3000:]
    assert re.search("\\): ImageFolderError: " + _message(path, (64, 64, 3))[1:], error), error
    assert log_line.startswith(f"full log: {root / 'cifar10_resnet20' / 'logs'}"), log_line
    metadata = str(root / "cifar10_resnet20" / "metadata.sqlite")
    runs = {r.node_id: r for r in report.component_runs(metadata)}
    assert runs["ExampleGen"].state == "FAILED"
    assert not {"Transform", "Trainer", "Evaluator", "Pusher"} & set(runs), runs
    store = report.open_store(metadata)
    outputs = [e.artifact_id for e in store.get_events_by_execution_ids(
        [runs["ExampleGen"].execution_id]) if e.type == e.OUTPUT]
    states = {a.state for a in store.get_artifacts_by_id(outputs)}
    assert metadata_store_pb2.Artifact.LIVE not in states
