"""Atomic file output: an artefact appears complete under its name, or not at all.

Stdlib only (device side, Python 3.6).
"""

import contextlib
import os
import tempfile

from goatpose_edge.errors import GoatPoseError


class OutputPathError(GoatPoseError):
    """An output path that cannot be written."""


@contextlib.contextmanager
def atomic_output(path: str):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on any error delete it.

    The temporary file lives in the destination folder so the final ``os.replace`` is atomic (same filesystem), and
    it keeps the destination's suffix so writers that infer the format from it (torch, onnx, OpenCV) still work.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise OutputPathError("cannot create the output folder {}: {}".format(directory, exc.strerror)) from exc
    if os.path.isdir(path):
        raise OutputPathError("output path {} is a folder; give a file name".format(path))
    base, suffix = os.path.splitext(os.path.basename(path))
    try:
        handle, tmp_path = tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp" + suffix, dir=directory)
    except OSError as exc:
        raise OutputPathError("cannot write to {}: {}".format(directory, exc.strerror)) from exc
    os.close(handle)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise
