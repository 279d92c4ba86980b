"""Image files and arrays as the pipeline takes them: 8-bit BGR [H, W, 3] (numpy + OpenCV only).

    frame = read_image("person.jpg")      # uint8 BGR, or one ImageError line saying what is wrong with the file
    frame = to_bgr8(array)                # grayscale, BGRA, gray + alpha and 16-bit arrays -> uint8 BGR

``read_image`` refuses a missing path, a folder, an empty file, a file OpenCV cannot decode, and a JPEG or PNG that
is truncated (OpenCV would otherwise decode a cut JPEG with a grey bottom half and the run would report no persons).
Files are read with ``IMREAD_UNCHANGED`` (no EXIF rotation, as the CLI always did); alpha is dropped, not blended;
16-bit images keep their top 8 bits, as OpenCV's ``IMREAD_COLOR`` does.
"""

import os

import cv2
import numpy as np

from goatpose_edge.errors import GoatPoseError

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageError(GoatPoseError, ValueError):
    """An image file or array that cannot be used as a frame."""


def to_bgr8(image, what: str = "image") -> np.ndarray:
    """``image`` as a uint8 BGR array [H, W, 3]: [H, W] / [H, W, 1] grayscale is expanded, [H, W, 2] gray + alpha and
    [H, W, 4] BGRA lose alpha, uint16 keeps its top 8 bits. A uint8 BGR array comes back as it is (no copy); an empty
    one as an empty [H, W, 3] array. Other dtypes and channel counts raise ``ImageError`` naming ``what``."""
    if not isinstance(image, np.ndarray):
        raise ImageError("{} must be an image array, got {}".format(what, type(image).__name__))
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ImageError("{} has shape {}: expected [H, W] or [H, W, C] with 1, 2, 3 or 4 channels".format(
            what, list(image.shape)))
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError("{} has {} pixels: give an 8- or 16-bit image".format(what, image.dtype))
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    height, width = image.shape[:2]
    if image.size == 0:
        return np.zeros((height, width, 3), np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    gray = np.ascontiguousarray(image if image.ndim == 2 else image[:, :, 0])  # [H, W, 2] is gray + alpha
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _jpeg_end_found(data: bytes) -> bool:
    """Whether a JPEG's marker structure reaches its end-of-image marker (FFD9) before the file ends: segments are
    skipped by their lengths (an EXIF thumbnail's own FFD9 does not count), entropy-coded data up to the next marker
    (FF00 stuffing, FFD0-FFD7 restarts and FF fill bytes are not markers). Bytes after FFD9 (a motion photo's video,
    camera trailers) are allowed."""
    size, pos = len(data), 2
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= size:
            return False
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:  # not a segment: keep scanning
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > size:
            return False
        length = (data[pos + 2] << 8) | data[pos + 3]
        if length < 2:
            return False
        pos += 2 + length


def _jpeg_complete(data: bytes) -> bool:
    tail = data.rstrip(b"\x00\r\n\t ")  # some writers pad the file after FFD9
    return tail.endswith(b"\xff\xd9") or _jpeg_end_found(data)


def _png_complete(data: bytes) -> bool:
    """Whether a PNG's chunks ([length 4][type 4][data][crc 4]) reach IEND within the file."""
    size, pos = len(data), len(_PNG_MAGIC)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if pos > size:
            return False
        if kind == b"IEND":
            return True
    return False


def read_image(path: str) -> np.ndarray:
    """The image file at ``path`` as uint8 BGR [H, W, 3]; one ``ImageError`` line for a file that cannot be used."""
    if not os.path.exists(path):
        raise ImageError("image not found: {}".format(path))
    if os.path.isdir(path):
        raise ImageError("{} is a folder, not an image: give the image files in it (e.g. {})".format(
            path, os.path.join(path, "*.jpg")))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, IOError) as exc:
        raise ImageError("cannot read image {}: {}".format(path, exc.strerror or exc)) from exc
    if not data:
        raise ImageError("image {} is an empty file (0 bytes): give a JPEG, PNG or other image file".format(path))
    if data.startswith(_JPEG_MAGIC) and not _jpeg_complete(data):
        raise ImageError("image {} is a truncated or corrupt JPEG (no end-of-image marker): copy or download it "
                         "again".format(path))
    if data.startswith(_PNG_MAGIC) and not _png_complete(data):
        raise ImageError("image {} is a truncated or corrupt PNG (no IEND chunk): copy or download it again".format(
            path))
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ImageError("cannot decode image {}: {}".format(path, message)) from exc
    if image is None:
        if data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC):
            raise ImageError("image {} is a corrupt {} that OpenCV cannot decode: copy or download it again".format(
                path, "JPEG" if data.startswith(_JPEG_MAGIC) else "PNG"))
        raise ImageError("{} is not an image OpenCV can decode (JPEG, PNG, BMP, TIFF, WebP, ...)".format(path))
    return to_bgr8(image, "image {}".format(path))
