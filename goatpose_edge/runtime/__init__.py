"""Runners behind one small contract (torch, onnxruntime, TensorRT + pycuda), device side: numpy at module level,
backends imported lazily, never torch at import. Filled by the [codec-pipeline] and [engines] issues.
"""
