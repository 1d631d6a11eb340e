"""Real images as TF-Slim's converters store them: RGB JPEG (or RGB PNG), decodable.

tensorflow/models ``research/slim/datasets/build_imagenet_data.py``
(``_process_image``, ``ImageCoder``) re-encodes the ImageNet files that are
not what their name says: a PNG inside a ``.JPEG`` and CMYK JPEGs become RGB
JPEG at quality 100. Here every image is decoded once (which also finds
undecodable and truncated files) and kept byte for byte when it is already a
3-channel JPEG, or an 8-bit RGB PNG named ``.png``; anything else (a PNG
named ``.jpg``/``.JPEG``, CMYK, grayscale, RGBA or palette images) becomes an
RGB JPEG at quality 100.
"""

from model_garden.datasets.image_folder import EncodedImage, ImageFolderError, jpeg_frame

JPEG_QUALITY = 100  # build_imagenet_data.py ImageCoder: encode_jpeg(..., quality=100)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BadImageError(ValueError):
    """An image file that cannot be decoded (empty, truncated, not an image); names the file."""


def _keep_as_is(data: bytes, path: str) -> str:
    """``"jpeg"``/``"png"`` when the original bytes can be stored unchanged, else ``""``."""
    if data[:3] == b"\xff\xd8\xff":
        try:
            return "jpeg" if jpeg_frame(data, path)[2] == 3 else ""
        except ImageFolderError:
            return ""
    # PNG IHDR: bit depth at byte 24, colour type at byte 25 (2 = RGB).
    if (data[:8] == _PNG_SIGNATURE and len(data) > 25 and data[24] == 8 and data[25] == 2
            and path.lower().endswith(".png")):
        return "png"
    return ""


def normalize_image(data: bytes, path: str) -> EncodedImage:
    """``data`` (the bytes of the file ``path``) as a decodable RGB JPEG or PNG.

    Returns:
      :class:`~model_garden.datasets.image_folder.EncodedImage`: the original
      bytes when they are a 3-channel JPEG or an 8-bit RGB ``.png``, else an
      RGB JPEG (quality 100) of the decoded pixels; ``height`` and ``width``
      of the decoded image, ``channels`` 3.

    Raises:
      BadImageError: the file is empty, truncated or not an image (names ``path``).
    """
    import tensorflow as tf

    if not data:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    try:
        pixels = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadImageError(f"{path}: not a decodable image ({reason})") from None
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    image_format = _keep_as_is(data, path)
    if image_format:
        return EncodedImage(data, image_format, height, width, channels=3)
    encoded = tf.io.encode_jpeg(pixels, format="rgb", quality=JPEG_QUALITY).numpy()
    return EncodedImage(encoded, "jpeg", height, width, channels=3)
