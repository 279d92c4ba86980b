"""Exports shared by the export tests: each variant is exported once per session (they take 10-20 s each)."""

import atexit
import functools
import os
import shutil
import tempfile

from goatpose_edge.export import export_onnx
from goatpose_edge.models import build_model, save_checkpoint
from tests.conftest import randomize_weights

_TMP = tempfile.mkdtemp(prefix="goatpose-export-tests-")
atexit.register(shutil.rmtree, _TMP, True)  # the session's exports go with the session


@functools.lru_cache(maxsize=None)
def random_checkpoint(name: str) -> str:
    path = os.path.join(_TMP, name + ".pth")
    save_checkpoint(randomize_weights(build_model(name)), path)
    return path


@functools.lru_cache(maxsize=None)
def exported(name: str, fliptest: bool = False, batch=None, images=()):
    """ExportResult of ``name`` with seeded realistic weights."""
    output = os.path.join(_TMP, "{}{}{}.onnx".format(name, "_flip" if fliptest else "", "_b%d" % batch if batch else ""))
    return export_onnx(name, weights=random_checkpoint(name), output=output, fliptest=fliptest, batch=batch,
                       images=images)
