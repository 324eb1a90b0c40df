"""NATS-Bench size space: encoding, sampler, exact builder (params) and the per-task label table."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

import cgpredict.datasets as ds
from cgpredict.converters import from_torch
from cgpredict.datasets import Family, load_family
from cgpredict.datasets import nats_sss as nats

#: The two rows checked by hand in the data README (parameters of the CIFAR-10 network).
HAND_CHECKED = {"8:8:8:8:8": 11714, "8:8:8:8:16": 18386}


@pytest.fixture(scope="module")
def table_rows(shared_data: Path) -> list[dict[str, str]]:
    """All rows of the shared table (header: arch,index,<task>-test...,params)."""
    with (shared_data / nats.DATA_FILE).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _params(arch: tuple[int, ...], task: str = "cifar10") -> int:
    with torch.device("meta"):
        model = nats.build(arch, task)
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------- encoding
def test_parse_format_index_round_trip() -> None:
    for index in random.Random(5).sample(range(nats.SPACE_SIZE), 300):
        arch = nats.from_index(index)
        assert nats.to_index(arch) == index
        assert nats.parse_arch(nats.format_arch(arch)) == arch
    assert nats.parse_arch(" 8:16:64:32:8 ") == (8, 16, 64, 32, 8)
    assert nats.format_arch((64, 8, 8, 8, 56)) == "64:8:8:8:56"
    assert nats.from_index(0) == (8,) * 5 and nats.from_index(nats.SPACE_SIZE - 1) == (64,) * 5
    assert nats.to_index((8, 8, 8, 8, 16)) == 1 and nats.to_index((16, 8, 8, 8, 8)) == 8**4


@pytest.mark.parametrize("text", ["8:8:8:8", "8:8:8:8:8:8", "8:8:8:8:12", "8:8:8:8:72", "8:8:8:8:x", "(8, 8, 8, 8, 8)", ""])
def test_malformed_arch_raises(text: str) -> None:
    with pytest.raises(ValueError, match="nats_sss"):
        nats.parse_arch(text)


def test_bad_arch_tuple_index_and_task_raise() -> None:
    with pytest.raises(ValueError, match=r"width 12 of layer 2"):
        nats.build((8, 12, 8, 8, 8))
    with pytest.raises(ValueError, match="nats_sss"):
        nats.build((8, 8, 8, 8))
    with pytest.raises(ValueError, match="outside 0..32767"):
        nats.from_index(nats.SPACE_SIZE)
    with pytest.raises(ValueError, match="ImageNet16-120"):
        nats.build((8,) * 5, task="imagenet")


def test_sample_deterministic_distinct_uniform() -> None:
    first = nats.sample(500, seed=3)
    assert first == nats.sample(500, seed=3)
    assert first != nats.sample(500, seed=4)
    assert len(set(first)) == 500
    assert all(nats.check_arch(arch) == arch for arch in first)
    # every width appears in every layer about equally often (500 / 8 = 62.5 per width)
    for layer in range(nats.NUM_LAYERS):
        counts = [sum(arch[layer] == w for arch in first) for w in nats.WIDTHS]
        assert min(counts) > 35 and max(counts) < 95, (layer, counts)
    assert len(set(nats.sample(nats.SPACE_SIZE, seed=0))) == nats.SPACE_SIZE
    with pytest.raises(ValueError, match="32768"):
        nats.sample(nats.SPACE_SIZE + 1, seed=0)


# ---------------------------------------------------------------------------------- builder
def test_hand_checked_rows_params_exact() -> None:
    for text, params in HAND_CHECKED.items():
        assert _params(nats.parse_arch(text)) == params, text


@pytest.mark.parametrize("task", nats.TASKS)
def test_forward_output_shape(task: str) -> None:
    torch.manual_seed(0)
    model = nats.build((64, 8, 24, 56, 16), task).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *nats.input_shape(task)[1:]))
    assert out.shape == (2, nats.NUM_CLASSES[task])
    assert torch.isfinite(out).all()


def test_classifier_is_the_only_task_difference() -> None:
    arch = (40, 16, 8, 64, 24)
    for task in nats.TASKS:
        assert _params(arch, task) - _params(arch) == (arch[-1] + 1) * (nats.NUM_CLASSES[task] - 10)


def test_width_change_inside_a_cell() -> None:
    same = from_torch(nats.build((16, 16, 16, 16, 16)), input_shape=nats.INPUT_SHAPE).op_histogram()
    change = from_torch(nats.build((8, 16, 24, 16, 32)), input_shape=nats.INPUT_SHAPE).op_histogram()
    # one skip per cell; it stays an identity where the cell keeps its width (first cell: the stem
    # already has C1 channels) and becomes a 1×1 conv where it does not (the last two cells here)
    assert same.get("identity", 0) == 3
    assert change.get("identity", 0) == 1
    assert change["conv"] == same["conv"] + 2


# ---------------------------------------------------------------------------------- registry + CG
def test_registered_sample_build_and_shapes() -> None:
    assert "nats_sss" in ds.list_families() and ds.is_available("nats_sss")
    assert ds.sample("nats_sss", 3, seed=1) == nats.sample(3, seed=1)
    assert ds.input_shape("nats_sss", "ImageNet16-120") == (1, 3, 16, 16)
    assert ds.input_shape("nats_sss") == (1, 3, 32, 32)
    net = ds.build("nats_sss", (8, 8, 8, 8, 16), task="cifar100")
    assert net.classifier.out_features == 100


def test_cg_conversion_and_cached_family_cgs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    cg = from_torch(nats.build((8, 8, 8, 8, 16), "cifar10"), input_shape=nats.input_shape("cifar10"))
    assert cg.params == HAND_CHECKED["8:8:8:8:16"]
    fam = load_family("nats_sss", task="ImageNet16-120", n=4, seed=7)
    first = fam.cgs(progress=False)
    assert fam.cache().path.is_file() and len(fam.cache()) == 4
    assert [c.params for c in first] == [_params(a, "ImageNet16-120") for a in fam.archs]
    assert first[0].name == f"nats_sss/{nats.format_arch(fam.archs[0])}"

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted although cached")

    monkeypatch.setattr(Family, "convert", no_conversion)
    again = load_family("nats_sss", task="ImageNet16-120", n=4, seed=7).cgs(progress=False)
    assert [c.hash() for c in again] == [c.hash() for c in first]


def test_read_labels_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "sss.csv"
    header = "arch,index,cifar10-test,cifar100-test,ImageNet16-120-test,params\n"
    path.write_text(header + "8:8:8:8:8,0,79.8,32.3,15.5,0.011714\n8:8:8:8:9,1,80,40,20,0.02\n")
    with pytest.raises(ValueError, match=r"sss\.csv, line 3: cannot parse arch '8:8:8:8:9'"):
        nats.read_labels(path, "cifar10")
    path.write_text("arch,index,cifar10-test,params\n8:8:8:8:8,0,79.8,0.011714\n")
    with pytest.raises(ValueError, match=r"sss\.csv, line 1: no label column 'cifar100-test'"):
        nats.read_labels(path, "cifar100")


# ---------------------------------------------------------------------------------- real table
def test_load_family_reads_the_task_column(shared_data: Path, table_rows: list[dict[str, str]]) -> None:
    assert len(table_rows) == nats.SPACE_SIZE
    picks = random.Random(23).sample(range(len(table_rows)), 20)
    for task in nats.TASKS:
        fam = load_family("nats_sss", task=task, data_dir=shared_data)
        assert len(fam) == nats.SPACE_SIZE and fam.source == shared_data / nats.DATA_FILE
        assert fam.extra == {}  # no other task's accuracy and no index among the table's scores
        assert (fam.table_params is not None) == (task == nats.PARAMS_TASK)
        for i in picks:
            row = table_rows[i]
            assert fam.key(i) == row["arch"] and nats.to_index(fam.archs[i]) == int(row["index"])
            assert fam.labels[i] == float(row[nats.LABEL_COLUMNS[task]])


def test_families_command_counts_the_table(shared_data: Path) -> None:
    from cgpredict.commands.families import family_status

    status = {entry["name"]: entry for entry in family_status(shared_data)}
    assert status["nats_sss"]["builder"] == "ok"
    assert status["nats_sss"]["tasks"] == {task: nats.SPACE_SIZE for task in nats.TASKS}


def test_table_sample_params_exact(table_rows: list[dict[str, str]]) -> None:
    rows = [r for r in table_rows if r["arch"] in HAND_CHECKED]
    rows += random.Random(32768).sample(table_rows, 50)
    assert len(rows) == 52
    for row in rows:
        assert _params(nats.parse_arch(row["arch"])) == round(float(row["params"]) * 1e6), row["arch"]
    for text, params in HAND_CHECKED.items():
        assert round(float(next(r for r in rows if r["arch"] == text)["params"]) * 1e6) == params


def test_table_sample_cg_params_exact(table_rows: list[dict[str, str]]) -> None:
    for row in random.Random(5).sample(table_rows, 4):
        with torch.device("meta"):
            model = nats.build(nats.parse_arch(row["arch"]))
        assert from_torch(model, input_shape=nats.INPUT_SHAPE).params == round(float(row["params"]) * 1e6)


@pytest.mark.slow
def test_all_table_rows_params_exact(table_rows: list[dict[str, str]]) -> None:
    wrong = [r["arch"] for r in table_rows if _params(nats.parse_arch(r["arch"])) != round(float(r["params"]) * 1e6)]
    assert wrong == []
