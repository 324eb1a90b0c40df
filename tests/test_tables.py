"""Large labelled tables (``load_family(..., table=...)``), the NB-101 module hash and overlap/dedup.

Toy tests write small tables laid out like the real ones into a temporary data folder; data tests
(skipped without CGPREDICT_DATA) check the real tables: the hash against ``nb101_hash``, built
parameters against ``params``, the 110-net NB-101 overlap and the NB-201 label agreements the data
README states.
"""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cgpredict.datasets import Family, load_family
from cgpredict.datasets import nasbench101 as nb101
from cgpredict.datasets import nasbench201 as nb201
from cgpredict.datasets.nb101_hash import OP_LABEL, hash_cell, nb101_hash
from cgpredict.datasets.overlap import dedup, drop_overlap, identity_keys, overlap
from cgpredict.datasets.tables import TABLES, TableFamily, list_tables, load_table

NB101_HEADER = ["arch", "val_accuracy", "val_accuracy_4ep", "val_accuracy_12ep", "val_accuracy_36ep", "params",
                "train_seconds", "nb101_hash"]
NB201_HEADER = ["arch", "arch_str", "index", "cifar10-test", "cifar100-test", "ImageNet16-120-test"]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _nb101_rows(archs: list[tuple[int, ...]]) -> list[list[object]]:
    return [[str(a), 90.0 + k, 10.0 + k, 40.0 + k, 80.0 + k, 1.5, 100.0 * (k + 1), nb101_hash(a)]
            for k, a in enumerate(archs)]


def _nb201_rows(archs: list[tuple[int, ...]]) -> list[list[object]]:
    return [[str(a), nb201.to_official_string(a), k, 80.0 + k, 50.0 + k, 20.0 + k] for k, a in enumerate(archs)]


def _permuted(arch: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
    """``arch`` with interior vertices renumbered by ``perm`` (input/output fixed); None if not upper-triangular."""
    matrix, ops = nb101.split_arch(arch)
    n = len(ops)
    order = (0, *perm, n - 1)
    new = [[matrix[order[i]][order[j]] for j in range(n)] for i in range(n)]
    if any(new[i][j] for i in range(n) for j in range(i + 1)):
        return None
    return nb101.join_arch(new, [ops[v] for v in order])


# ----------------------------------------------------------------------------------- NB-101 hash (toy)
def test_hash_is_invariant_to_vertex_numbering_and_pruning() -> None:
    archs = nb101.sample(60, seed=11)
    checked = 0
    for arch in archs:
        n = len(nb101.split_arch(arch)[1])
        for perm in itertools.permutations(range(1, n - 1)):
            other = _permuted(arch, perm)
            if other is not None and other != arch:
                assert nb101_hash(other) == nb101_hash(arch)
                checked += 1
    assert checked > 20
    # hash_cell itself does not depend on a topological numbering: any permutation of all vertices
    rng = random.Random(0)
    for arch in archs:
        matrix, ops = nb101.split_arch(arch)
        labels = [OP_LABEL[o] for o in ops]
        n = len(ops)
        for _ in range(5):
            perm = rng.sample(range(n), n)
            shuffled = [[matrix[perm[i]][perm[j]] for j in range(n)] for i in range(n)]
            assert hash_cell(shuffled, [labels[v] for v in perm]) == nb101_hash(arch)
    # an unpruned 7-vertex cell: a dead vertex 5 (no path to the output) and vertex 3 (no input)
    matrix = [[0, 1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
    unpruned = nb101.join_arch(matrix, [0, 4, 3, 2, 2, 4, 1])
    pruned = nb101.join_arch(*nb101.prune(*nb101.split_arch(unpruned)))
    assert len(pruned) < len(unpruned) and nb101_hash(unpruned) == nb101_hash(pruned)


def test_hash_separates_non_isomorphic_cells() -> None:
    archs = nb101.sample(300, seed=3)  # pairwise non-isomorphic by construction
    hashes = [nb101_hash(a) for a in archs]
    assert len(set(hashes)) == len(archs)
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in hashes)
    # same graph, one op changed → another hash
    arch = next(a for a in archs if len(a) > 6)
    matrix, ops = nb101.split_arch(arch)
    ops[1] = nb101.CONV1X1 if ops[1] != nb101.CONV1X1 else nb101.CONV3X3
    assert nb101_hash(nb101.join_arch(matrix, ops)) != nb101_hash(arch)


def test_hash_rejects_malformed_arch() -> None:
    with pytest.raises(ValueError, match="nasbench101"):
        nb101_hash((0, 1, 0, 0, 0, 7))
    with pytest.raises(ValueError, match="nasbench101"):
        nb101_hash("(0, 1, 0)")


# ----------------------------------------------------------------------------------- tables (toy)
@pytest.fixture()
def toy_data(tmp_path: Path) -> Path:
    archs = nb101.sample(6, seed=1)
    _write(tmp_path / TABLES["nb101_30k"].file, NB101_HEADER, _nb101_rows(archs))
    cells = nb201.sample(5, seed=2)
    _write(tmp_path / TABLES["nb201_200ep"].file, NB201_HEADER, _nb201_rows(cells))
    low_header = ["arch", "arch_str", "index", "cifar10-test", "cifar10-val", "cifar100-test", "cifar100-val",
                  "ImageNet16-120-test", "ImageNet16-120-val"]
    low = [[str(a), nb201.to_official_string(a), k, 60.0 + k, 61.0 + k, 30.0 + k, 31.0 + k, 10.0 + k, 11.0 + k]
           for k, a in enumerate(cells)]
    _write(tmp_path / TABLES["nb201_12epoch"].file, low_header, low)
    return tmp_path


def test_load_table_roles(toy_data: Path) -> None:
    fam = load_family("nasbench101", table="nb101_30k", data_dir=toy_data)
    assert isinstance(fam, TableFamily) and fam.table == "nb101_30k" and fam.truth
    assert fam.task == "cifar10" and len(fam) == 6 and fam.lines == [2, 3, 4, 5, 6, 7]
    assert fam.labels.tolist() == [90.0 + k for k in range(6)]
    assert sorted(fam.fidelities) == ["val_accuracy_12ep", "val_accuracy_36ep", "val_accuracy_4ep"]
    assert fam.fidelities["val_accuracy_4ep"].tolist() == [10.0 + k for k in range(6)]
    assert fam.extra == {}  # nothing a zero-cost baseline would pick up
    assert fam.info["train_seconds"][2] == 300.0 and fam.table_params.tolist() == [1.5] * 6
    assert fam.text["nb101_hash"] == [nb101_hash(a) for a in fam.archs]
    assert fam.cache_name == "nasbench101_30k" and fam.low_fidelity_label is None

    c100 = load_family("nasbench201", task="cifar100", table="nb201_200ep", data_dir=toy_data)
    assert c100.labels.tolist() == [50.0 + k for k in range(5)]
    assert c100.table_params is None and c100.extra == {} and c100.fidelities == {}
    assert c100.input_shape == (1, 3, 32, 32) and c100.text["arch_str"][0].startswith("|")
    img = load_family("nasbench201", task="ImageNet16-120", table="nb201_200ep", data_dir=toy_data)
    assert img.input_shape == (1, 3, 16, 16) and img.labels[0] == 20.0


def test_low_fidelity_table_has_no_labels(toy_data: Path) -> None:
    fam = load_family("nasbench201", task="cifar100", table="nb201_12epoch", data_dir=toy_data)
    assert fam.labels is None and not fam.truth
    assert fam.low_fidelity_label == "cifar100-test@12ep"
    assert sorted(fam.fidelities) == ["cifar100-test@12ep", "cifar100-val@12ep"]
    assert fam.low_fidelity_labels().tolist() == [30.0 + k for k in range(5)]
    assert fam.fidelities["cifar100-val@12ep"].tolist() == [31.0 + k for k in range(5)]
    truth = load_family("nasbench201", task="cifar100", table="nb201_200ep", data_dir=toy_data)
    with pytest.raises(ValueError, match="not a low-fidelity table"):
        truth.low_fidelity_labels()


def test_subset_slices_every_column(toy_data: Path) -> None:
    fam = load_family("nasbench201", task="cifar10", table="nb201_12epoch", data_dir=toy_data)
    sub = fam.subset([4, 1])
    assert isinstance(sub, TableFamily) and sub.archs == [fam.archs[4], fam.archs[1]]
    assert sub.fidelities["cifar10-val@12ep"].tolist() == [65.0, 62.0]
    assert sub.info["index"].tolist() == [4.0, 1.0] and sub.text["arch_str"] == [fam.text["arch_str"][i] for i in (4, 1)]
    assert sub.low_fidelity_label == "cifar10-test@12ep" and sub.lines == [6, 3]
    masked = fam.subset(np.array([True, False, True, False, False]))
    assert masked.info["index"].tolist() == [0.0, 2.0]
    with pytest.raises(IndexError):
        fam.subset([7])
    with pytest.raises(ValueError, match="boolean mask"):
        fam.subset(np.array([True, False]))


def test_table_family_converts_and_keeps_fidelities_out_of_baselines(toy_data: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from cgpredict.evaluation import baseline_scores

    fam = load_family("nasbench201", task="cifar10", table="nb201_200ep", data_dir=toy_data).subset([0, 1, 2])
    cgs = fam.cgs(progress=False, cache_root=tmp_path / "cache")
    expected = [sum(p.numel() for p in nb201.build(a, "cifar10").parameters()) for a in fam.archs]
    assert [cg.params for cg in cgs] == expected
    assert cgs[0].name == f"nasbench201/{fam.key(0)}" and cgs[0].meta["task"] == "cifar10"
    assert fam.cache(tmp_path / "cache").path.name.startswith("nasbench201_all__cifar10")
    scores = baseline_scores(replace(fam, graphs=cgs))
    assert set(scores) == {"FLOPs", "params"}


@pytest.mark.parametrize(
    ("task", "mutate", "message"),
    [
        ("cifar10", lambda h, r: (h + ["synflow"], [row + [1.0] for row in r]),
         r"line 1: column\(s\) \['synflow'\] have no role"),
        ("cifar10", lambda h, r: (h, r[:2] + [r[0]]), r"line 4: arch .* repeats line 2"),
        ("cifar10", lambda h, r: (h, [r[0], [r[1][0], "|bad|", *r[1][2:]]]), r"line 3: arch_str '\|bad\|' does not match"),
        ("cifar10", lambda h, r: (h, [r[0], r[1][:3] + ["nan", *r[1][4:]]]), r"line 3: label 'cifar10-test' is 'nan'"),
        ("cifar10", lambda h, r: (h, [r[0], r[1][:3] + ["abc", *r[1][4:]]]), r"line 3: column 'cifar10-test' value 'abc'"),
        ("cifar10", lambda h, r: (h, [["(0, 1, 2)", *r[0][1:]]]), r"line 2: cannot parse arch '\(0, 1, 2\)'"),
        ("cifar10", lambda h, r: (h, [r[0][:-1]]), r"line 2: 5 fields but the header has 6"),
        ("ImageNet16-120", lambda h, r: (h[:-1], [row[:-1] for row in r]),
         r"line 1: header .* lacks \['ImageNet16-120-test'\]"),
    ],
)
def test_malformed_table_names_file_and_line(tmp_path: Path, task: str, mutate, message: str) -> None:
    header, rows = mutate(NB201_HEADER, _nb201_rows(nb201.sample(3, seed=0)))
    path = _write(tmp_path / TABLES["nb201_200ep"].file, header, rows)
    with pytest.raises(ValueError, match=message) as info:
        load_family("nasbench201", task=task, table="nb201_200ep", data_dir=tmp_path)
    assert str(path) in str(info.value)
    # the untouched table loads
    _write(tmp_path / TABLES["nb201_200ep"].file, NB201_HEADER, _nb201_rows(nb201.sample(3, seed=0)))
    assert len(load_family("nasbench201", task=task, table="nb201_200ep", data_dir=tmp_path)) == 3


def test_bad_table_requests(toy_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown table 'nb999'.*nb101_30k \(nasbench101\)"):
        load_family("nasbench101", table="nb999", data_dir=toy_data)
    with pytest.raises(ValueError, match=r"table 'nb101_30k' holds family 'nasbench101', not 'nasbench201'"):
        load_family("nasbench201", table="nb101_30k", data_dir=toy_data)
    with pytest.raises(ValueError, match="no task 'cifar100'"):
        load_family("nasbench101", task="cifar100", table="nb101_30k", data_dir=toy_data)
    with pytest.raises(ValueError, match="takes no n="):
        load_family("nasbench101", table="nb101_30k", n=3, data_dir=toy_data)
    with pytest.raises(FileNotFoundError, match="nb201_200ep"):
        load_family("nasbench201", table="nb201_200ep", data_dir=tmp_path / "empty")
    assert list_tables("nasbench201") == ["nb201_200ep", "nb201_12epoch"] and list_tables("hiaml") == []


# ----------------------------------------------------------------------------------- overlap (toy)
def _relabelled(arch: tuple[int, ...]) -> tuple[int, ...] | None:
    """An isomorphic copy of ``arch`` with another vertex numbering, if one exists."""
    n = len(nb101.split_arch(arch)[1])
    for perm in itertools.permutations(range(1, n - 1)):
        other = _permuted(arch, perm)
        if other is not None and other != arch:
            return other
    return None


def test_overlap_drop_and_dedup_by_nb101_hash(tmp_path: Path) -> None:
    archs = nb101.sample(8, seed=4)
    _write(tmp_path / TABLES["nb101_30k"].file, NB101_HEADER, _nb101_rows(archs))
    big = load_family("nasbench101", table="nb101_30k", data_dir=tmp_path)
    i = next(k for k, a in enumerate(archs) if _relabelled(a) is not None)
    j = next(k for k in range(len(archs)) if k != i)
    copy = _relabelled(archs[i])
    new = next(a for a in nb101.sample(50, seed=9) if nb101_hash(a) not in set(big.text["nb101_hash"]))
    # a NASLib-style family: a renumbered copy of big's cell i, a new cell, big's cell j, the copy again
    small = Family("nasbench101", "cifar10", [copy, new, archs[j], copy],
                   labels=np.array([1.0, 2.0, 3.0, 5.0]), arch_key=nb101.format_arch)
    rows_small, rows_big = overlap(small, big)
    assert rows_small.tolist() == [0, 2, 3] and rows_big.tolist() == [i, j, i]
    rest = drop_overlap(big, small)
    assert len(rest) == 6 and archs[i] not in rest.archs and archs[j] not in rest.archs
    assert identity_keys(rest) == [k for m, k in enumerate(identity_keys(big)) if m not in (i, j)]
    one = dedup(small)
    assert len(one) == 3 and one.labels.tolist() == [1.0, 2.0, 3.0]
    assert dedup(small, labels="mean").labels.tolist() == [3.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="family 'nasbench101' against family 'nasbench201'"):
        overlap(small, Family("nasbench201", "cifar10", [(0,) * 6]))
    with pytest.raises(ValueError, match="'first' or 'mean'"):
        dedup(small, labels="max")  # type: ignore[arg-type]


def test_identity_keys_of_other_families_are_canonical_arch_text() -> None:
    cells = nb201.sample(4, seed=0)
    fam = Family("nasbench201", "cifar10", cells, arch_key=nb201.format_arch)
    assert identity_keys(fam) == [nb201.format_arch(c) for c in cells]


# ----------------------------------------------------------------------------------- real tables
@pytest.fixture(scope="module")
def nb101_30k(shared_data: Path) -> TableFamily:
    return load_family("nasbench101", table="nb101_30k", data_dir=shared_data)


@pytest.fixture(scope="module")
def nb101_naslib(shared_data: Path) -> Family:
    return load_family("nasbench101", data_dir=shared_data)


def test_nb101_30k_table(nb101_30k: TableFamily) -> None:
    fam = nb101_30k
    assert len(fam) == 30001 and fam.extra == {} and np.isfinite(fam.labels).all()
    assert sorted(fam.fidelities) == ["val_accuracy_12ep", "val_accuracy_36ep", "val_accuracy_4ep"]
    assert len(set(fam.text["nb101_hash"])) == 30001
    # every cell is stored pruned (the builder's pruning leaves it unchanged)
    for i in random.Random(0).sample(range(len(fam)), 500):
        assert nb101.join_arch(*nb101.prune(*nb101.split_arch(fam.archs[i]))) == fam.archs[i]
    # fidelities rise with the budget on average, the 108-epoch label on top
    means = [float(np.mean(fam.fidelities[f"val_accuracy_{e}ep"])) for e in (4, 12, 36)]
    assert means[0] < means[1] < means[2] < float(fam.labels.mean())


def test_nb101_hash_matches_table_column(nb101_30k: TableFamily) -> None:
    rows = random.Random(1).sample(range(len(nb101_30k)), 400)
    rows += [i for i, a in enumerate(nb101_30k.archs) if len(a) <= 30]  # the smallest cells too
    for i in rows:
        assert nb101_hash(nb101_30k.archs[i]) == nb101_30k.text["nb101_hash"][i], nb101_30k.lines[i]


def test_nb101_30k_params_exact_on_seeded_sample(nb101_30k: TableFamily) -> None:
    rows = random.Random(2).sample(range(len(nb101_30k)), 24)
    rows += [i for i, a in enumerate(nb101_30k.archs) if len(a) <= 20]
    for i in rows:
        with torch.device("meta"):
            model = nb101.build(nb101_30k.archs[i])
        built = sum(p.numel() for p in model.parameters())
        assert built == round(nb101_30k.table_params[i] * 1e6), (nb101_30k.lines[i], built)


def test_nb101_overlap_with_naslib_is_110_of_500(nb101_naslib: Family, nb101_30k: TableFamily) -> None:
    rows_naslib, rows_big = overlap(nb101_naslib, nb101_30k)
    assert len(nb101_naslib) == 500 and len(rows_naslib) == 110  # the data README's figure
    assert len(set(identity_keys(nb101_naslib))) == 292  # 500 rows, 292 distinct cells
    assert len(dedup(nb101_naslib)) == 292
    # the paired labels are two training runs of the same cells: correlated, not equal (README: 0.72)
    rho = spearmanr(nb101_naslib.labels[rows_naslib], nb101_30k.labels[rows_big])[0]
    assert 0.6 < rho < 0.85, rho
    assert np.mean(np.abs(nb101_naslib.labels[rows_naslib] - nb101_30k.labels[rows_big])) < 1.0
    rest = drop_overlap(nb101_30k, nb101_naslib)
    assert len(rest) == 30001 - len(set(identity_keys(nb101_naslib)) & set(identity_keys(nb101_30k)))
    assert not set(identity_keys(rest)) & set(identity_keys(nb101_naslib))


def test_default_table_unchanged(nb101_naslib: Family) -> None:
    assert type(nb101_naslib) is Family and nb101_naslib.source.name == "nasbench101__cifar10.csv"
    assert "synflow" in nb101_naslib.extra and nb101_naslib.table_flops is not None


@pytest.mark.parametrize(("task", "rho_200", "rho_12"), [("cifar10", 0.97, 0.85), ("cifar100", 0.95, 0.75),
                                                         ("ImageNet16-120", 0.9, 0.75)])
def test_nb201_tables_against_naslib(shared_data: Path, task: str, rho_200: float, rho_12: float) -> None:
    naslib = load_family("nasbench201", task=task, data_dir=shared_data)
    full = load_family("nasbench201", task=task, table="nb201_200ep", data_dir=shared_data)
    low = load_family("nasbench201", task=task, table="nb201_12epoch", data_dir=shared_data)
    assert len(full) == len(low) == 15625 and full.archs == low.archs
    assert len(set(full.archs)) == 15625 and full.info["index"].tolist() == list(range(15625))
    assert low.labels is None and full.labels is not None and full.extra == low.extra == {}
    rows_naslib, rows_full = overlap(naslib, full)
    assert len(rows_naslib) == len(naslib)  # every NASLib NB-201 net is in the full table
    rho = spearmanr(naslib.labels[rows_naslib], full.labels[rows_full])[0]
    assert rho > rho_200, rho  # validation (NASLib) vs test accuracy (README: 0.978 on CIFAR-10)
    rho_low = spearmanr(naslib.labels[rows_naslib], low.low_fidelity_labels()[rows_full])[0]
    assert rho_12 < rho_low < rho, rho_low  # README: 0.90 / 0.82 / 0.80


@pytest.mark.slow
def test_nb101_hash_matches_every_row(nb101_30k: TableFamily) -> None:
    bad = [nb101_30k.lines[i] for i, a in enumerate(nb101_30k.archs) if nb101_hash(a) != nb101_30k.text["nb101_hash"][i]]
    assert not bad, f"{len(bad)} rows differ, first lines {bad[:5]}"
