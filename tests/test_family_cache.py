"""The on-disk CG cache: exact round trip, versioning, atomic writes, resumable conversion."""

from __future__ import annotations

import gzip
import os
import random
import warnings
from pathlib import Path

import pytest

from cgpredict.cg import CG, CGBuilder
from cgpredict.datasets import CONVERTER_VERSION, Family, cache_dir, hiaml, load_family
from cgpredict.datasets import cache as cache_module
from cgpredict.datasets.cache import CGCache


def synthetic_cg(seed: int, layers: int = 100) -> CG:
    """A conv-BN-ReLU chain (3 nodes per layer) with random widths, kernels and a split/concat."""
    rng = random.Random(seed)
    b = CGBuilder(name=f"synthetic{seed}", meta={"seed": seed})
    x = b.add("input", out_shape=(1, 16, 32, 32), name="x")
    c = 16
    for i in range(layers):
        co = rng.choice((16, 32, 64))
        k = rng.choice((1, 3))
        conv = b.add(
            "conv", [x], out_shape=(1, co, 32, 32), name=f"l{i}.conv", source_op="aten.conv2d.default",
            weight_shape=(co, c, k, k), kernel=(k, k), stride=(1, 1), padding=(k // 2, k // 2), dilation=(1, 1),
            bias=i % 2 == 0, params=co * c * k * k + (co if i % 2 == 0 else 0),
        )
        bn = b.add("batch_norm", [conv], out_shape=(1, co, 32, 32), weight_shape=(co,), params=2 * co, name=f"l{i}.bn")
        x = b.add("relu", [bn], out_shape=(1, co, 32, 32), name=f"l{i}.relu")
        c = co
    half = b.add("split", [x], out_shape=(1, c // 2, 32, 32), attrs={"dim": 1, "index": 0})
    cat = b.add("concat", [half, x], out_shape=(1, c + c // 2, 32, 32), attrs={"dim": 1})
    b.add("output", [cat], out_shape=(1, c + c // 2, 32, 32))
    return b.build()


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_round_trip_is_exact(root: Path) -> None:
    cgs = [synthetic_cg(i, layers=20) for i in range(3)]
    cache = CGCache("fam", "task", (1, 3, 32, 32), root=root)
    for i, cg in enumerate(cgs):
        cache.put(f"arch{i}", cg)
    assert cache.dirty
    cache.flush()
    assert not cache.dirty and cache.path.is_file() and cache.path.name == "fam__task__1x3x32x32.v3.json.gz"
    fresh = CGCache("fam", "task", (1, 3, 32, 32), root=root)
    assert sorted(fresh.keys()) == ["arch0", "arch1", "arch2"] and "arch1" in fresh and len(fresh) == 3
    for i, cg in enumerate(cgs):
        loaded = fresh.get(f"arch{i}")
        assert loaded.to_dict() == cg.to_dict()
        assert loaded.hash() == cg.hash() and loaded.flops == cg.flops and loaded.params == cg.params
        loaded.validate()
    assert fresh.get("nope") is None


def test_round_trip_of_a_converted_network(root: Path) -> None:
    from cgpredict.converters import from_torch

    arch = (11, 6, 3, 8)  # squeeze-excite, inception, inverted residual and dense blocks
    cg = from_torch(hiaml.build(arch), input_shape=(1, 3, 32, 32))
    cache = CGCache("hiaml", None, (1, 3, 32, 32), root=root)
    cache.put(hiaml.format_arch(arch), cg)
    cache.flush()
    loaded = CGCache("hiaml", None, (1, 3, 32, 32), root=root).get(hiaml.format_arch(arch))
    assert loaded.to_dict() == cg.to_dict()
    assert loaded.to_pyg().x.shape == cg.to_pyg().x.shape


def test_bundles_are_keyed_by_family_task_shape_and_version(root: Path) -> None:
    cache = CGCache("fam", "a", (1, 3, 32, 32), root=root)
    cache.put("k", synthetic_cg(0, layers=2))
    cache.flush()
    assert CGCache("fam", "b", (1, 3, 32, 32), root=root).get("k") is None
    assert CGCache("fam", "a", (1, 3, 64, 64), root=root).get("k") is None
    assert CGCache("other", "a", (1, 3, 32, 32), root=root).get("k") is None
    assert CGCache("fam", "a", (1, 3, 32, 32), root=root, version="0.0.0+old").get("k") is None
    assert CGCache("fam", "a", (1, 3, 32, 32), root=root).get("k") is not None
    assert CONVERTER_VERSION.startswith("cgpredict-") and "+cg" in CONVERTER_VERSION and "+feat" in CONVERTER_VERSION


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    assert CGCache("f", None, (1,)).path.is_relative_to(tmp_path / "here")
    monkeypatch.delenv("CGPREDICT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "cgpredict"


def test_interrupted_write_leaves_old_file_intact(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CGCache("fam", None, (1, 3, 32, 32), root=root)
    cache.put("old", synthetic_cg(1, layers=5))
    cache.flush()
    before = cache.path.read_bytes()

    real_write = gzip.GzipFile.write

    def crash_midway(self: gzip.GzipFile, data: bytes) -> int:
        real_write(self, data[: len(data) // 2])  # half of the document reaches the temp file
        raise KeyboardInterrupt

    monkeypatch.setattr(gzip.GzipFile, "write", crash_midway)
    cache.put("new", synthetic_cg(2, layers=5))
    with pytest.raises(KeyboardInterrupt):
        cache.flush()
    monkeypatch.undo()
    assert cache.path.read_bytes() == before
    left = sorted(n for n in os.listdir(cache.path.parent) if not n.endswith(".lock"))
    assert left == [cache.path.name]  # no temp file left behind
    assert CGCache("fam", None, (1, 3, 32, 32), root=root).keys() == ["old"]
    cache.flush()  # the entry is still pending and gets written on the next flush
    assert sorted(CGCache("fam", None, (1, 3, 32, 32), root=root).keys()) == ["new", "old"]


def test_corrupt_file_is_ignored_and_rewritten(root: Path) -> None:
    cache = CGCache("fam", None, (1,), root=root)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"not gzip at all")
    with pytest.warns(cache_module.CacheWarning, match="unreadable"):
        assert cache.get("x") is None
    cache.put("x", synthetic_cg(0, layers=1))
    cache.flush()
    assert CGCache("fam", None, (1,), root=root).get("x") is not None


def test_two_writers_merge(root: Path) -> None:
    first = CGCache("fam", None, (1,), root=root)
    second = CGCache("fam", None, (1,), root=root)
    first.get("anything")  # both have read the (empty) bundle before either writes
    second.get("anything")
    first.put("a", synthetic_cg(0, layers=1))
    second.put("b", synthetic_cg(1, layers=1))
    first.flush()
    second.flush()
    assert sorted(CGCache("fam", None, (1,), root=root).keys()) == ["a", "b"]


def test_interrupted_conversion_keeps_progress(root: Path) -> None:
    calls: list[int] = []

    def converter(arch: int) -> CG:
        if arch == 3 and len(calls) < 10:
            calls.append(-1)
            raise KeyboardInterrupt  # e.g. Ctrl-C during the 4th network
        calls.append(arch)
        return synthetic_cg(arch, layers=2)

    fam = Family(name="resumable", task=None, archs=list(range(6)), input_shape=(1,), converter=converter, cache_name="resumable")
    with pytest.raises(KeyboardInterrupt):
        fam.cgs(progress=False, cache_root=root)
    assert sorted(fam.cache(root).keys()) == ["0", "1", "2"]
    calls.clear()
    calls.extend([0] * 10)  # let the converter succeed now
    cgs = fam.cgs(progress=False, cache_root=root)
    assert calls[10:] == [3, 4, 5]  # only the missing ones were converted
    assert [cg.hash() for cg in cgs] == [synthetic_cg(i, layers=2).hash() for i in range(6)]
    assert cgs[0].name == "resumable/0"


def test_family_cgs_use_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    fam = load_family("two_path", n=4, seed=5)
    first = fam.cgs(progress=False)
    assert fam.cache().path.is_file() and len(fam.cache()) == 4

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted although cached")

    monkeypatch.setattr(Family, "convert", no_conversion)
    second = load_family("two_path", n=4, seed=5).cgs(progress=False)
    assert [cg.to_dict() for cg in second] == [cg.to_dict() for cg in first]
    assert fam.subset([2, 0]).cgs(progress=False)[0].hash() == first[2].hash()


def test_worker_processes_convert_the_same_cgs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    fam = load_family("nasbench201", n=6, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # registered families go to the workers
        parallel = fam.cgs(progress=False, workers=2)
    assert len(fam.cache()) == 6  # written by the parent process
    serial = fam.cgs(progress=False, cache=False)

    def content(cg: CG) -> dict:
        doc = cg.to_dict()
        doc["meta"].pop("convert_seconds")
        return doc

    assert [content(cg) for cg in parallel] == [content(cg) for cg in serial]
    # a family that cannot be pickled (lambda builder) converts in this process, with a warning
    local = Family("custom", None, ["a", "b"], builder=lambda _arch: hiaml.build(hiaml.sample(1, seed=0)[0]),
                   input_shape=(1, 3, 32, 32))
    with pytest.warns(RuntimeWarning, match="cannot be sent to worker processes"):
        cgs = local.cgs(progress=False, cache=False, workers=2)
    assert len(cgs) == 2 and cgs[0].hash() == cgs[1].hash()


def test_bundle_of_725_networks_loads_distinct_copies(root: Path) -> None:
    """A bundle of 725 CGs of ~300 nodes (the size of NAS-Bench-201's) loads back whole, one object each.

    Its speed is measured by ``benchmarks/cache_speed.py``, not asserted here.
    """
    cache = CGCache("speed", "t", (1, 3, 32, 32), root=root)
    encoded = cache_module._encode(synthetic_cg(0, layers=100))
    assert len(encoded["op"]) == 304
    entries = cache._entries()
    for i in range(725):  # same content under 725 keys: the decoder does the full work
        entries[f"arch{i}"] = cache_module.make_entry(f"arch{i}", encoded)
    cache._dirty.update(entries)
    cache.flush()
    fresh = CGCache("speed", "t", (1, 3, 32, 32), root=root)
    cgs = fresh.get_many([f"arch{i}" for i in range(725)])
    assert all(cg is not None and cg.num_nodes == 304 for cg in cgs)
    assert cgs[0] is not cgs[1]
    assert cgs[0].hash() == cgs[724].hash() == synthetic_cg(0, layers=100).hash()


def test_cache_speed_benchmark_runs_and_reports_both_timings() -> None:
    """``benchmarks/cache_speed.py`` converts, caches and reloads a few real NB-201 nets and prints both rows."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "cache_speed.py"
    out = subprocess.run([sys.executable, str(script), "--n", "3", "--repeats", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert "nasbench201: 3 networks" in out
    assert "convert (from_torch)" in out and "load from cache" in out
    assert "extrapolated cold load of 725 networks" in out
