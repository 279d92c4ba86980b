"""The ONNX operators the TensorRT 8.2 ONNX parser supports, and its documented restrictions.

Source: onnx/onnx-tensorrt ``docs/operators.md`` on branch ``release/8.2-GA`` (commit 85e79f6, "TensorRT 8.2 ONNX Parser
Release"): the operators marked Supported = Y ("TensorRT 8.2 supports operators up to Opset 13"). The same table on
``release/8.0-GA`` (TensorRT 8.0.1, JetPack 4.6.0) lacks the eight operators of ``NOT_IN_TRT80``.
"""

MAX_OPSET = 13

SUPPORTED_OPS = frozenset((
    'Abs', 'Acos', 'Acosh', 'Add', 'And', 'ArgMax', 'ArgMin', 'Asin', 'Asinh', 'Atan', 'Atanh', 'AveragePool',
    'BatchNormalization', 'Cast', 'Ceil', 'Celu', 'Clip', 'Concat', 'Constant', 'ConstantOfShape', 'Conv',
    'ConvTranspose', 'Cos', 'Cosh', 'CumSum', 'DepthToSpace', 'DequantizeLinear', 'Div', 'Dropout', 'Einsum',
    'Elu', 'Equal', 'Erf', 'Exp', 'Expand', 'EyeLike', 'Flatten', 'Floor', 'Gather', 'GatherElements',
    'GatherND', 'Gemm', 'GlobalAveragePool', 'GlobalLpPool', 'GlobalMaxPool', 'Greater', 'GreaterOrEqual',
    'GRU', 'HardSigmoid', 'Identity', 'If', 'ImageScaler', 'InstanceNormalization', 'IsNaN', 'LeakyRelu',
    'Less', 'LessOrEqual', 'Log', 'LogSoftmax', 'Loop', 'LpNormalization', 'LpPool', 'LRN', 'LSTM', 'MatMul',
    'Max', 'MaxPool', 'Mean', 'Min', 'Mul', 'Neg', 'NonMaxSuppression', 'Not', 'Or', 'Pad',
    'ParametricSoftplus', 'Pow', 'PRelu', 'QuantizeLinear', 'RandomUniform', 'RandomUniformLike', 'Range',
    'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin',
    'ReduceProd', 'ReduceSum', 'ReduceSumSquare', 'Relu', 'Reshape', 'Resize', 'ReverseSequence', 'RNN',
    'Round', 'ScaledTanh', 'Scan', 'Scatter', 'ScatterElements', 'ScatterND', 'Selu', 'Shape', 'Sigmoid',
    'Sign', 'Sin', 'Sinh', 'Size', 'Slice', 'Softmax', 'Softplus', 'Softsign', 'SpaceToDepth', 'Split', 'Sqrt',
    'Squeeze', 'Sub', 'Sum', 'Tan', 'Tanh', 'ThresholdedRelu', 'Tile', 'TopK', 'Transpose', 'Unsqueeze',
    'Upsample', 'Where'
))

NOT_IN_TRT80 = frozenset(("Einsum", "GatherND", "IsNaN", "Round", "Scatter", "ScatterElements", "ScatterND", "Sign"))

# Restrictions of the same table that an exported pose graph can run into.
RESIZE_MODES = ("nearest", "linear")
RESIZE_COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners")
RESIZE_NEAREST_MODES = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
# op -> index of the input that must be an initializer (constant)
CONSTANT_INPUTS = {
    "Conv": 1,  # weights W
    "ConvTranspose": 1,
    "CumSum": 1,  # axis
    "Slice": 3,  # axes
    "Squeeze": 1,  # axes (opset 13)
    "Unsqueeze": 1,
    "TopK": 1,  # K
}
# op -> index of the zero-point input that must be zero
ZERO_POINT_INPUTS = {"QuantizeLinear": 2, "DequantizeLinear": 2}
POOLING_OPS = ("AveragePool", "MaxPool", "LpPool")  # 2D or 3D only; MaxPool without the Indices output

