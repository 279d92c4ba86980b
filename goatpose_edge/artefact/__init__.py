"""What a model artefact carries, below every layer that reads or writes one (device side: no torch, no onnx).

    contract    the model contract: input size and tensor names, normalisation, keypoints, flip pairs, skeleton
    onnx_meta   the contract and complexity stored in an ONNX file's metadata, read without the onnx package
    sidecar     a TensorRT engine's ``<engine>.json``: contract, precision, build platform, profile, calibration

``runtime/`` (which loads artefacts) and ``engines/`` (which builds them) both import from here; nothing here imports
them.
"""
