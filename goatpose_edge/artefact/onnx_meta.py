"""Read an ONNX file's ``metadata_props`` (and the model contract stored there) without the ``onnx`` package.

The device side (a Jetson building engines with TensorRT) has no ``onnx`` wheel for Python 3.6, and TensorRT's parser
does not expose metadata. The file is a protobuf ``ModelProto``; ``metadata_props`` is its field 14, a repeated
``StringStringEntryProto {key = 1; value = 2}``. Other top-level fields (the graph) are skipped by length, so the
reader touches a few bytes of even a large model.
"""

import io
import json
from typing import BinaryIO, Dict

from goatpose_edge.artefact.contract import METADATA_KEY, ModelContract
from goatpose_edge.errors import ContractError, GoatPoseError

_METADATA_FIELD = 14
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5
_IR_VERSION_FIELD, _GRAPH_FIELD = 1, 7
#: wire type of each ModelProto field (onnx.proto): a file whose fields disagree is some other protobuf, or no protobuf
_MODEL_FIELD_WIRES = {1: _WIRE_VARINT, 2: _WIRE_BYTES, 3: _WIRE_BYTES, 4: _WIRE_BYTES, 5: _WIRE_VARINT, 6: _WIRE_BYTES,
                      7: _WIRE_BYTES, 8: _WIRE_BYTES, 14: _WIRE_BYTES, 20: _WIRE_BYTES, 25: _WIRE_BYTES}
_REEXPORT = "re-export it with `goatpose export`"


class OnnxFileError(GoatPoseError):
    """An ONNX file that is missing or not a readable ModelProto."""


def _varint(stream: BinaryIO) -> int:
    result, shift = 0, 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError("truncated varint")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes):
    """(field number, bytes value) of the length-delimited fields of a small message (other wire types skipped)."""
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        key = _varint(stream)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_BYTES:
            yield number, stream.read(_varint(stream))
        elif wire == _WIRE_VARINT:
            _varint(stream)
        elif wire in (_WIRE_FIXED64, _WIRE_FIXED32):
            stream.read(8 if wire == _WIRE_FIXED64 else 4)
        else:
            raise ValueError("unsupported wire type {}".format(wire))


def read_metadata(path: str) -> Dict[str, str]:
    """``metadata_props`` of the ONNX file at ``path`` as a dict.

    The top-level fields are checked against ModelProto (wire types, an IR version and a graph present), so an empty
    file, or a file that is not an ONNX model, fails here in one line instead of reading as a model without metadata.
    """
    try:
        with open(path, "rb") as stream:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(0)
            if size == 0:
                raise OnnxFileError("{} is an empty file (0 bytes), not an ONNX model; {}".format(path, _REEXPORT))
            metadata = {}
            seen = set()
            while stream.tell() < size:
                key = _varint(stream)
                number, wire = key >> 3, key & 7
                if number == 0:
                    raise ValueError("field number 0")
                expected = _MODEL_FIELD_WIRES.get(number)
                if expected is not None and wire != expected:
                    raise ValueError("field {} has wire type {}, ModelProto's has {}".format(number, wire, expected))
                seen.add(number)
                if wire == _WIRE_VARINT:
                    _varint(stream)
                elif wire in (_WIRE_FIXED64, _WIRE_FIXED32):
                    stream.seek(8 if wire == _WIRE_FIXED64 else 4, 1)
                elif wire == _WIRE_BYTES:
                    length = _varint(stream)
                    if stream.tell() + length > size:
                        raise EOFError("field {} runs past the end of the file".format(number))
                    if number == _METADATA_FIELD:
                        entry = dict(_fields(stream.read(length)))
                        metadata[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
                    else:
                        stream.seek(length, 1)
                else:
                    raise ValueError("unsupported wire type {} for field {}".format(wire, number))
            if stream.tell() > size:
                raise EOFError("the last field runs past the end of the file")
    except (OSError, IOError) as exc:
        raise OnnxFileError("cannot read ONNX file {}: {}".format(path, exc.strerror or exc)) from exc
    except (EOFError, ValueError, UnicodeDecodeError) as exc:
        raise OnnxFileError("{} is not an ONNX model (not a valid ONNX file or is truncated: {}); {}".format(
            path, exc, _REEXPORT)) from exc
    missing = [name for number, name in ((_IR_VERSION_FIELD, "IR version"), (_GRAPH_FIELD, "graph"))
               if number not in seen]
    if missing:
        raise OnnxFileError("{} is not an ONNX model (it has no {}); {}".format(path, " and no ".join(missing),
                                                                                _REEXPORT))
    return metadata


def read_contract(path: str) -> ModelContract:
    """The model contract stored by ``goatpose export`` in the ONNX file's metadata."""
    metadata = read_metadata(path)
    if METADATA_KEY not in metadata:
        raise ContractError("{} carries no goatpose model contract in its metadata; export it with "
                            "`goatpose export` (or add the '{}' entry)".format(path, METADATA_KEY))
    return ModelContract.from_json(metadata[METADATA_KEY])


#: Key of the complexity record (``models.complexity.complexity_record``) that ``goatpose export`` stores.
COMPLEXITY_KEY = "goatpose_complexity"


def read_complexity(path: str):
    """The exported model's complexity record (params, conv MACs, the paper's figures), None if not recorded."""
    value = read_metadata(path).get(COMPLEXITY_KEY)
    return json.loads(value) if value else None
