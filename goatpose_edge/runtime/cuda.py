"""CUDA through pycuda, with owners: an explicit primary context (no ``pycuda.autoinit`` in library code) and
page-locked host + device buffer pairs allocated once and released explicitly. Every pycuda call that can fail is
wrapped by ``cuda_call`` so a CUDA error becomes one clear line."""

from typing import Dict, Tuple

import numpy as np

from goatpose_edge.errors import DependencyError, GoatPoseError


class CudaError(GoatPoseError):
    """A CUDA driver error (no GPU, out of memory, a failed copy)."""


def import_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise DependencyError("TensorRT engines need pycuda (on a Jetson: pip3 install pycuda; "
                              "see docs/jetson.md)") from exc
    return cuda


def cuda_call(what: str, function, *args, **kwargs):
    """Run a pycuda call; its errors become ``CudaError`` naming ``what``."""
    cuda = import_pycuda()
    try:
        return function(*args, **kwargs)
    except (cuda.Error, cuda.LogicError, cuda.RuntimeError) as exc:
        raise CudaError("CUDA failed to {}: {}".format(what, exc)) from exc


class CudaContext:
    """The device's primary context (shared with TensorRT's runtime API), pushed only around our own work, so the
    object can be used from any thread: ``with ctx.active(): ...``."""

    def __init__(self, device_index: int = 0):
        self.cuda = cuda = import_pycuda()
        cuda_call("initialise the driver", cuda.init)
        if device_index >= cuda_call("count devices", cuda.Device.count):
            raise CudaError("no CUDA device {} on this machine".format(device_index))
        self.device = cuda.Device(device_index)
        if hasattr(self.device, "retain_primary_context"):  # pycuda >= 2020.1
            self.context = cuda_call("retain the primary context", self.device.retain_primary_context)
        else:  # older pycuda: an own context, popped at once so that pushes nest as with the primary one
            self.context = cuda_call("create a context", self.device.make_context)
            self.context.pop()

    @property
    def gpu_name(self) -> str:
        return self.device.name()

    @property
    def compute_capability(self) -> Tuple[int, int]:
        return tuple(self.device.compute_capability())

    def active(self):
        return _Pushed(self.context)


class _Pushed:
    def __init__(self, context):
        self.context = context

    def __enter__(self):
        cuda_call("make the context current", self.context.push)

    def __exit__(self, *exc):
        import_pycuda().Context.pop()


class HostDeviceBuffers:
    """Named page-locked host arrays and device allocations of fixed max shapes; ``free()`` releases them all."""

    def __init__(self, shapes: Dict[str, Tuple[int, ...]], dtypes: Dict[str, np.dtype]):
        cuda = import_pycuda()
        self.host, self.device = {}, {}
        try:
            for name, shape in shapes.items():
                host = cuda_call("allocate page-locked memory", cuda.pagelocked_empty, tuple(int(s) for s in shape),
                                 dtypes[name])
                self.host[name] = host
                self.device[name] = cuda_call("allocate {} bytes of GPU memory".format(host.nbytes), cuda.mem_alloc,
                                              int(host.nbytes))
        except BaseException:
            self.free()
            raise

    @property
    def device_bytes(self) -> int:
        """GPU memory held: each device allocation is the size of its host array."""
        return sum(host.nbytes for host in self.host.values())

    def free(self) -> None:
        for allocation in self.device.values():
            allocation.free()
        self.device, self.host = {}, {}
