"""ImageNet labels (model_garden.datasets.imagenet) on the real sample in shared/data/imagenet.

The sample's ``sample-images-labels.csv`` holds each image's synset and its
0-based index in ``LOC_synset_mapping.txt``; TF-Slim's labels are that index
+ 1 (label 0 is the background class, tensorflow/models
``research/slim/datasets/build_imagenet_data.py``), or the index itself with
``labels_offset=1``.
"""

import csv
import os

import pytest

from model_garden.datasets import imagenet


@pytest.fixture(scope="module")
def sample_rows(imagenet_dir):
    with open(os.path.join(imagenet_dir, imagenet.SAMPLE_LABELS), newline="") as f:
        return list(csv.DictReader(f))


def test_the_mapping_is_the_canonical_1000_synsets(imagenet_dir):
    label_map = imagenet.read_synset_mapping(os.path.join(imagenet_dir, imagenet.SYNSET_MAPPING))
    assert len(label_map.synsets) == 1000 and list(label_map.synsets) == sorted(label_map.synsets)
    assert label_map.num_classes == 1001
    assert label_map.synsets[0] == "n01440764" and label_map.names[0] == "tench, Tinca tinca"
    assert label_map.label("n01440764") == 1  # 0 is the background
    text = label_map.labels_txt().splitlines()
    assert text[0] == "0:background" and text[1] == "1:tench, Tinca tinca" and len(text) == 1001
    one_less = imagenet.read_synset_mapping(
        os.path.join(imagenet_dir, imagenet.SYNSET_MAPPING), labels_offset=1)
    assert one_less.num_classes == 1000 and one_less.label("n01440764") == 0
    assert one_less.labels_txt().splitlines()[0] == "0:tench, Tinca tinca"


@pytest.mark.parametrize("labels_offset", [0, 1])
def test_the_sample_gets_100_distinct_labels_that_match_its_csv(imagenet_dir, sample_rows,
                                                                 labels_offset):
    label_map = imagenet.read_synset_mapping(
        os.path.join(imagenet_dir, imagenet.SYNSET_MAPPING), labels_offset)
    labels = imagenet.read_validation_labels(os.path.join(imagenet_dir, imagenet.SAMPLE_LABELS))
    got = list(imagenet.labelled_images(os.path.join(imagenet_dir, "sample-images"), labels,
                                        label_map))
    assert len(got) == 100 and len({label for _, label, _ in got}) == 100
    expected = {r["filename"]: int(r["label_index"]) + 1 - labels_offset for r in sample_rows}
    assert {os.path.basename(p): label for p, label, _ in got} == expected
    names = dict(zip(label_map.synsets, label_map.names))
    for row in sample_rows:
        assert names[row["synset"]] == row["class_names"]


def test_slim_and_kaggle_validation_files_give_the_same_labels(tmp_path, sample_rows):
    """The sample's synsets written in Slim's and Kaggle's validation forms read back."""
    synsets = [r["synset"] for r in sample_rows]
    slim = tmp_path / imagenet.SLIM_VALIDATION_LABELS
    slim.write_text("".join(s + "\n" for s in synsets))
    kaggle = tmp_path / imagenet.KAGGLE_VALIDATION_LABELS
    kaggle.write_text("ImageId,PredictionString\n" + "".join(
        f"ILSVRC2012_val_{k:08d},{s} 1 2 30 40 {s} 5 6 70 80\n" for k, s in enumerate(synsets, 1)))
    expected = {f"ILSVRC2012_val_{k:08d}.JPEG": s for k, s in enumerate(synsets, 1)}
    assert imagenet.read_validation_labels(str(slim)) == expected
    assert imagenet.read_validation_labels(str(kaggle)) == expected


@pytest.mark.parametrize("content,message", [
    ("n01440764 tench\nn0144 goldfish\n", r":2: not '<synset> <names>'"),
    ("n01443537 goldfish\nn01440764 tench\n", r":2: synset n01440764 is out of the sorted order"),
    ("", "no synsets"),
])
def test_a_bad_mapping_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / imagenet.SYNSET_MAPPING
    path.write_text(content)
    with pytest.raises(imagenet.ImageNetFormatError, match=message) as e:
        imagenet.read_synset_mapping(str(path))
    assert str(path) in str(e.value)


def test_bad_label_files_and_unlabelled_images_name_the_file(tmp_path, imagenet_dir):
    bad = tmp_path / imagenet.SLIM_VALIDATION_LABELS
    bad.write_text("n01440764\ntench\n")
    with pytest.raises(imagenet.ImageNetFormatError, match=r":2: 'tench' is not a synset"):
        imagenet.read_validation_labels(str(bad))
    twice = tmp_path / "labels.csv"
    twice.write_text("filename,synset\na.JPEG,n01440764\na.JPEG,n01443537\n")
    with pytest.raises(imagenet.ImageNetFormatError, match=r":3: a.JPEG is listed twice"):
        imagenet.read_validation_labels(str(twice))
    label_map = imagenet.read_synset_mapping(os.path.join(imagenet_dir, imagenet.SYNSET_MAPPING))
    folder = os.path.join(imagenet_dir, "sample-images")
    first = sorted(os.listdir(folder))[0]
    with pytest.raises(imagenet.ImageNetFormatError, match="no label in the label file") as e:
        list(imagenet.labelled_images(folder, {}, label_map))
    assert first in str(e.value)
    with pytest.raises(imagenet.ImageNetFormatError, match="n09999999"):
        list(imagenet.labelled_images(folder, {first: "n09999999"}, label_map))


def test_label_files_that_are_not_utf8_or_not_csv_are_format_errors(tmp_path, imagenet_dir):
    """Found by tests/test_fuzz_readers.py (issue 13): one flipped byte raised
    UnicodeDecodeError, a NUL byte csv.Error, neither naming the file."""
    with open(os.path.join(imagenet_dir, imagenet.SYNSET_MAPPING), "rb") as f:
        mapping = bytearray(f.read())
    mapping[0] ^= 0x80  # 'n' -> 0xee: not UTF-8
    path = tmp_path / imagenet.SYNSET_MAPPING
    path.write_bytes(bytes(mapping))
    with pytest.raises(imagenet.ImageNetFormatError,
                       match=f"^{path}:1: not UTF-8 text \\(byte 0xee at offset 0\\)"):
        imagenet.read_synset_mapping(str(path))
    with open(os.path.join(imagenet_dir, imagenet.SAMPLE_LABELS), "rb") as f:
        labels = f.read()
    third = labels.index(b"\n", labels.index(b"\n") + 1) + 1
    csv_path = tmp_path / imagenet.SAMPLE_LABELS
    csv_path.write_bytes(labels[:third + 3] + b"\x00" + labels[third + 3:])
    with pytest.raises(imagenet.ImageNetFormatError, match=f"^{csv_path}:3: not CSV"):
        imagenet.read_validation_labels(str(csv_path))
    # A leading byte order mark (a spreadsheet's re-save) is dropped, as for census.
    csv_path.write_bytes(b"\xef\xbb\xbf" + labels)
    assert imagenet.read_validation_labels(str(csv_path)) == imagenet.read_validation_labels(
        os.path.join(imagenet_dir, imagenet.SAMPLE_LABELS))


def test_a_kaggle_row_without_a_prediction_names_file_and_line(tmp_path):
    """Found in review (issue 13): a row of one column was an IndexError."""
    path = tmp_path / imagenet.KAGGLE_VALIDATION_LABELS
    path.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 1 2 3 4\n"
                    "ILSVRC2012_val_00000002\n")
    with pytest.raises(imagenet.ImageNetFormatError, match=f"^{path}:3: '' is not a synset"):
        imagenet.read_validation_labels(str(path))
