"""goatpose-edge: GoatPose / HRNet pose estimation from PyTorch checkpoint to TensorRT engine on Jetson and CUDA GPUs."""

__version__ = "0.1.0"
