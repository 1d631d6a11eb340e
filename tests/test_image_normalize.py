"""Messy real images made from the shared photos: re-encoded to RGB JPEG, kept, or refused by name.

Cases from TF-Slim's ``build_imagenet_data.py`` (a PNG inside a ``.JPEG``,
CMYK JPEGs) and the issue's list (grayscale, truncated, empty, not an image).
CMYK copies are written with Pillow (TF cannot encode CMYK).
"""

import glob
import io
import os

import numpy as np
import pytest

from model_garden.components import image_normalize as norm


@pytest.fixture(scope="module")
def photo(data_root):
    return sorted(glob.glob(os.path.join(data_root, "flowers", "flower_photos", "daisy", "*.jpg")))[0]


def _decode(data):
    import tensorflow as tf

    return tf.io.decode_image(data, expand_animations=False).numpy()


def _pixels(path):
    with open(path, "rb") as f:
        return _decode(f.read())


def test_an_rgb_jpeg_is_kept_byte_for_byte(photo):
    with open(photo, "rb") as f:
        data = f.read()
    out = norm.normalize_image(data, photo)
    assert out.encoded == data and out.image_format == "jpeg"
    assert (out.height, out.width) == _pixels(photo).shape[:2]


def test_cmyk_jpeg_becomes_rgb_jpeg(photo):
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(photo).convert("CMYK").save(buffer, "JPEG", quality=95)
    cmyk = buffer.getvalue()
    out = norm.normalize_image(cmyk, "n0_cmyk.JPEG")
    assert out.image_format == "jpeg" and out.encoded != cmyk
    pixels = _decode(out.encoded)
    original = _pixels(photo)
    assert pixels.shape == original.shape and pixels.shape[-1] == 3
    assert np.abs(pixels.astype(float) - original).mean() < 6  # two lossy encodings apart


def test_png_named_jpeg_and_grayscale_become_rgb_jpeg(photo, tmp_path):
    import tensorflow as tf

    original = _pixels(photo)
    png = tf.io.encode_png(original).numpy()
    out = norm.normalize_image(png, "n01_png_inside.JPEG")
    assert out.image_format == "jpeg" and out.encoded[:3] == b"\xff\xd8\xff"
    assert np.abs(_decode(out.encoded).astype(float) - original).mean() < 2
    # The same PNG under a .png name is an RGB PNG: kept.
    assert norm.normalize_image(png, "flower.png").encoded == png
    gray = tf.io.encode_jpeg(tf.image.rgb_to_grayscale(original)).numpy()
    out = norm.normalize_image(gray, "gray.jpg")
    decoded = _decode(out.encoded)
    assert out.image_format == "jpeg" and decoded.shape == original.shape
    # R = G = B, up to the JPEG chroma rounding.
    assert np.abs(decoded[..., 0].astype(int) - decoded[..., 2]).max() <= 3


def test_the_real_grayscale_imagenet_sample_becomes_rgb(data_root):
    from model_garden.datasets.image_folder import jpeg_frame

    folder = os.path.join(data_root, "imagenet", "sample-images")
    gray = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        if data[:3] == b"\xff\xd8\xff" and jpeg_frame(data)[2] == 1:
            gray.append((name, data))
    assert len(gray) == 1, [n for n, _ in gray]  # PROVENANCE.md: one grayscale image
    name, data = gray[0]
    out = norm.normalize_image(data, name)
    assert _decode(out.encoded).shape[-1] == 3 and out.encoded != data


@pytest.mark.parametrize("case", ["truncated", "empty", "not an image"])
def test_a_broken_file_is_one_error_naming_it(photo, case):
    with open(photo, "rb") as f:
        data = f.read()
    data = {"truncated": data[: len(data) // 2], "empty": b"",
            "not an image": b"ImageId,PredictionString\n"}[case]
    with pytest.raises(norm.BadImageError, match=r"broken\.JPEG: ") as e:
        norm.normalize_image(data, "/data/broken.JPEG")
    assert ("empty file" if case == "empty" else "not a decodable image") in str(e.value)
