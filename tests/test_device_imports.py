"""Device-side modules import without torch (JetPack's Python 3.6 runtime has numpy, OpenCV, TensorRT, pycuda)."""

import subprocess
import sys

import pytest

# The device path: everything that runs on the Jetson. Later issues add their modules here.
DEVICE_MODULES = [
    "goatpose_edge",
    "goatpose_edge.cli",
    "goatpose_edge.contract",
    "goatpose_edge.errors",
    "goatpose_edge.fileio",
    "goatpose_edge.signals",
    "goatpose_edge.imagefile",
    "goatpose_edge.variants",
    "goatpose_edge.onnx_meta",
    "goatpose_edge.codec",
    "goatpose_edge.codec.crop",
    "goatpose_edge.codec.flip",
    "goatpose_edge.codec.transforms",
    "goatpose_edge.codec.heatmap",
    "goatpose_edge.codec.oks",
    "goatpose_edge.detection",
    "goatpose_edge.detection.yolo",
    "goatpose_edge.pipeline",
    "goatpose_edge.engines.builder",
    "goatpose_edge.engines.calibration",
    "goatpose_edge.engines.policy",
    "goatpose_edge.engines.sidecar",
    "goatpose_edge.engines.verify",
    "goatpose_edge.runtime.tensorrt_runner",
    "goatpose_edge.runtime.cuda",
    "goatpose_edge.runtime.trt_api",
    "goatpose_edge.runtime",
    "goatpose_edge.runtime.base",
    "goatpose_edge.runtime.onnxruntime_runner",
    "goatpose_edge.runtime.torch_runner",
    "goatpose_edge.draw",
    "goatpose_edge.bench",
    "goatpose_edge.bench.env",
    "goatpose_edge.bench.timing",
    "goatpose_edge.bench.runs",
    "goatpose_edge.bench.profile",
    "goatpose_edge.bench.report",
    "goatpose_edge.bench.suite",
    "goatpose_edge.bench.coco_eval",
    "goatpose_edge.export",  # only for default_output_path (make export on a device without torch)
    "goatpose_edge.video",
    "goatpose_edge.video.engine",
    "goatpose_edge.video.smoothing",
    "goatpose_edge.synthetic",
    "goatpose_edge.synthetic.scene",
    "goatpose_edge.synthetic.dotpose",
    "goatpose_edge.synthetic.detector",
    "goatpose_edge.synthetic.metrics",
    "goatpose_edge.video.app",
    "goatpose_edge.video.capture",
    "goatpose_edge.video.outputs",
    "goatpose_edge.video.sources",
    "goatpose_edge.video.tracking",
]

_PROBE = """
import sys
sys.modules["torch"] = None  # any "import torch" now raises ImportError
import importlib
importlib.import_module({module!r})
loaded = sorted(m for m, mod in sys.modules.items() if mod is not None and m.split(".")[0] in ("torch", "onnx", "onnxruntime", "tensorrt", "pycuda"))
assert not loaded, loaded
print("ok")
"""


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_imports_with_torch_unavailable(module):
    result = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_probe_can_fail():
    """The blocker really blocks: importing the host-side models package must fail under it."""
    result = subprocess.run([sys.executable, "-c", _PROBE.format(module="goatpose_edge.models")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode != 0 and "import of torch halted" in result.stderr


def test_cli_without_torch_says_what_to_install():
    code = "import sys; sys.modules['torch'] = None; from goatpose_edge.cli import main; sys.exit(main(['info', 'hrnet-w32']))"
    result = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("goatpose: error: goatpose info needs PyTorch (host side): "
                                     "pip install 'goatpose-edge[host]'")
