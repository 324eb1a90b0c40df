"""Hostile cache contents: edited, misplaced, truncated, nested, bombed and concurrently written entries.

Pipeline position: the on-disk caches beside model → CG (bundles of converted CGs) and CG → proxy
features / zero-cost scores. Every bad entry must be dropped, reported once (CacheWarning) and
recomputed — never trusted, never a traceback — and four processes filling one bundle at once must
not lose each other's entries.
"""

from __future__ import annotations

import gzip
import json
import math
import multiprocessing
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from cgpredict.cg import CG, CGBuilder
from cgpredict.datasets import cache as cache_module
from cgpredict.datasets.cache import CacheWarning, CGCache


@pytest.fixture(autouse=True)
def fresh_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees its own "reported once" bookkeeping."""
    monkeypatch.setattr(cache_module, "_REPORTED", set())


def chain(width: int, name: str = "net") -> CG:
    b = CGBuilder(name)
    x = b.add("input", [], (1, 3, 8, 8))
    c = b.add("conv", [x], (1, width, 8, 8), weight_shape=(width, 3, 3, 3), kernel=(3, 3), stride=(1, 1),
              padding=(1, 1), dilation=(1, 1), params=27 * width)
    r = b.add("relu", [c], (1, width, 8, 8))
    p = b.add("global_pool", [r], (1, width, 1, 1))
    b.add("output", [p], (1, width, 1, 1))
    return b.build()


def rewrite_bundle(path: Path, edit) -> None:  # noqa: ANN001 - edit(document) changes it in place
    doc = json.loads(gzip.decompress(path.read_bytes()))
    edit(doc)
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))


def bundle(root: Path, widths: dict[str, int]) -> CGCache:
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=root)
    for key, width in widths.items():
        cache.put(key, chain(width))
    cache.flush()
    return CGCache("fam", "t", (1, 3, 8, 8), root=root)


def test_an_edited_but_valid_entry_is_dropped_reported_once_and_recomputed(tmp_path: Path) -> None:
    fresh = bundle(tmp_path, {"a": 4, "b": 8})
    true_macs = chain(4).flops

    def edit(doc: dict) -> None:  # a plausible, decodable edit: ten times the MACs of the conv
        cg = json.loads(doc["entries"]["a"]["cg"])
        cg["macs"] = [m * 10 for m in cg["macs"]]
        doc["entries"]["a"]["cg"] = json.dumps(cg, separators=(",", ":"))

    rewrite_bundle(fresh.path, edit)
    with pytest.warns(CacheWarning, match="'a': entry fails its checksum") as caught:
        again = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
        assert again.get("a") is None  # never the edited MACs
        assert again.get("a") is None
    assert len(caught) == 1
    assert again.get("b").flops == chain(8).flops
    again.put("a", chain(4))
    again.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path).get("a").flops == true_macs


def test_an_entry_moved_to_another_key_is_refused(tmp_path: Path) -> None:
    fresh = bundle(tmp_path, {"small": 4, "big": 64})
    rewrite_bundle(fresh.path, lambda doc: doc["entries"].__setitem__("small", doc["entries"]["big"]))
    with pytest.warns(CacheWarning, match="written for another key"):
        assert CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path).get("small") is None


def test_a_dropped_entry_leaves_the_file_on_the_next_write(tmp_path: Path) -> None:
    fresh = bundle(tmp_path, {"a": 4, "b": 8})
    rewrite_bundle(fresh.path, lambda doc: doc["entries"]["a"].__setitem__("sha256", "0" * 64))
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
    with pytest.warns(CacheWarning):
        assert cache.get("a") is None
    assert cache.dirty
    cache.flush()
    assert sorted(json.loads(gzip.decompress(cache.path.read_bytes()))["entries"]) == ["b"]


@pytest.mark.parametrize("content, reason", [
    (b"[" * 200000 + b"]" * 200000, "RecursionError"),
    (b"not json", "unreadable"),
    (json.dumps({"format": "cgpredict.cg-cache", "entries": {}}).encode(), "header"),
])
def test_a_bundle_that_is_not_ours_is_treated_as_empty(tmp_path: Path, content: bytes, reason: str) -> None:
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(gzip.compress(content))
    with pytest.warns(CacheWarning, match=reason):
        assert cache.get("a") is None and len(cache) == 0
    cache.put("a", chain(4))
    cache.flush()
    assert CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path).get("a").flops == chain(4).flops


def test_a_gzip_bomb_is_refused_after_the_cap_not_decompressed_whole(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Cap 1 MiB: a 64 MiB bomb (64 KiB on disk) is refused after reading about 1 MiB."""
    monkeypatch.setenv(cache_module.MAX_BYTES_ENV, "1")
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(gzip.compress(b" " * (64 << 20), compresslevel=9))
    assert cache.path.stat().st_size < 200_000
    read = []
    real_read = gzip.GzipFile.read

    def counting_read(self: gzip.GzipFile, size: int = -1) -> bytes:
        data = real_read(self, size)
        read.append(len(data))
        return data

    with monkeypatch.context() as patch:
        patch.setattr(gzip.GzipFile, "read", counting_read)
        with pytest.warns(CacheWarning, match="decompresses to more than 1 MiB"):
            assert cache.get("a") is None
    assert sum(read) <= 2 << 20
    cache.put("a", chain(4))  # the next write replaces the bomb (its re-read is refused the same way)
    cache.flush()
    assert CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path).get("a") is not None


def _writer(root: str, worker: int, n: int) -> None:
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=root)
    for i in range(n):
        cache.put(f"w{worker}-{i}", chain(1 + (worker * n + i) % 7))
        cache.flush()  # every write re-reads, merges and replaces the shared file


def test_four_concurrent_writers_lose_no_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 12)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
    assert sorted(cache.keys()) == sorted(f"w{w}-{i}" for w in range(4) for i in range(12))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert all(cache.get(k) is not None for k in cache.keys())
    assert not [n for n in os.listdir(cache.path.parent) if n.endswith(".tmp")]


# ---------------------------------------------------------------------------------- proxy caches
def test_proxy_feature_files_truncated_edited_or_moved_are_recomputed(tmp_path: Path) -> None:
    from cgpredict.proxies import features
    from cgpredict.proxies.features import ProxyConfig, ProxyFeatures

    cg = chain(4)
    n = cg.num_nodes
    feats = ProxyFeatures(graph=np.arange(6, dtype=np.float32), node=np.ones((n, 2), dtype=np.float32),
                          node_mask=np.ones(n, dtype=bool), loss=0.5, initial_loss=1.0, stage_losses=[0.7, 0.6, 0.5],
                          taps=["a"], seconds=1.0)
    path = features._cache_path(cg, ProxyConfig(), tmp_path)
    features._save(path, feats)
    hit = features._load(path, cg)
    assert hit is not None and hit.cached and hit.loss == 0.5 and np.array_equal(hit.graph, feats.graph)
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])  # truncated: BadZipFile
    with pytest.warns(CacheWarning, match="BadZipFile"):
        assert features._load(path, cg) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert features._load(path, cg) is None  # reported once per file and process
    cache_module._REPORTED.clear()  # as in a later run
    other = path.with_name("0" * 64 + ".npz")
    other.write_bytes(good)  # copied under another key
    with pytest.warns(CacheWarning, match="another key"):
        assert features._load(other, cg) is None
    with np.load(io_bytes(good)) as data:  # an edited but valid file: loss changed, checksum kept
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["loss"] = 0.01
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path.with_suffix(""), **arrays)
    with pytest.warns(CacheWarning, match="checksum"):
        assert features._load(path, cg) is None


def io_bytes(data: bytes):  # noqa: ANN201 - a seekable file object
    import io

    return io.BytesIO(data)


def test_zero_cost_files_edited_or_nested_are_recomputed(tmp_path: Path) -> None:
    from cgpredict.proxies import zero_cost

    cg = chain(4)
    first = zero_cost.zero_cost_scores([cg], "synflow", cache_dir=tmp_path, progress=False)
    assert math.isfinite(first[0])
    (path,) = list(tmp_path.rglob("*.json"))
    doc = json.loads(path.read_text())
    assert doc["key"] == path.stem and doc["sha256"]
    doc["score"] = 1e9  # edited, valid JSON
    path.write_text(json.dumps(doc))
    with pytest.warns(CacheWarning, match="checksum"):
        again = zero_cost.zero_cost_scores([cg], "synflow", cache_dir=tmp_path, progress=False)
    assert again[0] == pytest.approx(first[0])
    assert json.loads(path.read_text())["score"] == pytest.approx(first[0])  # rewritten
    cache_module._REPORTED.clear()  # as in a later run
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.warns(CacheWarning, match="RecursionError"):
        assert zero_cost.zero_cost_scores([cg], "synflow", cache_dir=tmp_path, progress=False)[0] == \
            pytest.approx(first[0])
