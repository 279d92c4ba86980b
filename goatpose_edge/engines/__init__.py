"""TensorRT engines: precision policy, builder (TensorRT 8.0/8.2 and 10.x), INT8 calibration (entropy calibrator
or Q/DQ), sidecar JSON. TensorRT and pycuda are imported only when a build or a runner needs them."""
