"""Labelled groups: specs, within-group targets, the balanced sampler, LOFO splits and load_groups."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cgpredict.datasets import nasbench201 as nb201
from cgpredict.datasets.groups import (
    NB201_CELL_FAMILIES,
    BalancedGroupSampler,
    GroupSpec,
    LabelledGroups,
    flops_targets_within,
    load_groups,
    lofo_splits,
    protocol_splits,
    zscore_within,
)
from cgpredict.datasets.tables import TABLES
from cgpredict.models.transform import FlopsTransform


# ------------------------------------------------------------------------------------------ specs
def test_group_spec_parse() -> None:
    assert GroupSpec.parse("nasbench201/cifar100@nb201_200ep") == GroupSpec("nasbench201", "cifar100", "nb201_200ep")
    assert GroupSpec.parse("nasbench301").name == "nasbench301/cifar10"
    assert GroupSpec.parse("nasbench101@nb101_30k").name == "nasbench101/cifar10@nb101_30k"
    assert GroupSpec.parse(GroupSpec("nats_sss")).task == "cifar10"
    for bad in ("", "nasbench201/", "nasbench201@", "/cifar10", "a/b/c@x@y"):
        with pytest.raises(ValueError, match="expected family"):
            GroupSpec.parse(bad)
    with pytest.raises(ValueError, match="unknown family 'nb999'"):
        GroupSpec.parse("nb999/cifar10")
    with pytest.raises(ValueError, match=r"group 'nasbench201/svhn'.*no task 'svhn'"):
        GroupSpec.parse("nasbench201/svhn")


# ------------------------------------------------------------------------------------------ targets
def test_zscore_within_each_group() -> None:
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1, 2, 3], [50, 7, 4, 1])
    labels = np.concatenate([rng.normal(93, 1, 50), rng.normal(0.5, 0.01, 7), np.full(4, 70.0), [12.0]])
    z = zscore_within(labels, group)
    for g in (0, 1):
        assert abs(z[group == g].mean()) < 1e-12 and abs(z[group == g].std() - 1) < 1e-12
    assert (z[group >= 2] == 0).all()  # constant groups and singletons carry no ranking signal
    # a group's targets do not depend on its scale or offset, nor on the other groups
    moved = labels.copy()
    moved[group == 1] = moved[group == 1] * 300 - 5
    moved[group == 0] += 1000
    np.testing.assert_allclose(zscore_within(moved, group), z, atol=1e-9)
    # the within-group order is kept
    assert (np.argsort(z[group == 0]) == np.argsort(labels[group == 0])).all()
    with pytest.raises(ValueError, match="group 1 has non-finite"):
        zscore_within(np.where(group == 1, np.nan, labels), group)
    with pytest.raises(ValueError, match="62 group ids for 3 values"):
        zscore_within([1.0, 2.0, 3.0], group)
    with pytest.raises(ValueError, match="integer"):
        zscore_within([1.0, 2.0], [0.5, 1.0])


def test_flops_targets_within_match_a_transform_per_group() -> None:
    rng = np.random.default_rng(1)
    group = np.repeat([0, 1], [40, 25])
    gflops = np.concatenate([rng.uniform(0.1, 2.0, 40), rng.uniform(0.001, 0.05, 25)])
    labels = np.concatenate([90 + 2 * np.log(gflops[:40]), 60 + rng.normal(0, 3, 25)])
    y, transforms = flops_targets_within(labels, group, gflops)
    for g in (0, 1):
        m = group == g
        alone = FlopsTransform(use_flops=True).fit(labels[m], gflops[m])
        np.testing.assert_allclose(y[m], alone.transform(labels[m], gflops[m]))
        np.testing.assert_allclose(transforms[g].inverse(y[m], gflops[m]), labels[m])
        assert abs(y[m].mean()) < 1e-9 and abs(y[m].std() - 1) < 1e-9
    with pytest.raises(ValueError, match="65 labels but 3 GFLOPs"):
        flops_targets_within(labels, group, [1.0, 2.0, 3.0])


# ------------------------------------------------------------------------------------------ sampler
def test_balanced_sampler_draws_groups_uniformly() -> None:
    sizes = [3000, 60, 20, 300]
    group = np.repeat(np.arange(4), sizes)
    sampler = BalancedGroupSampler(group, batch_size=32, groups_per_batch=2, num_batches=400, seed=0)
    assert len(sampler) == 400
    per_group = np.zeros(4)
    seen_small: list[int] = []
    for batch in sampler:
        g = group[batch]
        assert len(np.unique(g)) == 2 and len(np.unique(batch)) == len(batch)  # no repeats in a batch
        counts = np.bincount(g, minlength=4)
        assert set(counts[counts > 0]) <= {16, 20}  # equal shares (a 20-net group gives its 16)
        per_group += counts > 0
        seen_small.extend(batch[g == 2].tolist())
    # every group is chosen in about half the batches, whatever its size (binomial sd ~ 10)
    assert np.all(np.abs(per_group - 200) < 45), per_group
    # the small group cycles: every net is seen before any is seen again
    first = seen_small[:20]
    assert sorted(first) == list(range(3060, 3080))
    # uniform over groups, not over networks: the 3000-net group is ~25 % of the draws, not 88 %
    drawn = np.concatenate(list(sampler))
    assert np.mean(group[drawn] == 0) < 0.35


def test_balanced_sampler_is_deterministic_and_checks_arguments() -> None:
    group = np.repeat([0, 1, 2], [100, 10, 5])
    a = [b.tolist() for b in BalancedGroupSampler(group, 12, seed=3)]
    b = [b.tolist() for b in BalancedGroupSampler(group, 12, seed=3)]
    c = BalancedGroupSampler(group, 12, seed=3)
    c.set_epoch(1)
    assert a == b and a != [x.tolist() for x in c] and a != [x.tolist() for x in BalancedGroupSampler(group, 12, seed=4)]
    assert len(a) == 10  # ceil(115 / 12)
    default = BalancedGroupSampler(group, batch_size=64)
    assert default.groups_per_batch == 3  # min(#groups, 64 // 16)
    assert all(len(np.unique(group[x])) == 3 for x in default)
    with pytest.raises(ValueError, match="groups_per_batch must be in 1..3"):
        BalancedGroupSampler(group, 12, groups_per_batch=4)
    with pytest.raises(ValueError, match="batch_size"):
        BalancedGroupSampler(group, 0)
    with pytest.raises(ValueError, match="at least one network"):
        BalancedGroupSampler([], 4)


# ------------------------------------------------------------------------------------------ splits
FAMILIES = ["nasbench101", "nasbench101", "nasbench201", "nasbench201", "nasbench201", "nats_sss",
            "transbench101_micro", "transbench101_micro", "nasbench301", "hiaml"]
TRUTH = [True, True, True, True, False, True, True, True, True, False]  # group 4: NB-201 12 epochs; 9: only low fidelity


def test_lofo_splits_plain_and_strict() -> None:
    plain = {s.held_out: s for s in lofo_splits(FAMILIES, TRUTH)}
    assert list(plain) == ["nasbench101", "nasbench201", "nats_sss", "transbench101_micro", "nasbench301"]
    nb201 = plain["nasbench201"]
    assert nb201.variant == "lofo" and nb201.test_groups == (2, 3)  # the 12-epoch group is never tested
    assert nb201.train_groups == (0, 1, 5, 6, 7, 8, 9)  # nor trained on when NB-201 is held out
    assert plain["nasbench101"].train_groups == (2, 3, 4, 5, 6, 7, 8, 9)
    strict = {s.held_out: s for s in lofo_splits(FAMILIES, TRUTH, strict=True)}
    for fam in NB201_CELL_FAMILIES:
        assert strict[fam].variant == "strict"
        assert strict[fam].train_groups == (0, 1, 8, 9)  # no NB-201-cell family left in training
    assert strict["nats_sss"].test_groups == (5,) and strict["transbench101_micro"].test_groups == (6, 7)
    assert strict["nasbench301"] == plain["nasbench301"]
    for split in plain.values():
        assert not set(split.train_groups) & set(split.test_groups)
        assert all(FAMILIES[g] != split.held_out for g in split.train_groups)
    both = protocol_splits(FAMILIES, TRUTH)
    assert [(s.held_out, s.variant) for s in both][-3:] == [(f, "strict") for f in NB201_CELL_FAMILIES]
    assert len(both) == 8
    with pytest.raises(ValueError, match="10 group families but 2 truth flags"):
        lofo_splits(FAMILIES, [True, False])


def test_split_indices() -> None:
    group = np.array([0, 2, 1, 2, 8, 4, 0])
    split = {s.held_out: s for s in lofo_splits(FAMILIES, TRUTH)}["nasbench201"]
    train, test = split.indices(group)
    assert train.tolist() == [0, 2, 4, 6] and test.tolist() == [1, 3]


# ------------------------------------------------------------------------------------------ containers
def _toy_groups() -> LabelledGroups:
    return LabelledGroups(names=["a/x", "b/y"], families=["a", "b"], truth=[True, True],
                          group=np.array([0, 0, 1, 1, 1]), labels=np.array([1.0, 3.0, 10.0, 20.0, 30.0]),
                          keys=["p", "q", "r", "s", "t"])


def test_labelled_groups_take_select_targets() -> None:
    data = _toy_groups()
    assert len(data) == 5 and data.sizes().tolist() == [2, 3]
    np.testing.assert_allclose(data.targets(), [-1, 1, -1.224744871, 0, 1.224744871])
    assert data.without(["q", "s", "zz"]).keys == ["p", "r", "t"]
    sub = data.select(["b/y"])
    assert sub.keys == ["r", "s", "t"] and sub.sizes().tolist() == [0, 3] and sub.names == data.names
    assert data.take([4, 0]).labels.tolist() == [30.0, 1.0]
    with pytest.raises(ValueError, match="without CGs"):
        data.targets(flops_transform=True)
    with pytest.raises(ValueError, match="group id 2 but only 2 groups"):
        LabelledGroups(["a"] * 2, ["a"] * 2, [True] * 2, np.array([0, 2]), np.array([1.0, 2.0]), ["p", "q"])
    with pytest.raises(ValueError, match="2 labels, 1 keys"):
        LabelledGroups(["a"], ["a"], [True], np.array([0, 0]), np.array([1.0, 2.0]), ["p"])


# ------------------------------------------------------------------------------------------ load_groups (toy data)
@pytest.fixture()
def toy_data(tmp_path: Path) -> Path:
    cells = nb201.sample(12, seed=5)
    naslib = tmp_path / "naslib"
    naslib.mkdir()
    for task, base in (("cifar10", 80.0), ("cifar100", 50.0)):
        with (naslib / f"nasbench201__{task}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["arch", "val_accuracy", "synflow"])
            w.writerows([[str(c), base + k, 1.0] for k, c in enumerate(cells[:8])])
    low = tmp_path / TABLES["nb201_12epoch"].file
    low.parent.mkdir(parents=True)
    with low.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "arch_str", "index", "cifar10-test", "cifar10-val", "cifar100-test", "cifar100-val",
                    "ImageNet16-120-test", "ImageNet16-120-val"])
        w.writerows([[str(c), nb201.to_official_string(c), k, 60.0 + k, 61.0, 30.0, 31.0, 10.0, 11.0]
                     for k, c in enumerate(cells)])
    return tmp_path


def test_load_groups_labels_only(toy_data: Path) -> None:
    data = load_groups(["nasbench201/cifar10", "nasbench201/cifar100", "nasbench201/cifar10@nb201_12epoch"],
                       data_dir=toy_data, cgs=False)
    assert data.names == ["nasbench201/cifar10", "nasbench201/cifar100", "nasbench201/cifar10@nb201_12epoch"]
    assert data.truth == [True, True, False] and data.sizes().tolist() == [8, 8, 12] and data.cgs is None
    assert data.labels[data.group == 2].tolist() == [60.0 + k for k in range(12)]  # the 12-epoch test accuracy
    assert data.labels[data.group == 1].tolist() == [50.0 + k for k in range(8)]
    assert data.keys[:8] == data.keys[8:16]
    split = lofo_splits(data.families, data.truth)
    assert len(split) == 1 and split[0].test_groups == (0, 1) and split[0].train_groups == ()
    sub = load_groups(["nasbench201/cifar10", "nasbench201/cifar10@nb201_12epoch"], n_per_group=5, seed=1,
                      data_dir=toy_data, cgs=False)
    again = load_groups(["nasbench201/cifar10@nb201_12epoch"], n_per_group=5, seed=1, data_dir=toy_data, cgs=False)
    assert sub.sizes().tolist() == [5, 5]
    assert sub.keys[5:] == again.keys  # a group's subset depends only on the seed and its name
    assert sub.keys[5:] != load_groups(["nasbench201/cifar10@nb201_12epoch"], n_per_group=5, seed=2,
                                       data_dir=toy_data, cgs=False).keys
    with pytest.raises(ValueError, match="listed twice"):
        load_groups(["nasbench201/cifar10", "nasbench201"], data_dir=toy_data, cgs=False)
    with pytest.raises(ValueError, match="n_per_group"):
        load_groups(["nasbench201"], n_per_group=0, data_dir=toy_data)
    with pytest.raises(ValueError, match="no labels here"):
        load_groups(["hiaml"], data_dir=toy_data, cgs=False)


def test_load_groups_with_cgs_and_flops_targets(toy_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    data = load_groups(["nasbench201/cifar10", "nasbench201/cifar10@nb201_12epoch"], n_per_group=3,
                       data_dir=toy_data, progress=False)
    assert len(data.cgs) == 6 and all(cg.meta["family"] == "nasbench201" for cg in data.cgs)
    gflops = data.gflops()
    assert gflops.shape == (6,) and (gflops > 0).all()
    assert np.allclose(gflops, [cg.flops / 1e9 for cg in data.cgs])
    y = data.targets(flops_transform=True)
    expected, _ = flops_targets_within(data.labels, data.group, gflops)
    np.testing.assert_allclose(y, expected)
    assert not np.allclose(y, data.targets())  # FLOPs do change the targets


# ------------------------------------------------------------------------------------------ real data
def test_load_groups_real_tables(shared_data: Path) -> None:
    specs = ["nasbench101/cifar10@nb101_30k", "nasbench101", "nasbench301", "nasbench201/cifar10@nb201_200ep",
             "nasbench201/cifar10@nb201_12epoch", "nats_sss/cifar100", "transbench101_micro/jigsaw"]
    data = load_groups(specs, data_dir=shared_data, cgs=False)
    assert data.sizes().tolist() == [30001, 500, 725, 15625, 15625, 32768, 711]
    assert data.truth == [True, True, True, True, False, True, True]
    y = data.targets()
    for g in range(len(specs)):
        assert abs(y[data.group == g].mean()) < 1e-9 and abs(y[data.group == g].std() - 1) < 1e-9
    sampler = BalancedGroupSampler(data.group, batch_size=112, num_batches=300, seed=0)
    picked = np.bincount(data.group[np.concatenate(list(sampler))], minlength=len(specs))
    assert picked.max() < 1.5 * picked.min(), picked  # ~uniform over groups despite 30,001 vs 500 nets
    strict = {s.held_out: s for s in protocol_splits(data.families, data.truth) if s.variant == "strict"}
    assert strict["nats_sss"].train_groups == (0, 1, 2)
    # identity keys compare across the two NB-101 tables: 110 NASLib rows (26 cells) are in nb101_30k
    big, naslib = set(data.select([0]).keys), data.select([1]).keys
    assert sum(k in big for k in naslib) == 110 and len(big & set(naslib)) == 26
    assert len(data.select([0, 1]).without(naslib)) == 30001 - 26
    small = load_groups(specs[:3], n_per_group=100, seed=0, data_dir=shared_data, cgs=False)
    assert small.sizes().tolist() == [100, 100, 100]
