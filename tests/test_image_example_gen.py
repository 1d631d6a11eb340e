"""The image ExampleGen's ``Do()`` on the real flower photos and ImageNet sample.

Run as TFX's executor tests do (the exec properties ``make_example_gen``
gives the component), with Beam's default in-process DirectRunner; the slow
end-to-end test runs it in worker processes under ``BeamDagRunner``. Every
messy file is made from a real photo: a CMYK copy, a PNG renamed ``.JPEG``,
a grayscale copy, a truncated copy, a zero-byte file and a text file.
"""

import csv
import glob
import hashlib
import io
import os
import shutil

import numpy as np
import pytest

from model_garden.components import image_example as ie
from model_garden.components import image_example_gen as gen
from model_garden.components.file_example_gen import OPTIONS_KEY
from model_garden.components.image_normalize import BadImageError
from model_garden.components.input_spans import INPUT_SPANS_KEY
from model_garden.datasets import SplitSpec, image_layouts, imagenet

FLOWER_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
SLIM_KEYS = {ie.IMAGE_ENCODED_KEY, ie.IMAGE_FORMAT_KEY, ie.LABEL_KEY, ie.CLASS_TEXT_KEY,
             ie.HEIGHT_KEY, ie.WIDTH_KEY}


def run_gen(dataset, input_base, out_dir, split="hash:9/1", beam_args=(), **options):
    """Runs Executor.Do with the exec properties of ``make_example_gen``; returns the artifact."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs

    component = gen.make_example_gen(dataset, str(input_base), SplitSpec.parse(split), **options)
    props = component.exec_properties
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    exec_properties = {k: props[k] for k in (specs.INPUT_BASE_KEY, specs.INPUT_CONFIG_KEY,
                                             specs.OUTPUT_CONFIG_KEY, OPTIONS_KEY,
                                             INPUT_SPANS_KEY)}
    executor = gen.Executor(BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args)))
    executor.Do({}, {specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


def shard_files(examples, split):
    return sorted(glob.glob(os.path.join(examples.uri, f"Split-{split}", "*")))


def read_split(examples, split):
    """Every record of ``split`` as ``{key: value}`` (bytes decoded except the image)."""
    import tensorflow as tf

    records = []
    for path in shard_files(examples, split):
        for raw in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            feature = tf.train.Example.FromString(raw.numpy()).features.feature
            row = {}
            for key, value in feature.items():
                if value.int64_list.value:
                    row[key] = value.int64_list.value[0]
                elif key == ie.IMAGE_ENCODED_KEY:
                    row[key] = value.bytes_list.value[0]
                else:
                    row[key] = value.bytes_list.value[0].decode()
            records.append(row)
    return records


def prop(examples, name):
    value = examples.mlmd_artifact.custom_properties[name]
    return value.int_value if value.HasField("int_value") else value.string_value


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _decode(data):
    import tensorflow as tf

    return tf.io.decode_image(data, expand_animations=False).numpy()


@pytest.fixture(scope="module")
def flowers(data_root):
    return os.path.join(data_root, "flowers")


@pytest.fixture(scope="module")
def photos(flowers):
    """``{sha256 of the file: (path, class name)}`` of the 400 real photos."""
    out = {}
    for path in glob.glob(os.path.join(flowers, "flower_photos", "*", "*.jpg")):
        with open(path, "rb") as f:
            out[_sha(f.read())] = (path, os.path.basename(os.path.dirname(path)))
    assert len(out) == 400
    return out


@pytest.fixture(scope="module")
def flowers_run(flowers, tmp_path_factory):
    return run_gen("flowers", flowers, tmp_path_factory.mktemp("flowers") / "examples")


def test_every_flower_photo_is_one_example_with_slim_keys(flowers_run, photos):
    seen = {}
    for split in ("train", "test"):
        for row in read_split(flowers_run, split):
            assert set(row) == SLIM_KEYS
            path, class_name = photos[_sha(row[ie.IMAGE_ENCODED_KEY])]  # the file, byte for byte
            assert row[ie.LABEL_KEY] == FLOWER_CLASSES.index(class_name)
            assert row[ie.CLASS_TEXT_KEY] == class_name
            assert row[ie.IMAGE_FORMAT_KEY] == "jpeg"
            shape = _decode(row[ie.IMAGE_ENCODED_KEY]).shape
            assert (row[ie.HEIGHT_KEY], row[ie.WIDTH_KEY]) == shape[:2] and shape[2] == 3
            seen[path] = split
    assert len(seen) == 400
    test = sum(1 for s in seen.values() if s == "test")
    assert 20 <= test <= 60  # hash:9/1 of 400: 40 expected
    assert prop(flowers_run, "images_written") == 400
    assert prop(flowers_run, "images_reencoded") == 0
    assert prop(flowers_run, "images_skipped") == 0


def test_labels_txt_and_label_names_are_written_beside_the_splits(flowers_run):
    with open(os.path.join(flowers_run.uri, gen.LABELS_FILE)) as f:
        assert f.read() == "".join(f"{i}:{n}\n" for i, n in enumerate(FLOWER_CLASSES))
    with open(os.path.join(flowers_run.uri, gen.LABEL_NAMES_FILE)) as f:
        assert f.read().split() == FLOWER_CLASSES
    with open(os.path.join(flowers_run.uri, gen.SKIPPED_FILE)) as f:
        assert f.read() == ""
    assert sorted(os.listdir(flowers_run.uri)) == sorted(
        [gen.LABELS_FILE, gen.LABEL_NAMES_FILE, gen.SKIPPED_FILE, "Split-train", "Split-test"])


def test_slim_shard_count_and_shuffled_shards(flowers_run):
    for split in ("train", "test"):
        names = [os.path.basename(p) for p in shard_files(flowers_run, split)]
        assert names == [f"data_tfrecord-{i:05d}-of-00005.gz" for i in range(5)]
    import tensorflow as tf

    first = shard_files(flowers_run, "train")[0]
    labels = [tf.train.Example.FromString(r.numpy()).features.feature[ie.LABEL_KEY]
              .int64_list.value[0]
              for r in tf.data.TFRecordDataset(first, compression_type="GZIP").take(20)]
    assert len(set(labels)) >= 3  # not sorted by class: shuffled before sharding


def test_a_rerun_writes_identical_shards(flowers, flowers_run, tmp_path):
    again = run_gen("flowers", flowers, tmp_path / "again")
    for split in ("train", "test"):
        for a, b in zip(shard_files(flowers_run, split), shard_files(again, split), strict=True):
            with open(a, "rb") as fa, open(b, "rb") as fb:
                assert fa.read() == fb.read(), a


def test_a_new_photo_moves_no_other_photo_between_splits(flowers, flowers_run, photos, tmp_path):
    copy = tmp_path / "flowers"
    shutil.copytree(flowers, copy)
    original = sorted(glob.glob(str(copy / "flower_photos" / "roses" / "*.jpg")))[0]
    shutil.copy(original, copy / "flower_photos" / "roses" / "zz_new_copy.jpg")
    grown = run_gen("flowers", copy, tmp_path / "examples")
    for split in ("train", "test"):
        before = sorted(r[ie.IMAGE_ENCODED_KEY] for r in read_split(flowers_run, split))
        after = sorted(r[ie.IMAGE_ENCODED_KEY] for r in read_split(grown, split))
        new = list(after)
        for data in before:
            new.remove(data)  # every earlier photo is still in its split
        assert all(_sha(d) == _sha(open(original, "rb").read()) for d in new)
    assert prop(grown, "images_written") == 401


def test_shard_counts_are_configurable_and_capped_at_the_images(flowers, tmp_path):
    examples = run_gen("flowers", flowers, tmp_path / "examples", train_shards=3, test_shards=500)
    assert len(shard_files(examples, "train")) == 3
    test = read_split(examples, "test")
    assert len(shard_files(examples, "test")) == len(test)  # one image per shard


def test_the_flowers_have_no_official_split(flowers):
    with pytest.raises(gen.ImageExampleGenError, match="no official train/test split.*--split hash"):
        gen.make_example_gen("flowers", flowers, SplitSpec.parse("official"))


@pytest.mark.parametrize("options, message", [
    ({"train_shards": -1}, "train_shards must be a whole number"),
    ({"test_shards": 2.5}, "test_shards must be a whole number"),
    ({"labels_offset": 2}, "labels_offset must be 0 or 1"),
])
def test_bad_options_are_refused_before_anything_runs(flowers, options, message):
    with pytest.raises(gen.ImageExampleGenError, match=message):
        gen.make_example_gen("flowers", flowers, SplitSpec.parse("hash"), **options)


def test_labels_offset_is_imagenets_only(flowers):
    with pytest.raises(image_layouts.LayoutError, match="labels_offset is ImageNet's"):
        gen.make_example_gen("flowers", flowers, SplitSpec.parse("official"), labels_offset=1)


def test_shards_are_spread_longest_first_over_the_workers():
    tasks = [gen.ShardTask("train", i, 5, 640, "", "", "") for i in range(5)] + [
        gen.ShardTask("test", i, 5, 160, "", "", "") for i in range(5)]
    slots = gen.assign_slots(tasks, 2)
    loads = sorted(sum(t.images for t in slot) for slot in slots)
    assert loads == [1920, 2080]  # the best split of these ten shards over two workers
    assert sorted((t.split, t.index) for slot in slots for t in slot) == sorted(
        (t.split, t.index) for t in tasks)
    assert len(gen.assign_slots(tasks[:1], 4)) == 1


# --- ImageNet -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_csv(imagenet_dir):
    with open(os.path.join(imagenet_dir, imagenet.SAMPLE_LABELS), newline="") as f:
        return {row["filename"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def sample_files(imagenet_dir):
    """``{sha256: file name}`` of the 100 sample images."""
    out = {}
    for path in glob.glob(os.path.join(imagenet_dir, "sample-images", "*.JPEG")):
        with open(path, "rb") as f:
            out[_sha(f.read())] = os.path.basename(path)
    return out


@pytest.mark.parametrize("labels_offset", [0, 1])
def test_the_imagenet_sample_converts_with_100_labels_matching_its_csv(
        imagenet_dir, sample_csv, sample_files, tmp_path, labels_offset):
    examples = run_gen("imagenet", imagenet_dir, tmp_path / "examples", split="hash:4/1",
                       labels_offset=labels_offset)
    rows = read_split(examples, "train") + read_split(examples, "test")
    assert len(rows) == 100
    assert len({r[ie.LABEL_KEY] for r in rows}) == 100
    grayscale = "n03908714_pencil_sharpener.JPEG"
    for row in rows:
        assert set(row) == SLIM_KEYS | {ie.SYNSET_KEY}
        name = sample_files.get(_sha(row[ie.IMAGE_ENCODED_KEY]), grayscale)  # re-encoded: no match
        expected = sample_csv[name]
        assert row[ie.SYNSET_KEY] == expected["synset"]
        assert row[ie.LABEL_KEY] == int(expected["label_index"]) + 1 - labels_offset
        assert row[ie.CLASS_TEXT_KEY] == expected["class_names"]
        assert _decode(row[ie.IMAGE_ENCODED_KEY]).shape[2] == 3
    [gray] = [r for r in rows if r[ie.SYNSET_KEY] == sample_csv[grayscale]["synset"]]
    assert _sha(gray[ie.IMAGE_ENCODED_KEY]) not in sample_files  # the grayscale one, as RGB JPEG
    assert prop(examples, "images_reencoded") == 1
    with open(os.path.join(examples.uri, gen.LABELS_FILE)) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1001 - labels_offset
    first = "0:background" if labels_offset == 0 else "0:tench, Tinca tinca"
    assert lines[0] == first and lines[-1] == f"{1000 - labels_offset}:toilet tissue, " \
                                               "toilet paper, bathroom tissue"


def _official_imagenet(imagenet_dir, sample_csv, root, kind):
    """An official ImageNet layout from the sample: 80 train images in synset folders,
    the other 20 as ``ILSVRC2012_val_*.JPEG`` with Slim's or Kaggle's label file."""
    names = sorted(sample_csv)
    shutil.copy(os.path.join(imagenet_dir, imagenet.SYNSET_MAPPING), root)
    train = root / ("train" if kind == "slim" else "ILSVRC/Data/CLS-LOC/train")
    val = root / ("validation" if kind == "slim" else "ILSVRC/Data/CLS-LOC/val")
    val.mkdir(parents=True)
    for name in names[:80]:
        folder = train / sample_csv[name]["synset"]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(imagenet_dir, "sample-images", name), folder / name)
    validation = {}
    for k, name in enumerate(names[80:], start=1):
        val_name = f"ILSVRC2012_val_{k:08d}.JPEG"
        shutil.copy(os.path.join(imagenet_dir, "sample-images", name), val / val_name)
        validation[val_name] = sample_csv[name]["synset"]
    if kind == "slim":
        (root / imagenet.SLIM_VALIDATION_LABELS).write_text(
            "".join(validation[f"ILSVRC2012_val_{k:08d}.JPEG"] + "\n" for k in range(1, 21)))
    else:
        (root / imagenet.KAGGLE_VALIDATION_LABELS).write_text("ImageId,PredictionString\n" + "".join(
            f"{n[:-5]},{s} 1 2 3 4\n" for n, s in sorted(validation.items())))
    return names, validation


@pytest.mark.parametrize("kind", ["slim", "kaggle"])
def test_official_imagenet_layouts_keep_train_and_validation(imagenet_dir, sample_csv, tmp_path,
                                                             kind):
    root = tmp_path / "imagenet"
    root.mkdir()
    names, validation = _official_imagenet(imagenet_dir, sample_csv, root, kind)
    examples = run_gen("imagenet", root, tmp_path / "examples", split="official",
                       train_shards=4, test_shards=2)
    train, test = read_split(examples, "train"), read_split(examples, "test")
    expected_train = sorted(int(sample_csv[n]["label_index"]) + 1 for n in names[:80])
    assert sorted(r[ie.LABEL_KEY] for r in train) == expected_train
    by_synset = {r["synset"]: int(r["label_index"]) + 1 for r in sample_csv.values()}
    assert sorted(r[ie.LABEL_KEY] for r in test) == sorted(by_synset[s] for s in validation.values())
    assert [len(shard_files(examples, s)) for s in ("train", "test")] == [4, 2]


def test_imagenet_without_its_files_says_how_to_get_it(tmp_path):
    with pytest.raises(image_layouts.LayoutError, match="LOC_synset_mapping.txt.*without an account"):
        gen.make_example_gen("imagenet", str(tmp_path), SplitSpec.parse("hash"))


# --- messy files ------------------------------------------------------------------------

@pytest.fixture
def messy(flowers, tmp_path):
    """Two real classes of 6 photos each, plus one of each messy case in ``roses``.

    Returns ``(folder, {case: path}, original photo of the re-encoded cases)``.
    """
    import tensorflow as tf
    from PIL import Image

    root = tmp_path / "messy" / "flower_photos"
    for class_name in ("daisy", "roses"):
        (root / class_name).mkdir(parents=True)
        for path in sorted(glob.glob(os.path.join(flowers, "flower_photos", class_name, "*.jpg")))[:6]:
            shutil.copy(path, root / class_name)
    photo = sorted(glob.glob(os.path.join(flowers, "flower_photos", "roses", "*.jpg")))[10]
    with open(photo, "rb") as f:
        data = f.read()
    cases = {k: root / "roses" / n for k, n in [
        ("cmyk", "cmyk.jpg"), ("png_named_jpeg", "png_inside.JPEG"), ("grayscale", "gray.jpg"),
        ("truncated", "truncated.jpg"), ("empty", "empty.jpg"), ("not_image", "notes.jpg")]}
    Image.open(photo).convert("CMYK").save(cases["cmyk"], "JPEG", quality=95)
    cases["png_named_jpeg"].write_bytes(tf.io.encode_png(_decode(data)).numpy())
    Image.open(photo).convert("L").save(cases["grayscale"], "JPEG", quality=95)
    cases["truncated"].write_bytes(data[: len(data) // 2])
    cases["empty"].write_bytes(b"")
    cases["not_image"].write_text("these are my notes about roses\n")
    return str(root.parent), {k: str(v) for k, v in cases.items()}, photo


def test_a_bad_image_fails_the_run_naming_the_file(messy, tmp_path):
    folder, cases, _ = messy
    bad = {cases[k] for k in ("truncated", "empty", "not_image")}
    with pytest.raises(BadImageError) as error:
        run_gen("flowers", folder, tmp_path / "examples", train_shards=1, test_shards=1)
    named = [p for p in bad if p in str(error.value)]
    assert len(named) == 1 and "--skip-bad-images" in str(error.value)


def test_skip_bad_images_counts_and_lists_them_and_reencodes_the_rest(messy, tmp_path):
    folder, cases, photo = messy
    examples = run_gen("flowers", folder, tmp_path / "examples", skip_bad_images=True)
    rows = read_split(examples, "train") + read_split(examples, "test")
    assert len(rows) == 12 + 3  # the photos and the three re-encoded copies
    assert prop(examples, "images_skipped") == 3
    assert prop(examples, "images_reencoded") == 3
    assert prop(examples, "images_written") == 15
    with open(os.path.join(examples.uri, gen.SKIPPED_FILE)) as f:
        listed = f.read().splitlines()
    assert sorted(line.split(": ", 1)[0] for line in listed) == sorted(
        cases[k] for k in ("truncated", "empty", "not_image"))
    assert any("empty file" in line for line in listed)
    original = _decode(open(photo, "rb").read())
    originals = {_sha(open(p, "rb").read()) for p in glob.glob(os.path.join(folder, "*", "*", "*"))}
    reencoded = [r for r in rows if _sha(r[ie.IMAGE_ENCODED_KEY]) not in originals]
    assert len(reencoded) == 3
    for row in reencoded:
        pixels = _decode(row[ie.IMAGE_ENCODED_KEY])
        assert row[ie.IMAGE_FORMAT_KEY] == "jpeg" and pixels.shape == original.shape
        assert (row[ie.HEIGHT_KEY], row[ie.WIDTH_KEY]) == original.shape[:2]
        assert row[ie.LABEL_KEY] == 1 and row[ie.CLASS_TEXT_KEY] == "roses"
    # The PNG copy is lossless, so its JPEG (quality 100) is within rounding of the photo.
    errors = sorted(np.abs(_decode(r[ie.IMAGE_ENCODED_KEY]).astype(float) - original).mean()
                    for r in reencoded)
    assert errors[0] < 1.5


def test_spans_with_other_classes_are_refused(flowers, tmp_path):
    for span, classes in ((1, ["daisy", "roses"]), (2, ["daisy", "tulips"])):
        for class_name in classes:
            folder = tmp_path / "in" / f"span-{span}" / "flower_photos" / class_name
            folder.mkdir(parents=True)
            for path in sorted(glob.glob(os.path.join(flowers, "flower_photos", class_name,
                                                      "*.jpg")))[:3]:
                shutil.copy(path, folder)
    from model_garden.components.input_spans import resolve_spans

    component = gen.make_example_gen("flowers", str(tmp_path / "in"), SplitSpec.parse("hash"),
                                     resolve_spans(str(tmp_path / "in"), 2).to_json())
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    with pytest.raises(gen.ImageExampleGenError, match="span-1 has other classes than .*span-2"):
        gen.Executor().Do({}, {specs.EXAMPLES_KEY: [examples]}, dict(component.exec_properties))


# --- model-garden convert: the errors before anything runs ------------------------------

@pytest.mark.parametrize("args, message", [
    (["convert", "mnist", "--shards", "5"], "are for the image datasets"),
    (["convert", "flowers", "--shards", "0"], "use N or TRAIN/TEST"),
    (["convert", "flowers", "--split", "official"], "no official train/test split"),
    (["convert", "lenet"], "no dataset 'lenet'|unknown dataset|lenet"),
])
def test_convert_refuses_bad_arguments_in_one_line(args, message, tmp_path):
    from click.testing import CliRunner

    from model_garden import cli

    result = CliRunner().invoke(cli.cli, args + ["--output-root", str(tmp_path)])
    assert result.exit_code == 2 or result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    import re

    assert re.search(message, result.output), result.output
    assert not os.path.exists(tmp_path / "data" / "flowers" / "pipeline")
