"""TensorRT runner (pycuda): the engine's sidecar is checked before the plan is deserialised (and gives the contract,
precision and complexity), buffers for the largest batch of the profile are allocated once, and each ``infer`` is
copy-in, execute, copy-out on one stream.

The CUDA context is the device's primary context, pushed only around our own calls (``CudaContext.active``), so a
runner can be created in one thread and used from another (the video pipeline's worker). An engine built for a DLA
core (``goatpose build --dla-core N``, recorded in the sidecar) is deserialised onto that core.
"""

import numpy as np

from goatpose_edge.artefact.sidecar import check_compatible, read_sidecar
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime.base import Runner
from goatpose_edge.runtime.cuda import CudaContext, HostDeviceBuffers, cuda_call
from goatpose_edge.runtime.trt_api import import_tensorrt, make_logger, trt_api


class EngineLoadError(GoatPoseError):
    """A plan TensorRT refuses to deserialise."""


class TensorRTRunner(Runner):
    """Runs a ``goatpose build`` engine; contract, precision and complexity from its sidecar."""

    backend = "tensorrt"

    def __init__(self, path: str, device: int = 0, log=None):
        """``log``: a callable taking a line, told what each activation costs (``_activate``); quiet by default."""
        super().__init__(path)
        self.device = device
        self.log = log
        self.trt = import_tensorrt()
        self.sidecar = read_sidecar(path)
        self.cuda_context = CudaContext(device)
        check_compatible(path, self.sidecar, self.trt.__version__, self.cuda_context.gpu_name,
                         self.cuda_context.compute_capability)
        self.contract = self.sidecar.model_contract
        self.precision, self.complexity = self.sidecar.effective_precision, self.sidecar.complexity
        profile = self.sidecar.batch_profile
        self.min_batch, self.max_batch = profile["min"], profile["max"]
        self.api = trt_api(self.trt)
        self.runtime = self.engine = self.context = self.stream = self.buffers = self.events = None

    def spawn(self, threads=None) -> "TensorRTRunner":
        """Another runner with its own engine copy, execution context, stream and buffers (a worker never shares
        a context: TensorRT contexts are not thread-safe). Each costs GPU memory for its engine's weights (about the
        plan's size), its context's activations (``device_memory_size``) and its I/O buffers at the largest batch,
        which its activation logs with the memory left; a TX2 shares its 8 GB with the CPU: the default is one
        worker."""
        return TensorRTRunner(self.path, self.device, self.log)

    def _activate(self) -> None:
        """Deserialise, create the context, allocate the buffers and stream; on any failure, everything made so far
        is released before the error leaves (a half-activated runner holds no GPU memory)."""
        cuda = self.cuda_context.cuda
        logger = make_logger(self.trt)
        with open(self.path, "rb") as f:
            plan = f.read()
        with self.cuda_context.active():
            try:
                self.runtime = self.trt.Runtime(logger)
                if self.sidecar.dla_core is not None:
                    self._use_dla_core(self.sidecar.dla_core)
                self.engine = self.runtime.deserialize_cuda_engine(plan)
                if self.engine is None:
                    raise EngineLoadError("TensorRT could not load {} (see its log above); rebuild it with "
                                          "`goatpose build`".format(self.path))
                self.context = self.engine.create_execution_context()
                if self.context is None:  # its activation memory could not be allocated (a TX2 shares 8 GB)
                    raise EngineLoadError("TensorRT could not create an execution context for {}: out of GPU memory? "
                                          "Close other GPU programs or rebuild with a smaller --max-batch".format(
                                              self.path))
                self.tensors = self.api.io_tensors(self.engine)
                self.input = next(t for t in self.tensors if t.is_input)
                self.outputs = [t for t in self.tensors if not t.is_input]
                max_input = (self.max_batch,) + tuple(self.input.profile[2][1:])
                self.input_shape = (None,) + max_input[1:]
                self._set_input_shape(max_input)
                shapes = {self.input.name: max_input}
                shapes.update({t.name: self.api.output_shape(self.context, t) for t in self.outputs})
                self.buffers = HostDeviceBuffers(shapes, {t.name: t.dtype for t in self.tensors})
                self.stream = cuda_call("create a stream", cuda.Stream)
                self.events = [cuda_call("create a CUDA event", cuda.Event) for _ in range(4)]
                if self.log is not None:
                    self.log(self._memory_line(len(plan)))
            except BaseException:
                self._release()
                raise

    def _use_dla_core(self, core: int) -> None:
        """The DLA core the engine was built for, set before deserialising (the runtime's own default is -1, no
        core: the plan does not choose it)."""
        cores = int(self.runtime.num_DLA_cores)
        if not 0 <= core < cores:
            raise EngineLoadError("{} was built for DLA core {}; this {} has {} DLA core(s)".format(
                self.path, core, self.cuda_context.gpu_name, cores))
        self.runtime.DLA_core = core

    def _memory_line(self, plan_bytes: int) -> str:
        """What this runner holds on the GPU and what is left there, in MiB (the context must be current)."""
        free, total = cuda_call("read the free GPU memory", self.cuda_context.cuda.mem_get_info)
        context = self.api.device_memory(self.engine)
        return ("{}: GPU memory of this runner: weights ~{:.1f} MiB (the plan), context {} MiB, I/O buffers "
                "{:.1f} MiB at batch {}; {:.0f} of {:.0f} MiB free now").format(
                    self.path, plan_bytes / 2 ** 20, "?" if context is None else "{:.1f}".format(context / 2 ** 20),
                    self.buffers.device_bytes / 2 ** 20, self.max_batch, free / 2 ** 20, total / 2 ** 20)

    def _set_input_shape(self, shape) -> None:
        if not self.api.set_input_shape(self.context, self.input, shape):
            raise GoatPoseError("TensorRT refused the input shape {} for {} (profile {}..{})".format(
                list(shape), self.path, self.min_batch, self.max_batch))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        cuda = self.cuda_context.cuda
        count = batch.shape[0]
        host, device = self.buffers.host, self.buffers.device
        host_in = host[self.input.name]
        host_in[:count] = batch
        output = self.outputs[0]
        with self.cuda_context.active():
            self._set_input_shape(batch.shape)
            out_shape = self.api.output_shape(self.context, output)
            start, copied_in, executed, copied_out = self.events
            start.record(self.stream)
            cuda_call("copy the batch to the GPU", cuda.memcpy_htod_async, device[self.input.name],
                      host_in[:count], self.stream)
            copied_in.record(self.stream)
            addresses = {name: int(allocation) for name, allocation in device.items()}
            refused = self.api.execute(self.context, self.tensors, addresses, self.stream.handle)
            if refused is not None:
                raise GoatPoseError("TensorRT failed to run {} on a batch of {}: it refused {}".format(
                    self.path, count, refused))
            executed.record(self.stream)
            size = int(np.prod(out_shape))
            host_out = host[output.name].reshape(-1)[:size]
            cuda_call("copy the heatmaps back", cuda.memcpy_dtoh_async, host_out, device[output.name], self.stream)
            copied_out.record(self.stream)
            cuda_call("finish the stream", self.stream.synchronize)
            # event times are milliseconds on the GPU's clock, exact for work on this stream
            self.last_stages = {"copy_in": copied_in.time_since(start) / 1e3,
                                "infer": executed.time_since(copied_in) / 1e3,
                                "copy_out": copied_out.time_since(executed) / 1e3}
        return host_out.reshape(out_shape).copy()

    def _deactivate(self) -> None:
        with self.cuda_context.active():
            self._release()

    def _release(self) -> None:
        """Free the buffers and drop the context, engine and runtime (in that order); the context must be current."""
        if self.buffers is not None:
            self.buffers.free()
        self.context = self.engine = self.runtime = self.stream = self.buffers = self.events = None
