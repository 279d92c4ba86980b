"""The engine's sidecar JSON: everything the plan itself does not say, beside it as ``<engine>.json``.

The plan stays the untouched serialized engine (trtexec and DeepStream load it); the sidecar carries the model
contract, precision, where it was built (TensorRT version, GPU, compute capability), the batch profile, the ONNX it
came from and the calibration. A runner checks it before deserialising, so a foreign engine fails with one line.

Two kinds of engine (``kind``): a pose model's (``contract``: its ``ModelContract``) and a person detector's, a YOLO
ONNX that carries no contract (``detector``: its input tensor's name, size and the output layout; ``contract`` None).
Sidecars written before ``kind`` existed are pose engines.
"""

import datetime
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import atomic_output

SIDECAR_FORMAT = "goatpose-edge-engine/1"

#: what an engine runs: a pose model (with a contract) or a person detector (without one)
ENGINE_KINDS = ("pose", "detector")

#: the endings a TensorRT plan goes by; each has its sidecar ``sidecar_path(engine)`` beside it
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


class EngineMismatchError(GoatPoseError):
    """An engine built by another TensorRT version or on another GPU, or without a readable sidecar."""


@dataclass
class EngineSidecar:
    contract: Optional[Dict[str, Any]]  # ModelContract.to_dict() of a pose engine; None for a detector
    requested_precision: str  # fp32 | fp16 | int8
    effective_precision: str
    builder_flags: List[str]  # precision flags set on the builder (none on TensorRT >= 11: see precision_graph)
    tensorrt_version: str  # tensorrt.__version__ of the build
    gpu_name: str
    compute_capability: List[int]  # [major, minor]
    batch_profile: Dict[str, int]  # {"min", "opt", "max"}
    onnx_path: str
    onnx_sha256: str
    calibration: Optional[Dict[str, Any]] = None  # {"method", "source", "count", "cache"} for INT8
    dla_core: Optional[int] = None  # the DLA core it was built for (the runner deserialises it onto that core)
    build_seconds: float = 0.0
    built_at: str = ""  # ISO 8601, UTC
    precision_note: str = ""
    complexity: Optional[Dict[str, Any]] = None  # the ONNX's complexity record (params, conv MACs), when it has one
    #: TensorRT >= 11 (no precision flags): the FP16 or Q/DQ copy of onnx_path the engine was built from, kept beside
    #: the engine (``<engine>.fp16.onnx``, ``<engine>.qdq.onnx``); None when it was built from onnx_path itself
    precision_graph: Optional[str] = None
    kind: str = "pose"  # one of ENGINE_KINDS
    #: a detector engine's input and output: {"input_name": "images", "input_size": [H, W], "layout": "yolov8"}
    detector: Optional[Dict[str, Any]] = None
    format: str = SIDECAR_FORMAT

    @property
    def model_contract(self) -> Optional[ModelContract]:
        """The pose model's contract; None for a detector engine (runners then report no contract)."""
        return ModelContract.from_dict(self.contract) if self.kind == "pose" else None

    @property
    def model_name(self) -> str:
        """What the engine runs, for messages: the pose model's name, or the detector ONNX's file name."""
        if self.kind == "pose":
            return str(self.contract["name"])
        return os.path.basename(self.onnx_path)

    def to_json(self) -> str:
        """The sidecar's JSON; a pose engine's without ``kind`` and ``detector`` (what readers before detector engines
        expect: they refuse fields they do not know)."""
        record = asdict(self)
        if self.kind == "pose":
            del record["kind"], record["detector"]
        return json.dumps(record, indent=2, sort_keys=True)


def sidecar_path(engine_path: str) -> str:
    return os.path.splitext(engine_path)[0] + ".json"


def remove_engine(engine_path: str) -> List[str]:
    """Remove an engine together with its sidecar (either may already be gone); returns the paths removed."""
    removed = []
    for path in (engine_path, sidecar_path(engine_path)):
        if os.path.lexists(path):
            os.remove(path)
            removed.append(path)
    return removed


def write_sidecar(engine_path: str, sidecar: EngineSidecar) -> str:
    path = sidecar_path(engine_path)
    with atomic_output(path) as tmp_path:
        with open(tmp_path, "w") as f:
            f.write(sidecar.to_json() + "\n")
    return path


def read_sidecar(engine_path: str) -> EngineSidecar:
    path = sidecar_path(engine_path)
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, IOError) as exc:
        raise EngineMismatchError("{} has no readable sidecar {} ({}); engines need the JSON that `goatpose build` "
                                  "writes beside them".format(engine_path, path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise EngineMismatchError("sidecar {} is not valid JSON: {}".format(path, exc)) from exc
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise EngineMismatchError("{} is not a goatpose-edge engine sidecar (format {!r})".format(
            path, data.get("format") if isinstance(data, dict) else None))
    try:
        sidecar = EngineSidecar(**data)
        if sidecar.kind not in ENGINE_KINDS:
            raise ValueError("kind {!r} is none of {}".format(sidecar.kind, ", ".join(ENGINE_KINDS)))
        if sidecar.kind == "pose":
            sidecar.contract = sidecar.model_contract.to_dict()  # validated, and with tuples again
        elif not _detector_record_ok(sidecar.detector) or sidecar.contract is not None:
            raise ValueError("a detector engine needs 'detector' with input_name, input_size [H, W] and layout, "
                             "and no contract; got detector {!r}".format(sidecar.detector))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise EngineMismatchError("sidecar {} does not have the expected fields: {}".format(path, exc)) from exc
    profile, cc, dla = sidecar.batch_profile, sidecar.compute_capability, sidecar.dla_core
    if not (isinstance(profile, dict) and all(isinstance(profile.get(k), int) and profile[k] >= 1
                                              for k in ("min", "opt", "max"))
            and isinstance(cc, list) and len(cc) == 2 and all(isinstance(v, int) for v in cc)
            and (dla is None or (type(dla) is int and dla >= 0))):
        raise EngineMismatchError("sidecar {} is damaged (batch_profile {!r}, compute_capability {!r}, dla_core {!r}): "
                                  "rebuild the engine with `goatpose build`".format(path, profile, cc, dla))
    return sidecar


def _detector_record_ok(record) -> bool:
    if not isinstance(record, dict):
        return False
    size = record.get("input_size")
    return (isinstance(record.get("input_name"), str) and isinstance(record.get("layout"), str)
            and isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size))


def check_compatible(engine_path: str, sidecar: EngineSidecar, tensorrt_version: str, gpu_name: str,
                     compute_capability) -> None:
    """Refuse, in one line, an engine built by another TensorRT version or for another GPU."""
    built = (sidecar.tensorrt_version, sidecar.gpu_name, tuple(sidecar.compute_capability))
    here = (tensorrt_version, gpu_name, tuple(compute_capability))
    if built != here:
        raise EngineMismatchError(
            "{} was built with TensorRT {} on {} (compute {}.{}); this machine has TensorRT {} on {} (compute {}.{}): "
            "engines only run where they were built, rebuild it here with `goatpose build {}`".format(
                engine_path, built[0], built[1], built[2][0], built[2][1], here[0], here[1], here[2][0], here[2][1],
                sidecar.onnx_path))


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def utc_now() -> str:
    return datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z"


def _slug(text: str) -> str:
    text = re.sub(r"^nvidia\s+", "", text.strip(), flags=re.I)
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "gpu"


def default_engine_path(model: str, input_size, precision: str, batch_profile: Dict[str, int], tensorrt_version: str,
                        gpu_name: str, flip: bool = False, folder: str = "engines") -> str:
    """``engines/<model>_<H>x<W>[_flip]_<precision>_b<min>-<max>_trt<version>_<gpu>.engine``: ``model`` is a pose
    contract's name (``flip``: its flip merge) or a detector ONNX's file name without ``.onnx``."""
    batch = "b{}".format(batch_profile["max"]) if batch_profile["min"] == batch_profile["max"] else "b{}-{}".format(
        batch_profile["min"], batch_profile["max"])
    name = "{}_{}x{}{}_{}_{}_trt{}_{}".format(model, input_size[0], input_size[1], "_flip" if flip else "", precision,
                                              batch, tensorrt_version, _slug(gpu_name))
    return os.path.join(folder, name + ".engine")
