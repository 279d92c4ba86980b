"""TensorRT's two Python API generations behind one interface, chosen in one place (``trt_api``) by capability.

    BindingsApi   TensorRT 8.0 - 8.6 (JetPack 4.6: 8.0/8.2): explicit-batch network flag, ``max_workspace_size``,
                  bindings by index, ``set_binding_shape``, ``execute_async_v2``
    TensorsApi    TensorRT >= 10: networks are always explicit batch (EXPLICIT_BATCH, still bit 0, is deprecated and
                  ignored; bit 1 is STRONGLY_TYPED, tensor types from the network instead of the builder's precision
                  flags, which we do not ask for), memory pools, named I/O tensors, ``set_input_shape`` /
                  ``set_tensor_address``, ``execute_async_v3``

``execute`` returns None when the work is queued, else what TensorRT refused (a tensor's address, the launch).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np


@dataclass
class IOTensor:
    name: str
    is_input: bool
    dtype: np.dtype
    index: int  # binding index (BindingsApi) or I/O position (TensorsApi)
    profile: Optional[Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]] = None  # (min, opt, max) for inputs


class BindingsApi:
    name = "bindings (TensorRT 8)"

    def __init__(self, trt):
        self.trt = trt

    def network_flags(self) -> int:
        return 1 << int(self.trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)

    def set_workspace(self, config, size: int) -> None:
        config.max_workspace_size = size

    def io_tensors(self, engine) -> List[IOTensor]:
        tensors = []
        for index in range(engine.num_bindings):
            name = engine.get_binding_name(index)
            is_input = engine.binding_is_input(index)
            profile = None
            if is_input:
                profile = tuple(tuple(int(d) for d in dims) for dims in engine.get_profile_shape(0, name))
            tensors.append(IOTensor(name, is_input, np.dtype(self.trt.nptype(engine.get_binding_dtype(index))),
                                    index, profile))
        return tensors

    def set_input_shape(self, context, tensor: IOTensor, shape: Tuple[int, ...]) -> bool:
        """False when TensorRT refuses the shape (outside the profile)."""
        return bool(context.set_binding_shape(tensor.index, tuple(shape)))

    def output_shape(self, context, tensor: IOTensor) -> Tuple[int, ...]:
        return tuple(int(d) for d in context.get_binding_shape(tensor.index))

    def device_memory(self, engine) -> int:
        """Bytes of device memory each execution context of ``engine`` allocates (activations, scratch)."""
        return int(engine.device_memory_size)

    def execute(self, context, tensors: List[IOTensor], addresses: Dict[str, int], stream_handle: int
                ) -> Optional[str]:
        bindings = [0] * len(tensors)
        for tensor in tensors:
            bindings[tensor.index] = addresses[tensor.name]
        if not context.execute_async_v2(bindings=bindings, stream_handle=stream_handle):
            return "the launch (execute_async_v2)"
        return None


class TensorsApi:
    name = "named tensors (TensorRT 10)"

    def __init__(self, trt):
        self.trt = trt

    def network_flags(self) -> int:
        return 0

    def set_workspace(self, config, size: int) -> None:
        config.set_memory_pool_limit(self.trt.MemoryPoolType.WORKSPACE, size)

    def io_tensors(self, engine) -> List[IOTensor]:
        tensors = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            is_input = engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT
            profile = None
            if is_input:
                profile = tuple(tuple(int(d) for d in dims) for dims in engine.get_tensor_profile_shape(name, 0))
            tensors.append(IOTensor(name, is_input, np.dtype(self.trt.nptype(engine.get_tensor_dtype(name))),
                                    index, profile))
        return tensors

    def set_input_shape(self, context, tensor: IOTensor, shape: Tuple[int, ...]) -> bool:
        return bool(context.set_input_shape(tensor.name, tuple(shape)))

    def output_shape(self, context, tensor: IOTensor) -> Tuple[int, ...]:
        return tuple(int(d) for d in context.get_tensor_shape(tensor.name))

    def device_memory(self, engine) -> Optional[int]:
        """Bytes of device memory each execution context of ``engine`` allocates (``device_memory_size`` is
        deprecated from 10.1 for its ``_v2``, a 64-bit count; TensorRT 11 lists both as removed): None when the
        engine says neither."""
        for name in ("device_memory_size_v2", "device_memory_size"):
            if hasattr(engine, name):
                return int(getattr(engine, name))
        return None

    def execute(self, context, tensors: List[IOTensor], addresses: Dict[str, int], stream_handle: int
                ) -> Optional[str]:
        for tensor in tensors:
            if not context.set_tensor_address(tensor.name, addresses[tensor.name]):
                return "the device address of tensor {!r} (set_tensor_address)".format(tensor.name)
        if not context.execute_async_v3(stream_handle):
            return "the launch (execute_async_v3)"
        return None


def trt_api(trt):
    """The API generation of the imported ``tensorrt`` module: the single switch point."""
    return BindingsApi(trt) if hasattr(trt.ICudaEngine, "get_binding_name") else TensorsApi(trt)


def import_tensorrt():
    from goatpose_edge.errors import DependencyError

    try:
        import tensorrt
    except ImportError as exc:
        raise DependencyError("TensorRT is not installed here (JetPack ships it as python3-libnvinfer; on x86: "
                              "pip install tensorrt): import tensorrt: {}".format(exc)) from exc
    return tensorrt


#: TensorRT keeps one logger per process: every Builder and Runtime we make gets this one (8.x warns about, and then
#: ignores, a second logger while the first one's objects live; a pose and a detector engine share a process)
_LOGGER = []


def make_logger(trt, verbose: bool = False):
    """The process's one ``trt.Logger``; ``verbose`` lowers its threshold to VERBOSE from then on (WARNING until)."""
    if not _LOGGER:
        _LOGGER.append(trt.Logger(trt.Logger.WARNING))
    logger = _LOGGER[0]
    if verbose:
        logger.min_severity = trt.Logger.VERBOSE
    return logger
