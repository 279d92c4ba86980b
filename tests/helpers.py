"""Helpers the tests share (plain functions, not fixtures): paths to the checkout and ../shared/data, seeded
realistic weights, measured complexities, the session's exported artefacts and a stand-in pose ONNX.

Fixtures built on them live in tests/conftest.py; test modules import these functions from here, never from a
conftest."""

import functools
import os

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@functools.lru_cache(maxsize=None)
def measured_complexity(name):
    """``Complexity`` of a freshly built variant, measured once per test session."""
    from goatpose_edge.models import build_model
    from goatpose_edge.models.complexity import measure
    from goatpose_edge.variants import VARIANTS

    return measure(VARIANTS[name], build_model(name))


def randomize_weights(model, seed=0):
    """Give every tensor of ``model`` seeded values with realistic magnitudes (heatmaps of order 1).

    The official initialisation (conv weights N(0, 0.001)) yields heatmaps near 1e-12, too small to tell a numeric
    difference from a structural one.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            if key.endswith("running_var"):
                new = torch.rand(value.shape, generator=generator) + 0.5
            elif key.endswith("running_mean"):
                new = torch.randn(value.shape, generator=generator) * 0.1
            elif value.dim() == 1 and key.endswith("weight"):
                new = torch.rand(value.shape, generator=generator) * 0.5 + 0.25
            elif key.endswith("bias"):
                new = torch.randn(value.shape, generator=generator) * 0.05
            else:
                new = torch.randn(value.shape, generator=generator) * (1.0 / value[0].numel()) ** 0.5
            value.copy_(new)
    return model


def stand_in_pose_onnx(path: str, convs) -> str:
    """Write a chain of convs [(weight [O, I, k, k], attributes)] (a Relu between them) from input
    [batch, 3, 256, 192] to heatmaps [batch, 17, 64, 48], with GoatPose-BL's contract in its metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from goatpose_edge.artefact.contract import METADATA_KEY
    from goatpose_edge.variants import VARIANTS

    nodes, weights, current = [], [], "input"
    for index, (weight, attributes) in enumerate(convs):
        name, out = "w{}".format(index), "heatmaps" if index == len(convs) - 1 else "c{}".format(index)
        weights.append(numpy_helper.from_array(np.asarray(weight, np.float32), name))
        nodes.append(helper.make_node("Conv", [current, name], [out], **attributes))
        current = out
        if out != "heatmaps":
            nodes.append(helper.make_node("Relu", [out], [out + "_relu"]))
            current = out + "_relu"
    graph = helper.make_graph(nodes, "stand-in", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                  ["batch", 3, 256, 192])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["batch", 17, 64, 48])],
                              weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    helper.set_model_props(model, {METADATA_KEY: VARIANTS["goatpose-bl"].contract.to_json()})
    onnx.save(model, path)
    return path


def goatpose_here(capsys, *argv):
    """``goatpose ARGV`` through ``goatpose_edge.cli.main`` in this process: (exit status, stdout, stderr), argparse's
    own refusals (SystemExit 2) included. For a command's checks (a process costs a second); every command also runs
    as a real process (``python -m goatpose_edge``) in some test."""
    from goatpose_edge.cli import main

    capsys.readouterr()  # what the test printed before
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


class Exports:
    """The session's seeded checkpoints and ONNX exports, each made once, in ``folder`` (the root conftest's
    ``exports`` fixture: a folder of pytest's session temporary directory, which pytest cleans up).

    Under pytest-xdist every worker is a session of its own; the fixture then gives them all the same folder, and
    what one worker made (under a file lock, so two never make the same thing at once) the others read back from it
    instead of exporting it again (10-20 s an export). The checkpoints are seeded and the exports are
    ``export_onnx``'s deterministic result, so a worker reads exactly what it would have made."""

    def __init__(self, folder: str):
        self.folder = folder
        self._made = {}  # type: dict

    def _once(self, key, make):
        """``make()``'s result for ``key``: from this process's memory, else from the folder (made by another worker
        of the session), else made now and recorded in the folder for the others."""
        if key not in self._made:
            import fcntl
            import hashlib
            import pickle

            record = os.path.join(self.folder, "made-" + hashlib.sha1(repr(key).encode("utf-8")).hexdigest()[:16])
            with open(record + ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if os.path.exists(record):
                    with open(record, "rb") as f:
                        value = pickle.load(f)
                else:
                    value = make()
                    with open(record + ".tmp", "wb") as f:
                        pickle.dump(value, f)
                    os.replace(record + ".tmp", record)
            self._made[key] = value
        return self._made[key]

    def checkpoint(self, name: str) -> str:
        """A ``.pth`` of ``name`` with seeded realistic weights (``randomize_weights``)."""

        def make():
            from goatpose_edge.models import build_model, save_checkpoint

            path = os.path.join(self.folder, name + ".pth")
            save_checkpoint(randomize_weights(build_model(name)), path)
            return path

        return self._once(("checkpoint", name), make)

    def onnx(self, name: str, fliptest: bool = False, batch=None, images=()):
        """``export_onnx``'s result for ``name`` on its ``checkpoint``, with these export options."""

        def make():
            from goatpose_edge.export import export_onnx

            output = os.path.join(self.folder, "{}{}{}{}.onnx".format(name, "_flip" if fliptest else "", "_b%d" % batch
                                                                      if batch else "", "_crops" if images else ""))
            return export_onnx(name, weights=self.checkpoint(name), output=output, fliptest=fliptest, batch=batch,
                               images=images)

        return self._once(("onnx", name, fliptest, batch, tuple(images)), make)


class LostCamera:
    """A live source (a ``cv2.VideoCapture`` stand-in) that delivers ``count`` frames of ``shape`` and then fails,
    as an unplugged USB camera does."""

    def __init__(self, count, shape=(120, 160, 3), fps=30.0):
        self.count, self.shape, self.fps = count, shape, fps

    def read(self):
        if self.count == 0:
            return False, None
        self.count -= 1
        return True, np.zeros(self.shape, np.uint8)

    def get(self, prop):
        import cv2

        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def isOpened(self):
        return True

    def release(self):
        pass
