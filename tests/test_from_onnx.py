"""Tests of cgpredict.converters.from_onnx on hand-built ONNX graphs and small exported models."""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from cgpredict.converters import from_onnx
from cgpredict.errors import CGConversionError

RNG = np.random.default_rng(0)
OPSET = 17


def _init(name: str, *shape: int, dtype: type = np.float32, value: np.ndarray | None = None) -> onnx.TensorProto:
    array = RNG.standard_normal(shape).astype(dtype) if value is None else np.asarray(value, dtype=dtype)
    return numpy_helper.from_array(array, name)


def _model(nodes, inputs, outputs, inits=(), opset: int = OPSET, extra_opsets=()) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits))
    opsets = [helper.make_opsetid("", opset), *extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _vi(name: str, *shape, dtype=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _ops(cg) -> list[str]:
    return [n.op for n in cg.nodes]


# ---------------------------------------------------------------------- a hand-made CNN
def _cnn() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["bn1"], name="bn1"),
        helper.make_node("Clip", ["bn1", "zero", "six"], ["r1"], name="relu6"),
        helper.make_node("Identity", ["r1"], ["id1"], name="identity"),
        helper.make_node("Conv", ["id1", "wd"], ["dw"], name="dwconv", kernel_shape=[3, 3], pads=[0, 0, 1, 1], group=8),
        helper.make_node("Split", ["dw", "split_sizes"], ["s0", "s1"], name="split", axis=1),
        helper.make_node("Pad", ["s1", "pads"], ["p1"], name="pad", mode="constant"),
        helper.make_node("Resize", ["s0", "", "scales"], ["u0"], name="resize", mode="nearest"),
        helper.make_node("Concat", ["u0", "p1"], ["cat"], name="concat", axis=-3),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fcw", "fcb"], ["y"], name="fc", transB=1),
    ]
    inits = [
        _init("w1", 8, 3, 3, 3), _init("b1", 8),
        _init("g1", 8), _init("be1", 8), _init("m1", 8), _init("v1", 8, value=np.ones(8)),
        _init("zero", dtype=np.float32, value=0.0), _init("six", dtype=np.float32, value=6.0),
        _init("wd", 8, 1, 3, 3),
        _init("split_sizes", 2, dtype=np.int64, value=[4, 4]),
        _init("pads", 8, dtype=np.int64, value=[0, 0, 3, 2, 0, 0, 4, 5]),
        _init("scales", 4, value=[1, 1, 2, 2]),
        _init("fcw", 10, 8), _init("fcb", 10),
    ]
    return _model(nodes, [_vi("x", 1, 3, 16, 16)], [_vi("y", 1, 10)], inits)


def test_handmade_cnn_maps_every_op() -> None:
    cg = from_onnx(_cnn())
    cg.validate()
    assert _ops(cg) == [
        "input", "conv", "batch_norm", "relu6", "depthwise_conv", "split", "split", "pad", "upsample",
        "concat", "global_pool", "reshape", "linear", "output",
    ]
    by_name = {n.name: n for n in cg.nodes}
    conv = by_name["conv1"]
    assert conv.weight_shape == (8, 3, 3, 3) and conv.bias and conv.stride == (2, 2) and conv.padding == (1, 1)
    assert conv.out_shape == (1, 8, 8, 8) and conv.params == 8 * 27 + 8
    assert conv.macs == 8 * 8 * 8 * 27
    bn = by_name["bn1"]
    assert bn.params == 16 and bn.weight_shape == (8,)  # running mean/var are buffers
    dw = by_name["dwconv"]
    assert dw.groups == 8 and dw.attrs["pads"] == [0, 0, 1, 1] and dw.padding == (0, 0)
    assert dw.out_shape == (1, 8, 7, 7)
    splits = [n for n in cg.nodes if n.op == "split"]
    # output position, and (where it differs) the offset along the split dim
    assert [s.attrs for s in splits] == [{"dim": 1, "index": 0}, {"dim": 1, "index": 1, "start": 4}]
    assert by_name["pad"].attrs == {"pad": [2, 5, 3, 4], "mode": "constant"}  # torch's F.pad order
    assert by_name["resize"].attrs["scale"] == [2.0, 2.0] and by_name["resize"].out_shape == (1, 4, 14, 14)
    assert by_name["gap"].attrs == {"mode": "avg"}
    fc = by_name["fc"]
    assert fc.weight_shape == (10, 8) and fc.bias and fc.params == 90 and fc.macs == 80
    # params: everything learned except the BN running statistics (m1, v1) and scalar/int constants
    assert cg.params == (8 * 27 + 8) + 16 + 72 + 90
    assert cg.flops == conv.macs + dw.macs + fc.macs
    assert cg.meta["source"] == "onnx"


def test_modelproto_is_not_modified_and_path_works(tmp_path) -> None:
    model = _cnn()
    before = model.SerializeToString()
    cg_proto = from_onnx(model)
    assert model.SerializeToString() == before
    path = tmp_path / "cnn.onnx"
    onnx.save(model, path)
    cg_file = from_onnx(path)
    assert cg_file.name == "cnn" and cg_file.meta["file"] == str(path)
    assert cg_file.hash() == cg_proto.hash()


def test_symbolic_batch_is_fixed_to_one() -> None:
    model = _cnn()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    cg = from_onnx(model)
    assert cg.input_nodes[0].out_shape == (1, 3, 16, 16)
    assert cg.meta["fixed_batch"] == ["x[N]"]


def test_symbolic_spatial_dim_is_a_clear_error() -> None:
    model = _cnn()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    with pytest.raises(CGConversionError, match=r"'x'.*symbolic dimension 'H'"):
        from_onnx(model)


def test_shape_bookkeeping_is_folded_not_nodes() -> None:
    # y = Reshape(x, Concat(Shape(x)[0:1], [-1])) @ W + b  (the legacy exporter's flatten + linear)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero_idx"], ["n"], name="gather_n", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat_shape", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "b"], ["y"], name="bias_add"),
    ]
    inits = [
        _init("zero_idx", dtype=np.int64, value=0), _init("axes0", 1, dtype=np.int64, value=[0]),
        _init("minus1", 1, dtype=np.int64, value=[-1]), _init("w", 48, 5), _init("b", 5),
    ]
    cg = from_onnx(_model(nodes, [_vi("x", 1, 3, 4, 4)], [_vi("y", 1, 5)], inits))
    assert _ops(cg) == ["input", "relu", "reshape", "linear", "output"]
    linear = cg.nodes[3]
    assert linear.weight_shape == (5, 48) and linear.bias and linear.params == 48 * 5 + 5
    assert linear.macs == 48 * 5 and linear.source_op == "MatMul+Add"


def test_shared_initializer_counted_once() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
        helper.make_node("MatMul", ["a", "w"], ["y"], name="mm2"),
    ]
    cg = from_onnx(_model(nodes, [_vi("x", 1, 6)], [_vi("y", 1, 6)], [_init("w", 6, 6)]))
    assert [n.params for n in cg.nodes if n.op == "linear"] == [36, 0]
    assert cg.params == 36 and cg.flops == 72


# ---------------------------------------------------------------------- fused patterns
def _act_model(build) -> onnx.ModelProto:
    nodes, inits = build()
    return _model(nodes, [_vi("x", 1, 4, 8)], [_vi("y", 1, 4, 8)], inits)


def test_silu_and_hardswish_patterns() -> None:
    def build():
        return [
            helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
            helper.make_node("Mul", ["x", "s"], ["a"], name="silu_mul"),
            helper.make_node("HardSigmoid", ["a"], ["h"], name="hsig", alpha=1 / 6, beta=0.5),
            helper.make_node("Mul", ["h", "a"], ["b"], name="hswish_mul"),
            helper.make_node("Sigmoid", ["b"], ["g"], name="gate"),
            helper.make_node("Mul", ["g", "a"], ["y"], name="gating"),  # a gate, not silu
        ], []

    cg = from_onnx(_act_model(build))
    assert _ops(cg) == ["input", "silu", "hardswish", "sigmoid", "mul", "output"]
    assert cg.nodes[4].inputs == [3, 1]


@pytest.mark.parametrize("form", ["half_last", "half_first", "half_inner"])
def test_erf_gelu_pattern(form: str) -> None:
    def build():
        nodes = [
            helper.make_node("Div", ["x", "sqrt2"], ["d"], name="div"),
            helper.make_node("Erf", ["d"], ["e"], name="erf"),
            helper.make_node("Add", ["e", "one"], ["p"], name="add1"),
        ]
        if form == "half_last":
            nodes += [helper.make_node("Mul", ["x", "p"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
        elif form == "half_first":
            nodes += [helper.make_node("Mul", ["x", "half"], ["xh"]), helper.make_node("Mul", ["xh", "p"], ["y"])]
        else:
            nodes += [helper.make_node("Mul", ["p", "half"], ["ph"]), helper.make_node("Mul", ["x", "ph"], ["y"])]
        inits = [_init("sqrt2", value=math.sqrt(2)), _init("one", value=1.0), _init("half", value=0.5)]
        return nodes, inits

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Erf must not survive as an unknown node
        cg = from_onnx(_act_model(build))
    assert _ops(cg) == ["input", "gelu", "output"]


def test_decomposed_layer_norm_with_affine() -> None:
    def build():
        nodes = [
            helper.make_node("ReduceMean", ["x"], ["mu"], axes=[-1]),
            helper.make_node("Sub", ["x", "mu"], ["c"]),
            helper.make_node("Pow", ["c", "two"], ["sq"]),
            helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
            helper.make_node("Add", ["var", "eps"], ["ve"]),
            helper.make_node("Sqrt", ["ve"], ["sd"]),
            helper.make_node("Div", ["c", "sd"], ["n"], name="ln_div"),
            helper.make_node("Mul", ["n", "gamma"], ["nm"]),
            helper.make_node("Add", ["nm", "beta"], ["y"]),
        ]
        inits = [_init("two", value=2.0), _init("eps", value=1e-5), _init("gamma", 8), _init("beta", 8)]
        return nodes, inits

    cg = from_onnx(_act_model(build))
    assert _ops(cg) == ["input", "layer_norm", "output"]
    ln = cg.nodes[1]
    assert ln.weight_shape == (8,) and ln.bias and ln.params == 16


def test_attention_pattern_becomes_sdpa() -> None:
    # q, k, v: (1, 2, 5, 4); scores = (q*s) @ transpose(k*s) -> softmax -> @ v
    nodes = [
        helper.make_node("Relu", ["q_in"], ["q"]),
        helper.make_node("Relu", ["k_in"], ["k"]),
        helper.make_node("Relu", ["v_in"], ["v"]),
        helper.make_node("Mul", ["q", "s"], ["qs"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("Mul", ["kt", "s"], ["kts"]),
        helper.make_node("MatMul", ["qs", "kts"], ["scores"]),
        helper.make_node("Add", ["scores", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["y"], name="attn_out"),
    ]
    inputs = [_vi(n, 1, 2, 5, 4) for n in ("q_in", "k_in", "v_in")]
    inits = [_init("s", value=0.5 ** 0.5), _init("mask", 5, 5)]
    cg = from_onnx(_model(nodes, inputs, [_vi("y", 1, 2, 5, 4)], inits))
    assert sorted(_ops(cg)) == sorted(["input"] * 3 + ["relu"] * 3 + ["sdpa", "output"])
    sdpa = next(n for n in cg.nodes if n.op == "sdpa")
    assert [cg.nodes[i].op for i in sdpa.inputs] == ["relu"] * 3
    assert [cg.nodes[cg.nodes[i].inputs[0]].name for i in sdpa.inputs] == ["q_in", "k_in", "v_in"]
    assert sdpa.macs == 2 * 5 * 5 * (4 + 4)


def test_matmul_of_two_activations_without_softmax_is_matmul() -> None:
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"])]
    cg = from_onnx(_model(nodes, [_vi("a", 1, 3, 4), _vi("b", 1, 4, 5)], [_vi("y", 1, 3, 5)]))
    assert _ops(cg) == ["input", "input", "matmul", "output"]
    assert cg.flops == 3 * 5 * 4


def test_reductions_and_seq_first_batch_axis() -> None:
    # (N, L, E) -> transpose to (L, N, E) -> linear: shapes must come back batch first
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["t", "w"], ["l"], name="proj"),
        helper.make_node("ReduceMean", ["l", "ax"], ["y"], keepdims=0, name="mean"),
    ]
    inits = [_init("w", 8, 6), _init("ax", 1, dtype=np.int64, value=[0])]
    model = _model(nodes, [_vi("x", 1, 4, 8)], [_vi("y", 1, 6)], inits, opset=18)
    cg = from_onnx(model)
    proj = next(n for n in cg.nodes if n.name == "proj")
    assert proj.out_shape == (1, 4, 6) and proj.macs == 4 * 6 * 8
    mean = next(n for n in cg.nodes if n.name == "mean")
    assert mean.op == "mean" and mean.attrs == {"dims": [0]}


# ---------------------------------------------------------------------- bad input
def test_missing_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "nope.onnx"
    with pytest.raises(CGConversionError, match=r"nope\.onnx.*does not exist"):
        from_onnx(path)


def test_corrupt_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07\x12\x0bnot an onnx model at all \xff\xfe" * 4)
    with pytest.raises(CGConversionError, match=r"corrupt\.onnx"):
        from_onnx(path)
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(CGConversionError, match=r"notes\.onnx"):
        from_onnx(text)


def test_checker_failure_is_a_clear_error() -> None:
    nodes = [helper.make_node("Relu", ["undefined_value"], ["y"], name="bad")]
    with pytest.raises(CGConversionError, match="ONNX checker"):
        from_onnx(_model(nodes, [_vi("x", 1, 4)], [_vi("y", 1, 4)]))


def test_wrong_argument_type() -> None:
    with pytest.raises(CGConversionError, match="file path or an onnx.ModelProto"):
        from_onnx(42)  # type: ignore[arg-type]


def _custom_op_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Swoosh", ["r"], ["s"], name="custom", domain="my.ops"),
        helper.make_node("Elu", ["s"], ["l"], name="elu"),
        helper.make_node("Add", ["l", "r"], ["y"], name="add"),
    ]
    return _model(nodes, [_vi("x", 1, 4, 3)], [_vi("y", 1, 4, 3)], extra_opsets=[helper.make_opsetid("my.ops", 1)])


def test_unknown_ops_warn_and_become_unknown_nodes() -> None:
    from cgpredict.converters import UncountedOpWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cg = from_onnx(_custom_op_model())
    uncounted = sorted(str(w.message) for w in caught if issubclass(w.category, UncountedOpWarning))
    assert len(uncounted) == 2  # one per op type, naming the op and the node
    assert "op 'Elu' (1 node, at 'elu')" in uncounted[0] and "0 MACs" in uncounted[0]
    assert "op 'my.ops.Swoosh' (1 node, at 'custom')" in uncounted[1]
    assert _ops(cg) == ["input", "relu", "unknown", "unknown", "add", "output"]
    assert [n.source_op for n in cg.nodes if n.op == "unknown"] == ["my.ops.Swoosh", "Elu"]
    assert cg.nodes[2].out_shape == (1, 4, 3)  # assumed from its input (shape inference skips it)


def test_strict_refuses_unknown_ops() -> None:
    with pytest.raises(CGConversionError, match=r"my\.ops\.Swoosh"):
        from_onnx(_custom_op_model(), strict=True)


# ---------------------------------------------------------------------- real exporters
def _small_net():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.act = nn.SiLU()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.act(self.bn(self.conv(x)))
            return self.fc(torch.flatten(self.pool(x), 1))

    torch.manual_seed(0)
    return Net().eval(), torch.randn(1, 3, 8, 8)


def test_legacy_exporter_file(tmp_path) -> None:
    import torch

    net, x = _small_net()
    path = tmp_path / "legacy.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=13, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    cg = from_onnx(path)
    hist = cg.op_histogram()
    # the legacy exporter folds eval-mode batch norm into the convolution
    assert hist["conv"] == 1 and hist["silu"] == 1 and hist["global_pool"] == 1 and hist["linear"] == 1
    assert "unknown" not in hist
    assert cg.flops == 8 * 8 * 8 * 27 + 32


def test_dynamo_export_params_and_macs() -> None:
    import torch

    net, x = _small_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, (x,), dynamo=True, optimize=False, verbose=False)
    cg = from_onnx(program.model_proto, name="net")
    assert cg.name == "net"
    assert cg.params == sum(p.numel() for p in net.parameters())
    assert [n.op for n in cg.nodes] == [
        "input", "conv", "batch_norm", "silu", "global_pool", "reshape", "linear", "output"
    ]
    assert cg.nodes[1].bias is False and cg.nodes[6].bias is True
    assert cg.flops == 8 * 8 * 8 * 27 + 32


def test_onnx_attention_op_is_sdpa() -> None:
    nodes = [helper.make_node("Attention", ["q", "k", "v"], ["y"], name="attn")]
    inputs = [_vi("q", 1, 2, 5, 4), _vi("k", 1, 2, 7, 4), _vi("v", 1, 2, 7, 3)]
    cg = from_onnx(_model(nodes, inputs, [_vi("y", 1, 2, 5, 3)], opset=23))
    sdpa = next(n for n in cg.nodes if n.op == "sdpa")
    assert sdpa.out_shape == (1, 2, 5, 3) and len(sdpa.inputs) == 3
    assert sdpa.macs == 2 * 5 * 7 * (4 + 3)


def test_data_dependent_slice_bounds_still_map_to_split() -> None:
    # start = int(max(x)) is computed from the activation: the cut axis comes from the shapes
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0, axes=[0, 1, 2]),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["mi", "one"], ["start"]),
        helper.make_node("Add", ["start", "three"], ["end"]),
        helper.make_node("Slice", ["x", "start", "end", "axis"], ["y"], name="dyn_slice"),
    ]
    inits = [_init("one", 1, dtype=np.int64, value=[1]), _init("three", 1, dtype=np.int64, value=[3]),
             _init("axis", 1, dtype=np.int64, value=[2])]
    cg = from_onnx(_model(nodes, [_vi("x", 1, 2, 8)], [_vi("y", 1, 2, 3)], inits, opset=13))
    assert [(n.op, n.out_shape) for n in cg.nodes] == [("input", (1, 2, 8)), ("split", (1, 2, 3)), ("output", (1, 2, 3))]
    assert cg.nodes[1].attrs == {"dim": 2, "index": 0}


# ---------------------------------------------------------------------- hostile constants (issue 21, item 5)
def _constant_of_shape_bomb(side: int = 12000) -> onnx.ModelProto:
    """A ~200-byte model whose int64 ConstantOfShape would be side×side elements if folded."""
    nodes = [
        helper.make_node("Constant", [], ["s"], value=helper.make_tensor("sv", TensorProto.INT64, [2], [side, side])),
        helper.make_node("ConstantOfShape", ["s"], ["c"], name="bomb",
                         value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
        helper.make_node("Cast", ["c"], ["cf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "cf"], ["y"], name="add"),
    ]
    return _model(nodes, [_vi("x", 1, 1)], [_vi("y", side, side)])


# peak RSS of the converting process: VmHWM of its own address space (ru_maxrss would also count
# the pytest parent's pages that a forked child shares before it execs)
_BOMB_SCRIPT = """
import sys, time
from cgpredict.converters import from_onnx
start = time.perf_counter()
cg = from_onnx(sys.argv[1])
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(seconds, peak, cg.num_nodes)
"""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_constant_of_shape_bomb_is_not_materialised(tmp_path) -> None:
    import subprocess
    import sys

    model = _constant_of_shape_bomb()
    path = tmp_path / "bomb.onnx"
    onnx.save(model, path)
    assert path.stat().st_size < 400
    run = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    seconds, peak_kib, num_nodes = run.stdout.split()
    assert float(seconds) < 10
    assert int(peak_kib) < 1_000_000  # KiB: < 1 GB (folding it took ~8 GB)
    assert int(num_nodes) == 3  # input, add, output: the constant stays a constant


def test_a_needed_oversized_constant_is_refused_naming_its_node() -> None:
    # the Clip bound is read from a 3000×3000 constant: evaluating it is refused, not attempted
    nodes = [
        helper.make_node("Constant", [], ["s"], value=helper.make_tensor("sv", TensorProto.INT64, [2], [3000, 3000])),
        helper.make_node("ConstantOfShape", ["s"], ["c"], name="huge_table",
                         value=helper.make_tensor("v", TensorProto.INT64, [1], [0])),
        helper.make_node("ReduceMax", ["c"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["lo"], to=TensorProto.FLOAT),
        helper.make_node("Clip", ["x", "lo"], ["y"], name="clip"),
    ]
    model = _model(nodes, [_vi("x", 1, 4)], [_vi("y", 1, 4)], opset=13)
    with pytest.raises(CGConversionError, match=r"ConstantOfShape node 'huge_table'.*9,000,000 elements"):
        from_onnx(model)


def test_fold_cap_estimates_amplifying_ops() -> None:
    from cgpredict.converters._onnx_eval import MAX_FOLD_ELEMENTS, ConstantTooLarge, estimated_numel, evaluate_node

    expand = helper.make_node("Expand", ["a", "shape"], ["out"], name="expand")
    feeds = {"a": np.zeros((1, 1), np.int64), "shape": np.array([5000, 5000], np.int64)}
    assert estimated_numel(expand, feeds, {}) == 25_000_000 > MAX_FOLD_ELEMENTS
    with pytest.raises(ConstantTooLarge, match="Expand node 'expand'"):
        evaluate_node(expand, feeds, {"": OPSET}, {}, {})
    small = {"a": np.zeros((1, 1), np.int64), "shape": np.array([2, 3], np.int64)}
    assert evaluate_node(expand, small, {"": OPSET}, {}, {})[0].shape == (2, 3)
    outer = helper.make_node("Mul", ["col", "row"], ["out"], name="outer")
    assert estimated_numel(outer, {"col": np.zeros((4000, 1)), "row": np.zeros((1, 4000))}, {}) == 16_000_000
    rng = helper.make_node("Range", ["s", "l", "d"], ["out"])
    assert estimated_numel(rng, {"s": np.array(0), "l": np.array(10), "d": np.array(3)}, {}) == 4


def _deep_shape_arithmetic(depth: int) -> onnx.ModelProto:
    """``depth`` reshapes, each to a target computed from the previous one's shape through ``Div``
    (which ONNX data propagation does not follow): every level needs one more folding round."""
    nodes, prev = [], "x"
    inits = [_init("two", dtype=np.int64, value=2)]
    for k in range(depth):
        nodes += [
            helper.make_node("Shape", [prev], [f"s{k}"]),
            helper.make_node("Mul", [f"s{k}", "two"], [f"m{k}"]),
            helper.make_node("Div", [f"m{k}", "two"], [f"t{k}"]),
            helper.make_node("Reshape", [prev, f"t{k}"], [f"r{k}"], name=f"reshape{k}"),
        ]
        prev = f"r{k}"
    nodes.append(helper.make_node("Relu", [prev], ["y"]))
    return _model(nodes, [_vi("x", 1, 4, 6)], [_vi("y", 1, 4, 6)], inits)


def test_deep_shape_arithmetic_is_folded_level_by_level(monkeypatch) -> None:
    from cgpredict.converters import _onnx_load

    cg = from_onnx(_deep_shape_arithmetic(12))
    assert [n.op for n in cg.nodes] == ["input", "relu", "output"]  # no-op reshapes removed
    monkeypatch.setattr(_onnx_load, "_MAX_FOLD_ROUNDS", 8)  # the former limit gives up
    with pytest.raises(CGConversionError, match="no static shape"):
        from_onnx(_deep_shape_arithmetic(12))


def test_einsum_batched_matmul_is_a_matmul() -> None:
    nodes = [helper.make_node("Einsum", ["q", "k"], ["s"], equation="bhqd,bhkd->bhqk", name="scores")]
    model = _model(nodes, [_vi("q", 1, 2, 5, 4), _vi("k", 1, 2, 7, 4)], [_vi("s", 1, 2, 5, 7)], opset=13)
    cg = from_onnx(model)
    assert [n.op for n in cg.nodes] == ["input", "input", "matmul", "output"]
    assert cg.nodes[2].macs == 2 * 5 * 7 * 4
    outer = [helper.make_node("Einsum", ["a", "b"], ["y"], equation="i,j->ij", name="outer")]
    with pytest.warns(RuntimeWarning, match="'Einsum'"):  # not a matmul: unknown, uncounted
        cg = from_onnx(_model(outer, [_vi("a", 3), _vi("b", 4)], [_vi("y", 3, 4)], opset=13))
    assert [n.op for n in cg.nodes] == ["input", "input", "unknown", "output"]


def test_leaky_relu_is_a_relu_node_with_its_slope() -> None:
    nodes = [helper.make_node("LeakyRelu", ["x"], ["a"], name="leaky", alpha=0.2),
             helper.make_node("LeakyRelu", ["a"], ["y"], name="leaky_default")]
    cg = from_onnx(_model(nodes, [_vi("x", 1, 4, 3)], [_vi("y", 1, 4, 3)]))
    assert _ops(cg) == ["input", "relu", "relu", "output"]
    assert [cg.nodes[i].attrs["negative_slope"] for i in (1, 2)] == [pytest.approx(0.2), pytest.approx(0.01)]
    x = torch.linspace(-2, 2, 12).reshape(1, 4, 3)
    with torch.no_grad():
        expected = torch.nn.functional.leaky_relu(torch.nn.functional.leaky_relu(x, 0.2), 0.01)
        assert torch.allclose(cg.to_module()(x), expected)
