"""Tests of model-spec resolution and of the ``cgpredict convert`` / ``show`` sub-commands (in-process)."""

from __future__ import annotations

import json
import textwrap
import warnings

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cgpredict.cg import CG
from cgpredict.cli import main
from cgpredict.drawing import cg_listing, draw_cg, layered_layout
from cgpredict.model_spec import default_input_shape, load_model, parse_input_shape, spec_to_cg

torch = pytest.importorskip("torch")

NET_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            y = torch.relu(self.conv(x))
            return self.fc(y.mean(dim=(2, 3)))


    class NeedsArgs(nn.Module):
        def __init__(self, width):
            super().__init__()
    """
)


@pytest.fixture()
def net_file(tmp_path):
    path = tmp_path / "tiny_net.py"
    path.write_text(NET_SOURCE)
    return path


@pytest.fixture()
def onnx_file(tmp_path):
    import numpy as np

    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    w = numpy_helper.from_array(np.ones((5, 3, 1, 1), dtype=np.float32), "w")
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 1, 1])], [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "small.onnx"
    onnx.save(model, path)
    return path


# ---------------------------------------------------------------------- model specs
def test_parse_input_shape() -> None:
    assert parse_input_shape("1,3,32,32") == (1, 3, 32, 32)
    assert parse_input_shape("2x3x8x8") == (2, 3, 8, 8)
    assert parse_input_shape(None) is None
    for bad in ("1,a,3", "0,3,4,4", ""):
        with pytest.raises(ValueError, match="input shape"):
            parse_input_shape(bad)


def test_torchvision_spec_on_meta_and_natural_sizes() -> None:
    model = load_model("torchvision:resnet18")
    assert next(model.parameters()).device.type == "meta"
    assert not model.training
    assert default_input_shape("torchvision:inception_v3") == (1, 3, 299, 299)
    assert default_input_shape("resnet18") == (1, 3, 224, 224)


def test_regnet_falls_back_to_cpu() -> None:
    model = load_model("torchvision:regnet_x_400mf")
    assert next(model.parameters()).device.type == "cpu"


def test_spec_errors_are_clear(tmp_path, net_file) -> None:
    with pytest.raises(ValueError, match="did you mean resnet18"):
        load_model("torchvision:resnet19")
    with pytest.raises(ValueError, match="unknown prefix 'keras'"):
        load_model("keras:resnet")
    with pytest.raises(ValueError, match="no class"):
        load_model(str(net_file))
    with pytest.raises(ValueError, match=r"has no class 'Missing'.*TinyNet"):
        load_model(f"{net_file}:Missing")
    with pytest.raises(ValueError, match="without arguments"):
        load_model(f"{net_file}:NeedsArgs")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(f"{tmp_path / 'absent.py'}:Net")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        spec_to_cg(str(tmp_path / "absent.onnx"))
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="pip install timm"):
            load_model("timm:resnet18")


def test_file_and_onnx_specs(net_file, onnx_file) -> None:
    cg = spec_to_cg(f"{net_file}:TinyNet", input_shape="1,3,8,8")
    assert cg.name == "TinyNet" and cg.input_nodes[0].out_shape == (1, 3, 8, 8)
    assert cg.params == 3 * 4 * 9 + 4 + 4 * 2 + 2
    cg_onnx = spec_to_cg(str(onnx_file))
    assert [n.op for n in cg_onnx.nodes] == ["input", "conv", "relu", "global_pool", "output"]
    with pytest.raises(ValueError, match="fixed input shape"):
        spec_to_cg(str(onnx_file), input_shape=(1, 3, 8, 8))
    assert isinstance(load_model(str(onnx_file)), onnx.ModelProto)


# ---------------------------------------------------------------------- CLI
def test_convert_writes_json_that_loads_back(tmp_path, net_file, capsys) -> None:
    out = tmp_path / "tiny.json"
    rc = main(["convert", f"{net_file}:TinyNet", "--input-shape", "1,3,8,8", "-o", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("TinyNet: 6 nodes, 5 edges")
    assert "conv" in printed and "global_pool" in printed and f"wrote {out}" in printed
    loaded = CG.from_json(out)
    expected = spec_to_cg(f"{net_file}:TinyNet", input_shape=(1, 3, 8, 8))
    assert loaded.to_dict()["nodes"] == expected.to_dict()["nodes"]
    assert loaded.hash() == expected.hash()
    assert json.loads(out.read_text())["schema"] == "cgpredict.cg"


def test_convert_torchvision_and_onnx(tmp_path, onnx_file, capsys) -> None:
    assert main(["convert", "torchvision:resnet18"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("resnet18: 71 nodes") and "1.814 GMACs" in first and "11.690 M params" in first
    out = tmp_path / "small.json"
    assert main(["convert", str(onnx_file), "-o", str(out), "--name", "small-net"]) == 0
    assert CG.from_json(out).name == "small-net"


def test_convert_reports_errors(capsys) -> None:
    assert main(["convert", "torchvision:not_a_model"]) == 2
    err = capsys.readouterr().err
    assert "unknown torchvision model 'not_a_model'" in err and "resnet18" in err
    assert main(["convert", "torchvision:mobilenet_v"]) == 2
    assert "did you mean mobilenet_v2" in capsys.readouterr().err
    assert main(["convert", "resnet18", "--input-shape", "1,x"]) == 2
    assert "input shape" in capsys.readouterr().err


def test_show_draws_png_and_lists(tmp_path, net_file, capsys) -> None:
    from PIL import Image

    cg_path = tmp_path / "tiny.json"
    assert main(["convert", f"{net_file}:TinyNet", "--input-shape", "1,3,8,8", "-o", str(cg_path)]) == 0
    capsys.readouterr()
    png = tmp_path / "tiny.png"
    assert main(["show", str(cg_path), "-o", str(png)]) == 0
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[1] >= image.size[0] // 4
    assert main(["show", str(cg_path)]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].startswith("TinyNet:")
    assert any(" conv " in line and "(1, 4, 8, 8)" in line for line in listing.splitlines())
    assert main(["show", str(tmp_path / "missing.json")]) == 2


def test_layout_is_layered_and_tall_graphs_get_tall_figures(tmp_path) -> None:
    cg = spec_to_cg("torchvision:resnet18")
    pos = layered_layout(cg)
    for src, dst in cg.edges:
        assert pos[src][1] > pos[dst][1]  # every edge points downwards
    path = draw_cg(cg, tmp_path / "r18.png", dpi=40)
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    assert height > 5 * width
    with pytest.raises(ValueError, match="png"):
        draw_cg(cg, tmp_path / "r18.txt")
    assert len(cg_listing(cg).splitlines()) == cg.num_nodes + 2


def test_unknown_ops_are_labelled_in_listing(tmp_path) -> None:
    nodes = [helper.make_node("Elu", ["x"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "elu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cg = spec_to_cg(str(path))
    assert "?Elu" in cg_listing(cg)
    assert draw_cg(cg, tmp_path / "elu.svg").read_text().startswith("<?xml")
