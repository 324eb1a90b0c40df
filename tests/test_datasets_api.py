"""The family registry and loading API: names, errors, validated CSV tables, user families, CLI."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import cgpredict.datasets as ds
from cgpredict.datasets import Family, FamilyUnavailableError, hiaml, load_family, registry

FIXED_NAMES = [
    "nasbench101",
    "nasbench201",
    "nasbench301",
    "transbench101_micro",
    "nats_sss",
    "proxylessnas",
    "ofa_mbv3",
    "ofa_resnet50",
    "hiaml",
    "inception",
    "two_path",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path_factory.mktemp("cgcache")))


def _fake_labelled_module(monkeypatch: pytest.MonkeyPatch, name: str = "fakefam") -> types.ModuleType:
    """Register a tiny labelled family ``cgpredict.datasets.<name>`` for the test: a module that
    registers its :class:`FamilySpec` as a shipped family module does."""
    module = types.ModuleType(f"cgpredict.datasets.{name}")
    module.build = lambda arch, task=None: nn.Sequential(nn.Conv2d(3, 4 + sum(arch), 1), nn.Flatten())
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, name))
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))

    def spec() -> registry.FamilySpec:
        return registry.FamilySpec(name=name, tasks=("taskA", "taskB"), input_shape=(1, 3, 8, 8),
                                   flops_mode="torchvision", parse=hiaml.parse_arch, format=hiaml.format_arch,
                                   build=module.build, sample=hiaml.sample)

    registry.register_family(spec)
    return module


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------- registry
def test_list_families_has_the_fixed_names() -> None:
    assert ds.list_families() == FIXED_NAMES


def test_own_families_are_available_and_build() -> None:
    for name in ("hiaml", "inception", "two_path"):
        assert ds.is_available(name)
        arch = ds.sample(name, 1, seed=3)[0]
        net = ds.build(name, arch)
        assert isinstance(net, nn.Module)
        assert ds.input_shape(name) == (1, 3, 32, 32)


def test_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown family 'resnet'.*hiaml"):
        ds.build("resnet", (0,))
    with pytest.raises(ValueError, match="unknown family"):
        load_family("resnet")


def test_broken_module_only_affects_its_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, "no_such_family", "half_family"))
    with pytest.raises(FamilyUnavailableError, match=r"cgpredict\.datasets\.no_such_family could not be imported"):
        ds.sample("no_such_family", 2, 0)
    half = types.ModuleType("cgpredict.datasets.half_family")
    half.NAME = "half_family"
    monkeypatch.setitem(sys.modules, half.__name__, half)
    with pytest.raises(FamilyUnavailableError, match=r"half_family registers no FamilySpec named 'half_family'"):
        load_family("half_family", n=2)
    assert not ds.is_available("no_such_family")
    assert ds.sample("hiaml", 2, 0) == hiaml.sample(2, 0)  # the other families are unaffected


# ---------------------------------------------------------------------------------- load_family
def test_no_data_dir_error_says_where_labels_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    _fake_labelled_module(monkeypatch)
    with pytest.raises(ValueError) as info:
        load_family("fakefam")
    message = str(info.value)
    assert "CGPREDICT_DATA" in message and "data_dir" in message
    assert "<data_dir>/naslib/<family>__<task>.csv" in message
    assert "arch,val_accuracy[,flops,params,...]" in message
    assert "'taskA'" in message  # the default task is the first one


def test_no_data_dir_error_for_a_real_labelled_family(monkeypatch: pytest.MonkeyPatch) -> None:
    if not ds.is_available("nasbench201"):
        pytest.skip("nasbench201 builder module not importable")
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    with pytest.raises(ValueError, match=r"<data_dir>/naslib/<family>__<task>\.csv"):
        load_family("nasbench201")


def test_missing_table_and_bad_task(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_labelled_module(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"fakefam__taskA\.csv"):
        load_family("fakefam", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"no task 'taskC'.*taskA, taskB"):
        load_family("fakefam", task="taskC", data_dir=tmp_path)


def test_load_labelled_table_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_labelled_module(monkeypatch)
    (tmp_path / "naslib").mkdir()
    _write(
        tmp_path / "naslib" / "fakefam__taskB.csv",
        'arch,val_accuracy,flops,params,synflow\n"(0, 1, 2, 3)",91.5,1.5,0.25,\n"(1, 1, 1, 1)",90,2.0,0.5,3.5\n',
    )
    monkeypatch.setenv("CGPREDICT_DATA", str(tmp_path))
    fam = load_family("fakefam", task="taskB")
    assert fam.name == "fakefam" and fam.task == "taskB" and len(fam) == 2
    assert fam.archs == [(0, 1, 2, 3), (1, 1, 1, 1)]
    np.testing.assert_allclose(fam.labels, [91.5, 90.0])
    np.testing.assert_allclose(fam.table_flops, [1.5, 2.0])
    np.testing.assert_allclose(fam.table_params, [0.25, 0.5])
    assert set(fam.extra) == {"synflow"} and math.isnan(fam.extra["synflow"][0]) and fam.extra["synflow"][1] == 3.5
    assert fam.lines == [2, 3] and fam.source == tmp_path / "naslib" / "fakefam__taskB.csv"
    sub = fam.subset([1])
    assert sub.archs == [(1, 1, 1, 1)] and sub.labels.tolist() == [90.0] and sub.extra["synflow"].tolist() == [3.5]
    cgs = fam.cgs(progress=False)
    assert [cg.params for cg in cgs] == [3 * 10 + 10, 3 * 8 + 8]  # conv 3→(4+sum(arch)) 1×1 with bias


def test_unlabelled_family_needs_n_and_samples() -> None:
    with pytest.raises(ValueError, match=r"n=\.\.\."):
        load_family("hiaml")
    fam = load_family("hiaml", n=5, seed=7)
    assert fam.labels is None and len(fam) == 5 and fam.archs == hiaml.sample(5, 7)
    assert fam.input_shape == (1, 3, 32, 32)


def test_real_table_nasbench201(shared_data: Path) -> None:
    if not ds.is_available("nasbench201"):
        pytest.skip("nasbench201 builder module not importable")
    fam = load_family("nasbench201", data_dir=shared_data)
    assert fam.task == "cifar10" and len(fam) == 725
    assert np.isfinite(fam.labels).all() and 10 < fam.labels.mean() < 100
    assert fam.table_flops is not None and fam.table_params is not None
    assert {"synflow", "snip", "nwot"} <= set(fam.extra)
    assert len(set(fam.archs)) == len(fam)
    assert fam.lines[0] == 2


# ---------------------------------------------------------------------------------- CSV validation
def _csv_family(path: Path) -> Family:
    return Family.from_csv(path, builder=hiaml.build, parse=hiaml.parse_arch, input_shape=(1, 3, 32, 32))


GOOD = 'arch,label\n"(0, 1, 2, 3)",91.0\n'


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ('"(0, 1, 2, 99)",90.0', r"cannot parse arch '\(0, 1, 2, 99\)'.*out of range"),
        ('"(0, 1, 2",90.0', r"cannot parse arch .*not a Python literal"),
        ('"(0, 1, 2, 4)",', r"missing label"),
        ('"(0, 1, 2, 4)",nan', r"label 'nan' is not a finite number"),
        ('"(0, 1, 2, 4)",high', r"label 'high' is not a number"),
        ('"(0, 1, 2, 3)",92.0', r"repeats line 2 with a different label"),
        ('"(0, 1, 2, 4)",90.0,7', r"3 fields but the header has 2"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, row: str, reason: str) -> None:
    path = _write(tmp_path / "labels.csv", GOOD + row + "\n")
    with pytest.raises(ValueError, match=reason) as info:
        _csv_family(path)
    assert f"{path}, line 3" in str(info.value)


def test_quoted_multiline_cell_keeps_line_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels.csv", 'arch,label\n"(0, 1,\n 2, 3)",91.0\n"(1, 1, 1, 1)",x\n')
    with pytest.raises(ValueError, match=r"line 4: label 'x'"):
        _csv_family(path)


def test_extra_column_must_be_numeric(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels.csv", 'arch,label,flops\n"(0, 1, 2, 3)",91.0,1.0\n"(1, 1, 1, 1)",90.0,big\n')
    with pytest.raises(ValueError, match=r"line 3: column 'flops' value 'big' is not a number"):
        _csv_family(path)


def test_exact_duplicate_is_kept_once_with_warning(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels.csv", GOOD + '"(1, 2, 3, 4)",80.0\n"(0, 1, 2, 3)",91.0\n')
    with pytest.warns(UserWarning, match=r"line 4: arch '\(0, 1, 2, 3\)' repeats line 2"):
        fam = _csv_family(path)
    assert fam.archs == [(0, 1, 2, 3), (1, 2, 3, 4)] and fam.labels.tolist() == [91.0, 80.0]


def test_from_csv_builds_and_converts(tmp_path: Path) -> None:
    path = _write(tmp_path / "widths.csv", "arch,label,params\n8,70.5,0.1\n16,75.25,0.2\n32,80.0,0.3\n")

    def builder(width: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about in a clean table
        fam = Family.from_csv(path, builder=builder, parse=int, input_shape=(1, 3, 16, 16), name="widths")
    assert fam.archs == [8, 16, 32] and fam.table_params.tolist() == [0.1, 0.2, 0.3]
    cgs = fam.cgs(progress=False)
    expected = [sum(p.numel() for p in builder(w).parameters()) for w in (8, 16, 32)]
    assert [cg.params for cg in cgs] == expected
    assert [cg.flops for cg in cgs] == [w * 27 * 14 * 14 + 10 * w for w in (8, 16, 32)]
    same = load_family("custom", data_dir=path, builder=builder, parse=int, input_shape=(1, 3, 16, 16))
    assert same.archs == fam.archs and same.labels.tolist() == fam.labels.tolist()
    data = fam.to_pyg_dataset(progress=False)
    assert len(data) == 3 and data[1].y.item() == pytest.approx(75.25) and data[2].num_nodes == cgs[2].num_nodes
    assert data[2].idx.item() == 2 and data.num_node_features == cgs[0].to_pyg().x.shape[1]
    stored = fam.to_pyg_dataset(root=tmp_path / "pyg", progress=False)
    assert len(list((tmp_path / "pyg" / "processed").glob("widths__None__3__*.pt"))) == 1
    assert torch.equal(stored[0].x, data[0].x) and stored[0].y.item() == pytest.approx(70.5)


def test_custom_needs_a_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    with pytest.raises(ValueError, match="load_family\\('custom'\\) needs data_dir"):
        load_family("custom")


# ---------------------------------------------------------------------------------- ONNX folder
def _tiny_onnx(path: Path, width: int) -> int:
    """Conv(3→width, 3×3) → Relu → GlobalAveragePool → Flatten → Gemm(width→10); returns #params."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(width)
    inits = [
        numpy_helper.from_array(rng.standard_normal((width, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(width, np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal((10, width)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        f"tiny{width}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return width * 27 + width + 10 * width + 10


def test_onnx_folder_family(tmp_path: Path) -> None:
    params = {f"net{w}.onnx": _tiny_onnx(tmp_path / f"net{w}.onnx", w) for w in (4, 8, 12)}
    _write(tmp_path / "labels.csv", "file,label\nnet4.onnx,60\nnet8.onnx,65.5\nnet12.onnx,70\n")
    fam = Family.from_onnx_folder(tmp_path, tmp_path / "labels.csv")
    assert fam.archs == ["net4.onnx", "net8.onnx", "net12.onnx"] and fam.labels.tolist() == [60, 65.5, 70]
    cgs = fam.cgs(progress=False)
    assert [cg.params for cg in cgs] == [params[f] for f in fam.archs]
    assert [cg.flops for cg in cgs] == [w * 27 * 256 + 10 * w for w in (4, 8, 12)]
    again = load_family("custom", data_dir=tmp_path)  # delegates to from_onnx_folder(labels.csv)
    assert again.archs == fam.archs
    assert again.cache().get(again.key(0)) is not None  # converted once, then read from the cache
    assert [cg.hash() for cg in again.cgs(progress=False)] == [cg.hash() for cg in cgs]


def test_onnx_folder_missing_file_names_line(tmp_path: Path) -> None:
    _tiny_onnx(tmp_path / "a.onnx", 4)
    labels = _write(tmp_path / "labels.csv", "file,label\na.onnx,60\nb.onnx,61\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 3: cannot parse file 'b\.onnx'.*does not exist"):
        Family.from_onnx_folder(tmp_path, labels)


# ---------------------------------------------------------------------------------- CLI
def test_families_command_lists_builders_and_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.commands import families

    (tmp_path / "naslib").mkdir()
    _write(tmp_path / "naslib" / "nasbench201__cifar100.csv", 'arch,val_accuracy\n"(0, 0, 0, 0, 0, 0)",50\n"(1, 0, 0, 0, 0, 0)",40\n')
    parser = argparse.ArgumentParser()
    families.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["families", "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert set(FIXED_NAMES) <= set(lines)
    assert "builder ok" in lines["hiaml"] and "no labels here" in lines["two_path"]
    assert "cifar100: 2 rows" in lines["nasbench201"]
    if ds.is_available("nasbench201"):
        assert "cifar10: missing" in lines["nasbench201"]
    status = families.family_status(tmp_path)
    assert [entry["name"] for entry in status] == FIXED_NAMES


def test_families_command_counts_shared_tables(shared_data: Path) -> None:
    from cgpredict.commands.families import family_status

    status = {entry["name"]: entry for entry in family_status(shared_data)}
    assert status["nasbench201"]["tasks"]["cifar10"] == 725
    assert status["nasbench201"]["tasks"]["ImageNet16-120"] == 724
    assert status["nasbench101"]["tasks"]["cifar10"] == 500


def test_family_errors_are_clear_for_subset_and_shapes() -> None:
    fam = load_family("two_path", n=3, seed=0)
    with pytest.raises(IndexError, match="out of range"):
        fam.subset([5])
    with pytest.raises(ValueError, match="labels has shape"):
        Family(name="x", task=None, archs=[1, 2], labels=np.zeros(3))
    assert len(fam.subset(np.array([True, False, True]))) == 2
    assert isinstance(fam.build(0), torch.nn.Module)


def test_families_command_through_the_cli_entry_point(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from cgpredict import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("families",))
    assert cli.main(["families", "--json", "--data-dir", str(tmp_path)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in status] == FIXED_NAMES
    assert status[FIXED_NAMES.index("hiaml")] == {"name": "hiaml", "builder": "ok", "tasks": {}}


# ---------------------------------------------------------------------------------- FamilySpec
def test_family_specs_are_data_with_shapes_per_task_and_label_tables() -> None:
    nb201 = registry.family_spec("nasbench201")
    assert isinstance(nb201, registry.FamilySpec) and nb201.name == "nasbench201"
    assert nb201.tasks == ("cifar10", "cifar100", "ImageNet16-120")
    assert nb201.shape() == nb201.shape("cifar10") == (1, 3, 32, 32) and nb201.shape("ImageNet16-120") == (1, 3, 16, 16)
    assert nb201.label_file("cifar100") == "naslib/nasbench201__cifar100.csv"
    assert nb201.flops_mode == "nasbench201" and nb201.counting is not None
    assert nb201.format(nb201.parse("(0, 2, 3, 2, 3, 1)")) == "(0, 2, 3, 2, 3, 1)"
    with pytest.raises(ValueError, match="no task 'imagenet'"):
        nb201.shape("imagenet")
    hiaml_spec = registry.family_spec("hiaml")
    assert hiaml_spec.tasks == () and hiaml_spec.flops_mode == "torchvision" and hiaml_spec.counting is None
    with pytest.raises(ValueError, match="no labelled tasks"):
        hiaml_spec.label_file("mine")
    assert registry.family_spec("ofa_mbv3").label_file("mine") == "naslib/ofa_mbv3__mine.csv"  # user labels
    with pytest.raises(ValueError, match="unknown task"):
        registry.FamilySpec(name="x", tasks=("a",), input_shape=(1, 3, 8, 8), flops_mode="torchvision",
                            parse=str, format=str, build=hiaml.build, sample=hiaml.sample,
                            task_input_shapes={"b": (1, 3, 4, 4)})


def test_a_family_registered_from_elsewhere_is_listed_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))

    @ds.register_family
    def plugin_family() -> registry.FamilySpec:
        return registry.FamilySpec(name="plugin_family", tasks=(), input_shape=(1, 3, 16, 16),
                                   flops_mode="torchvision", parse=hiaml.parse_arch, format=hiaml.format_arch,
                                   build=lambda arch, task=None: hiaml.build(arch), sample=hiaml.sample)

    assert ds.list_families() == [*FIXED_NAMES, "plugin_family"]
    assert ds.is_available("plugin_family") and ds.input_shape("plugin_family") == (1, 3, 16, 16)
    fam = load_family("plugin_family", n=2, seed=0)
    assert fam.archs == hiaml.sample(2, 0) and fam.cgs(progress=False)[0].name.startswith("plugin_family/")
    with pytest.raises(TypeError, match="must return a FamilySpec"):
        ds.register_family(lambda: "not a spec")


def test_listing_families_imports_no_family_module() -> None:
    code = ("import sys; from cgpredict.datasets import list_families; names = list_families(); "
            "print(sorted(m for m in sys.modules if m.split('.')[-1] in names))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_families_of_cgs_in_memory_keep_their_objects_through_subsets() -> None:
    fam = load_family("hiaml", n=4, seed=0)
    held = fam.with_cgs(progress=False)
    cgs = held.cgs()
    assert held.with_cgs() is held and [id(c) for c in held.cgs()] == [id(c) for c in cgs]
    part = held.subset([3, 1])
    assert [id(c) for c in part.cgs()] == [id(cgs[3]), id(cgs[1])] and part.archs == [fam.archs[3], fam.archs[1]]
    mine = Family.from_cgs(cgs, [1.0, 2.0, 3.0, 4.0], name="mine", task="t", extra={"proxy": np.arange(4.0)})
    assert mine.label == "mine/t" and mine.archs == [cg.name for cg in cgs] and mine.cgs()[2] is cgs[2]
    assert mine.subset([0, 2]).extra["proxy"].tolist() == [0.0, 2.0]
    with pytest.raises(ValueError, match="3 CGs for 4 architectures"):
        Family(name="x", task=None, archs=[1, 2, 3, 4], graphs=cgs[:3])
