"""The package's layers point one way: every import (module level or inside a function) goes to a lower layer.

The table is the architecture a maintainer changes on purpose; a new import that points up fails here with the
module and the line, instead of a package cycle found months later.
"""

import ast
import os
import sys

import pytest

from tests.helpers import REPO_ROOT

PACKAGE = os.path.join(REPO_ROOT, "goatpose_edge")

#: goatpose_edge.<part> -> its layer; a module may import parts of a strictly lower layer, and its own part.
LAYERS = {
    "": 0,  # the package root (__version__ only)
    "errors": 1,
    "fileio": 2, "imagefile": 2, "signals": 2, "timing": 2, "draw": 2,
    "web": 2,  # the HTTP server of the live view and the fleet dashboard
    "artefact": 3,  # contract, ONNX metadata, engine sidecar
    "codec": 4, "variants": 4,
    "compare": 5,  # how two artefacts' heatmaps agree (the codec's argmax)
    "models": 5,  # torch only
    "image_args": 5,  # --image IMG@x,y,w,h crops, the comparison inputs
    "runtime": 6,  # the torch runner loads models/ lazily
    "detection": 7,
    "coco": 8, "pipeline": 8,
    "export": 9, "synthetic": 9, "video": 9, "pose_images": 9,
    "engines": 10, "mqtt": 10,  # mqtt: the publisher is a video sink
    "bench": 11,
    "train": 12,  # validates with bench's COCO evaluation
    "cli": 13,
    "__main__": 14,
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports():
    """(importing module, imported goatpose_edge module, file, line) for every import in the package."""
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            module = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
            package = module.rsplit(".", 1)[0] if name != "__init__.py" else module[:-len(".__init__")]
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")[:len(package.split(".")) - node.level + 1]
                        targets = [".".join(base + ([node.module] if node.module else []))]
                    else:
                        targets = [node.module or ""]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                for target in targets:
                    if target == "goatpose_edge" or target.startswith("goatpose_edge."):
                        yield module, target, os.path.relpath(path, REPO_ROOT), node.lineno


def test_every_part_of_the_package_has_a_layer():
    parts = {entry[:-3] if entry.endswith(".py") else entry for entry in os.listdir(PACKAGE)
             if entry.endswith(".py") or os.path.isfile(os.path.join(PACKAGE, entry, "__init__.py"))}
    parts.discard("__init__")
    assert sorted(parts - set(LAYERS)) == []


def test_imports_point_down():
    upward = ["{}:{} {} imports {} (layer {} -> {})".format(path, line, module, target, LAYERS[_part(module)],
                                                           LAYERS[_part(target)])
              for module, target, path, line in _imports()
              if _part(module) != _part(target) and LAYERS[_part(target)] >= LAYERS[_part(module)]]
    assert upward == []


def test_an_upward_import_is_reported(tmp_path, monkeypatch):
    """The check above can fail: a module of a lower layer that imports a higher one is found, with its line."""
    runtime = tmp_path / "goatpose_edge" / "runtime"
    runtime.mkdir(parents=True)
    (runtime / "planted.py").write_text("import os\n\n\ndef f():\n    from goatpose_edge.engines import builder\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", str(tmp_path / "goatpose_edge"))
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", str(tmp_path))
    assert list(_imports()) == [("goatpose_edge.runtime.planted", "goatpose_edge.engines", os.path.join(
        "goatpose_edge", "runtime", "planted.py"), 5)]


#: the parts that run on the device (Python 3.6, no torch): they never reach the host side's torch code
DEVICE_PARTS = ("artefact", "codec", "compare", "runtime", "detection", "coco", "pipeline", "pose_images", "video",
                "synthetic", "engines", "image_args", "bench", "timing", "fileio", "imagefile", "signals", "draw",
                "errors")
HOST_PARTS = ("models", "train", "export")


def test_the_device_side_never_imports_the_host_side():
    crossing = ["{}:{} {} imports {}".format(path, line, module, target) for module, target, path, line in _imports()
                if _part(module) in DEVICE_PARTS and _part(target) in HOST_PARTS
                and module != "goatpose_edge.runtime.torch_runner"]  # the torch backend loads models/ by design
    assert crossing == []
