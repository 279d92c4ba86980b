"""The INT8 entropy calibrator (IInt8EntropyCalibrator2), fed with real person crops; its cache is reused."""

import os
from typing import Iterator, Optional

import numpy as np

from goatpose_edge.fileio import atomic_output
from goatpose_edge.runtime.cuda import cuda_call


def make_entropy_calibrator(trt, cuda, batches: Iterator[np.ndarray], batch_size: int, input_name: str,
                            cache_path: str):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` [batch_size, 3, H, W]; reads/writes ``cache_path``.

    Built inside a function because the base class comes from the ``tensorrt`` module imported at build time.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(batches)
            self.allocation = None
            self.count = 0

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            if self.allocation is None:
                self.allocation = cuda_call("allocate the calibration batch", cuda.mem_alloc, int(batch.nbytes))
            cuda_call("copy a calibration batch", cuda.memcpy_htod, self.allocation, np.ascontiguousarray(batch))
            self.count += len(batch)
            return [int(self.allocation)]

        def read_calibration_cache(self):
            if os.path.isfile(cache_path):
                with open(cache_path, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            with atomic_output(cache_path) as tmp_path:
                with open(tmp_path, "wb") as f:
                    f.write(bytes(cache))

        def free(self) -> None:
            if self.allocation is not None:
                self.allocation.free()
                self.allocation = None

    return EntropyCalibrator()
