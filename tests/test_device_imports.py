"""Device-side modules import without torch (JetPack's Python 3.6 runtime has numpy, OpenCV, TensorRT, pycuda)."""

import os
import subprocess
import sys

from tests.helpers import REPO_ROOT

#: host-side parts (PyTorch: models, training, export); every other module of
#: the package is device side and is found by walking the package, so a new module is checked without a list to keep
HOST_SIDE = ("goatpose_edge.models", "goatpose_edge.train", "goatpose_edge.export.")


def device_modules():
    package = os.path.join(REPO_ROOT, "goatpose_edge")
    names = []
    for folder, _, files in os.walk(package):
        if not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        prefix = os.path.relpath(folder, REPO_ROOT).replace(os.sep, ".")
        names += [prefix if name == "__init__.py" else prefix + "." + name[:-3] for name in files
                  if name.endswith(".py") and name != "__main__.py"]
    return sorted(n for n in names if not n.startswith(HOST_SIDE))


_PROBE = """
import importlib, sys
sys.modules["torch"] = None  # any "import torch" now raises ImportError
heavy = ("torch", "onnx", "onnxruntime", "tensorrt", "pycuda")
problems = []
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        problems.append("{}: {}".format(module, exc))
        continue
    loaded = sorted(m for m, mod in sys.modules.items() if mod is not None and m.split(".")[0] in heavy)
    if loaded:
        problems.append("{} loads {}".format(module, loaded))
        break
print("\\n".join(problems) or "ok")
"""


def test_device_modules_import_without_torch_onnx_or_gpu_libraries():
    """One interpreter imports every device module in turn with torch blocked; onnx, onnxruntime, TensorRT and
    pycuda must not be imported either (each backend loads its library when a runner activates)."""
    modules = device_modules()
    assert "goatpose_edge.video.engine" in modules and "goatpose_edge.models.hrnet" not in modules
    assert len(modules) > 50
    result = subprocess.run([sys.executable, "-c", _PROBE] + modules, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_the_probe_can_fail():
    """The blocker really blocks: importing the host-side models package is reported."""
    result = subprocess.run([sys.executable, "-c", _PROBE, "goatpose_edge.models"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.stdout.startswith("goatpose_edge.models: import of torch halted"), result.stdout + result.stderr


def test_cli_without_torch_says_what_to_install():
    code = "import sys; sys.modules['torch'] = None; from goatpose_edge.cli import main; sys.exit(main(['info', 'hrnet-w32']))"
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("goatpose: error: goatpose info needs PyTorch (host side): "
                                     "pip install 'goatpose-edge[host]'")
