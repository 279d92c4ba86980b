"""The INT8 entropy calibrator (IInt8EntropyCalibrator2), fed with real person crops; its cache is reused only for
what made it.

Three facts of TensorRT's Python bindings shape this class (NVIDIA/TensorRT python/src/infer/pyInt8.cpp):

- On 8.0/8.2 the callbacks are ``noexcept`` trampolines: a Python exception inside ``get_batch``,
  ``read_calibration_cache`` or ``write_calibration_cache`` terminates the process with no message (later versions
  print it and take it for "no more batches"). Every callback therefore catches everything, ends calibration, and
  keeps the error; ``build_engine`` raises it after the build. Ctrl-C and SIGTERM would still be raised at a
  callback's first bytecode, before its ``try``: the builder defers them (``engines.deferred_signals``) and
  ``get_batch`` ends calibration once one is pending (``stop``).
- On 8.0.1 ``read_calibration_cache`` returning None aborts (None is not a ``py::buffer``) and the returned object
  is held by nothing but a local: TensorRT reads freed memory unless we keep it. So "no cache" is ``b""`` there,
  None on 8.2 and 10.x, and whatever is returned stays referenced by the calibrator.
- With explicit batch TensorRT calibrates at the calibration profile's kOPT shape and ignores ``get_batch_size``:
  the builder gives calibration its own profile (min = opt = max = ``batch_size``) and every batch holds exactly
  that many crops.
"""

import hashlib
import json
import os
from typing import Callable, Iterator, Optional

import numpy as np

from goatpose_edge.fileio import atomic_output
from goatpose_edge.runtime.cuda import cuda_call

CALIBRATION_FORMAT = "goatpose-edge-calibration/1"


def calibration_record_path(cache_path: str) -> str:
    """The JSON beside a calibration cache that says what made it: ``<cache>.json``."""
    return cache_path + ".json"


def sources_digest(sources, count: int) -> str:
    """sha256 of the calibration images (paths and boxes, in order) and the number of crops asked for."""
    listed = [[str(path), [float(v) for v in box] if box is not None else None] for path, box in sources]
    return hashlib.sha256(json.dumps([listed, int(count)]).encode("utf-8")).hexdigest()


def cache_key(onnx_sha256: str, input_shape, contract, tensorrt_version: str, sources=(), count: int = 0) -> dict:
    """What a calibration cache is valid for: the ONNX bytes, the calibrated input shape, the preprocessing (input
    size, mean, std, channel order), the TensorRT version and, when images are given, which images."""
    return {"format": CALIBRATION_FORMAT, "onnx_sha256": onnx_sha256, "input_shape": [int(d) for d in input_shape],
            "preprocessing": {"input_size": list(contract.input_size), "mean": list(contract.mean),
                              "std": list(contract.std), "channel_order": contract.channel_order},
            "tensorrt_version": tensorrt_version, "sources": sources_digest(sources, count) if sources else None}


def read_record(cache_path: str) -> Optional[dict]:
    try:
        with open(calibration_record_path(cache_path)) as f:
            record = json.load(f)
    except (OSError, IOError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def stale_reason(cache_path: str, key: dict) -> Optional[str]:
    """None when ``cache_path`` exists and its record matches ``key`` (the images only when ``key`` names them);
    else why it cannot be reused."""
    if not os.path.isfile(cache_path):
        return "no cache"
    record = read_record(cache_path)
    if record is None:
        return "it has no readable record {} of what made it".format(calibration_record_path(cache_path))
    names = {"onnx_sha256": "another ONNX file (sha256 differs)", "input_shape": "another input shape",
             "preprocessing": "other preprocessing", "tensorrt_version": "another TensorRT version",
             "format": "another record format", "sources": "other calibration images or --calib-count"}
    for field, what in names.items():
        if field == "sources" and key[field] is None:
            continue  # no images given: the cache is what there is to calibrate with
        if record.get(field) != key[field]:
            if field in ("onnx_sha256", "sources"):
                return "it was made for {}".format(what)
            return "it was made for {} ({} there, {} now)".format(what, record.get(field), key[field])
    return None


def write_cache(cache_path: str, cache: bytes, key: dict, record: dict) -> None:
    """The cache TensorRT handed over, and beside it what made it (``key``) and the sidecar's account of it."""
    with atomic_output(cache_path) as tmp_path:
        with open(tmp_path, "wb") as f:
            f.write(cache)
    with atomic_output(calibration_record_path(cache_path)) as tmp_path:
        with open(tmp_path, "w") as f:
            f.write(json.dumps(dict(key, crops=record.get("count"), source=record.get("source")), indent=2,
                               sort_keys=True) + "\n")


def make_entropy_calibrator(trt, cuda, batches: Iterator[np.ndarray], batch_size: int, input_name: str,
                            cache_path: str, reuse_cache: bool = True, stop: Callable[[], bool] = lambda: False):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` of exactly [batch_size, 3, H, W]; reads ``cache_path`` when
    ``reuse_cache``; ``stop()`` true ends calibration at the next ``get_batch`` (a deferred Ctrl-C or SIGTERM). The
    cache TensorRT hands over is kept (``new_cache``), not written: the builder writes ``fresh_cache()`` once the
    engine is built, and that is the cache only when every batch was fed (a cut-short one must not be reused).

    Built inside a function because the base class comes from the ``tensorrt`` module imported at build time.
    After the build: ``error`` (the first exception a callback caught, or None), ``batches_fed``, ``crops_fed``,
    ``exhausted`` (``batches`` ran out), ``new_cache`` (bytes or None).
    """
    no_cache = b"" if trt.__version__.startswith("8.0.") else None  # what each generation takes for "no cache"

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(batches)
            self.allocation = None
            self.batches_fed = 0
            self.crops_fed = 0
            self.cache = no_cache  # referenced here for as long as TensorRT may read it (8.0.1 keeps no reference)
            self.error = None  # type: Optional[BaseException]
            self.exhausted = False
            self.new_cache = None  # type: Optional[bytes]

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):
            try:
                if self.error is not None or stop():
                    return None
                batch = next(self.batches, None)
                if batch is None:
                    self.exhausted = True
                    return None
                if batch.shape[0] != batch_size:
                    raise ValueError("calibration batch of {} crops, the calibration profile takes {}".format(
                        batch.shape[0], batch_size))
                if self.allocation is None:
                    self.allocation = cuda_call("allocate the calibration batch", cuda.mem_alloc, int(batch.nbytes))
                cuda_call("copy a calibration batch", cuda.memcpy_htod, self.allocation, np.ascontiguousarray(batch))
                self.batches_fed += 1
                self.crops_fed += len(batch)
                return [int(self.allocation)]
            except BaseException as exc:  # noqa: BLE001 - escaping would terminate the process on TensorRT 8.x
                self.error = exc
                return None

        def read_calibration_cache(self):
            try:
                if reuse_cache and os.path.isfile(cache_path):
                    with open(cache_path, "rb") as f:
                        self.cache = f.read()
                    return self.cache
            except BaseException as exc:  # noqa: BLE001
                self.error = exc
            return self.cache

        def write_calibration_cache(self, cache):
            try:
                self.new_cache = bytes(cache)
            except BaseException as exc:  # noqa: BLE001
                self.error = exc

        def fresh_cache(self) -> Optional[bytes]:
            """The cache TensorRT made from every batch, None when there is none to write: a reused cache, or a
            calibration that ended before the batches did (an error, a signal, TensorRT asking for fewer)."""
            return self.new_cache if self.exhausted and self.error is None and not reuse_cache else None

        def free(self) -> None:
            if self.allocation is not None:
                self.allocation.free()
                self.allocation = None

    return EntropyCalibrator()
