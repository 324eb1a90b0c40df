"""The Ray executor on a local two-CPU Ray session: same numbers, worker faults, resume, errors.

Skipped when ``ray`` (the ``cgpredict[ray]`` extra) is not installed. One Ray session is shared by
the module (starting one takes seconds); the 300-network comparison of the issue is ``slow``.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from cgpredict.executors import (LocalExecutor, Outcome, ResultStore, get_executor, run_cached,  # noqa: E402
                                 score_cgs)
from cgpredict.executors.ray_backend import RayExecutor  # noqa: E402
from cgpredict.proxies.zero_cost import naswot, synflow  # noqa: E402


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """``ray.init(num_cpus=2)`` for the module; this module's scorers are sent by value."""
    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def nb201_cgs() -> list:
    """Thirty sampled NAS-Bench-201 CGs (the first thirty of the slow test's 300)."""
    from cgpredict.datasets import load_family

    return load_family("nasbench201", n=30, seed=0).cgs(progress=False)


def bits(values: Sequence[Any]) -> list[str]:
    """Floats (or lists of floats) as exact text, so equal means bit-identical and NaN equals NaN."""
    return [repr([float(x).hex() for x in v]) if isinstance(v, list) else float(v).hex() for v in values]


def both_proxies(cg) -> list[float]:
    """SynFlow and NASWOT of one CG (the proxy pair of the same-numbers test)."""
    return [synflow(cg), naswot(cg)]


def synflow_killing_once(cg, marker: str, victim: str) -> float:
    """SynFlow, but the first attempt at ``victim`` kills its own worker process (SIGKILL)."""
    if cg.hash() == victim and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return synflow(cg)


def synflow_killing_always(cg, victim: str) -> float:
    """SynFlow, but every attempt at ``victim`` kills its worker process."""
    if cg.hash() == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    return synflow(cg)


class Recording:
    """An executor wrapper that records every index its inner executor yields; optionally raises
    ``KeyboardInterrupt`` after ``stop_after`` outcomes (a Ctrl-C on the driver)."""

    def __init__(self, inner, stop_after: int | None = None) -> None:
        self.inner, self.stop_after, self.name, self.seen = inner, stop_after, inner.name, []

    @property
    def workers(self) -> int:
        return self.inner.workers

    def map_chunks(self, fn: Callable, items: Sequence, chunk_size: int | None = None, **kw: Any):
        for index, outcome in self.inner.map_chunks(fn, items, chunk_size, **kw):
            if self.stop_after is not None and len(self.seen) >= self.stop_after:
                raise KeyboardInterrupt
            self.seen.append(index)
            yield index, outcome

    def map(self, *args: Any, **kw: Any) -> list[Outcome]:  # pragma: no cover - unused here
        return self.inner.map(*args, **kw)

    def close(self) -> None:
        self.inner.close()


def _same_numbers(cgs: list, scorer: Callable, tmp_path: Path) -> None:
    local = score_cgs(cgs, scorer, "local")
    store = ResultStore(tmp_path)
    executor = RayExecutor()
    assert executor.workers == 2 and executor.num_gpus_per_task == 0
    on_ray = score_cgs(cgs, scorer, executor, store=store, config_key="pair|seed=0", chunk_size=10)
    assert all(o.ok for o in local) and all(o.ok for o in on_ray)
    assert bits([o.value for o in on_ray]) == bits([o.value for o in local])
    ranking = sorted(range(len(cgs)), key=lambda i: (local[i].value[0], i))
    assert ranking == sorted(range(len(cgs)), key=lambda i: (on_ray[i].value[0], i))
    # the cluster run filled the cache a local run reads: nothing is computed again here
    calls: list[int] = []
    again = run_cached(LocalExecutor(), lambda cg: calls.append(1), cgs, "pair|seed=0", store)
    assert calls == [] and bits([o.value for o in again]) == bits([o.value for o in local])


def test_same_numbers_locally_and_on_ray(ray_session, nb201_cgs, tmp_path: Path) -> None:
    _same_numbers(nb201_cgs[:12], both_proxies, tmp_path)


@pytest.mark.slow
def test_same_numbers_300_nb201_nets(ray_session, tmp_path: Path) -> None:
    from cgpredict.datasets import load_family

    cgs = load_family("nasbench201", n=300, seed=0).cgs(progress=False)
    _same_numbers(cgs, both_proxies, tmp_path)


def test_killed_worker_loses_nothing_and_duplicates_nothing(ray_session, nb201_cgs, tmp_path: Path) -> None:
    cgs = nb201_cgs[:30]
    marker = tmp_path / "killed.pid"
    scorer = functools.partial(synflow_killing_once, marker=str(marker), victim=cgs[17].hash())
    store = ResultStore(tmp_path / "store")
    recording = Recording(RayExecutor(max_retries=2))
    outcomes = run_cached(recording, scorer, cgs, "synflow|fault", store, chunk_size=5)
    assert marker.is_file(), "no worker was killed"
    assert int(marker.read_text()) != os.getpid()  # it was a Ray worker, not this driver
    unique = {cg.hash() for cg in cgs}
    assert sorted(recording.seen) == list(range(len(unique)))  # every network once, none twice
    assert set(store.hashes("synflow|fault")) == unique
    assert all(o.ok and not o.fault for o in outcomes)
    assert bits([o.value for o in outcomes]) == bits([synflow(cg) for cg in cgs])


def test_worker_dying_past_retries_is_a_fault_not_cached(ray_session, nb201_cgs, tmp_path: Path) -> None:
    cgs = nb201_cgs[:8]
    store = ResultStore(tmp_path)
    scorer = functools.partial(synflow_killing_always, victim=cgs[5].hash())
    outcomes = run_cached(RayExecutor(max_retries=0), scorer, cgs, "synflow|doomed", store, chunk_size=4)
    assert [o.fault for o in outcomes] == [False] * 4 + [True] * 4  # the victim's whole chunk
    assert all("WorkerCrashed" in o.error for o in outcomes[4:])
    assert set(store.hashes("synflow|doomed")) == {cg.hash() for cg in cgs[:4]}


def test_interrupted_ray_run_resumes(ray_session, nb201_cgs, tmp_path: Path) -> None:
    cgs = nb201_cgs[:14]
    store = ResultStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_cached(Recording(RayExecutor(), stop_after=5), synflow, cgs, "synflow|ctrl-c", store, chunk_size=1)
    done = set(store.hashes("synflow|ctrl-c"))
    assert len(done) == 5
    recording = Recording(RayExecutor())
    outcomes = run_cached(recording, synflow, cgs, "synflow|ctrl-c", store, chunk_size=3)
    assert len(recording.seen) == len({cg.hash() for cg in cgs}) - 5  # only the rest was computed
    assert bits([o.value for o in outcomes]) == bits([synflow(cg) for cg in cgs])


def test_per_item_failure_on_ray_as_locally(ray_session, nb201_cgs, broken_cg) -> None:
    cgs = [nb201_cgs[0], broken_cg, nb201_cgs[1]]
    local = score_cgs(cgs, synflow, "local")
    on_ray = score_cgs(cgs, synflow, get_executor("ray"), chunk_size=3)
    assert [o.ok for o in on_ray] == [True, False, True]
    assert on_ray[1].error == local[1].error and not on_ray[1].fault
    assert bits([on_ray[0].value, on_ray[2].value]) == bits([local[0].value, local[2].value])


def test_gpu_fraction_only_where_the_cluster_has_gpus(ray_session, nb201_cgs) -> None:
    executor = RayExecutor(num_gpus_per_task=0.25)
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    assert executor.num_gpus_per_task == (0.25 if has_gpu else 0.0)
    outcomes = executor.map(synflow, nb201_cgs[:2])
    assert all(o.ok for o in outcomes)
    with pytest.raises(ValueError, match="fraction"):
        RayExecutor(num_gpus_per_task=2)


def test_function_workers_cannot_load_is_one_clear_error(ray_session, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "driver_only_scorer.py").write_text("def score(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, not on the Ray workers
    import driver_only_scorer

    from cgpredict.executors import ExecutorError

    with pytest.raises(ExecutorError, match="No module named 'driver_only_scorer'"):
        RayExecutor().map(driver_only_scorer.score, [1, 2, 3])


def test_family_conversion_on_ray_gives_the_local_cgs(ray_session, tmp_path: Path) -> None:
    """``Family.cgs(executor=...)``: nets converted by Ray workers (sent back as JSON) equal the
    ones converted here, and land in the same CG cache."""
    from cgpredict.datasets import load_family

    fam = load_family("nasbench201", n=6, seed=11)
    local = fam.cgs(progress=False, cache=False)
    remote = fam.cgs(progress=False, cache_root=tmp_path, executor=RayExecutor())
    assert [cg.hash() for cg in remote] == [cg.hash() for cg in local]
    assert [(cg.name, cg.to_dict()["nodes"]) for cg in remote] == [(cg.name, cg.to_dict()["nodes"]) for cg in local]
    assert [cg.hash() for cg in fam.cgs(progress=False, cache_root=tmp_path)] == [cg.hash() for cg in local]


def test_proxy_bank_on_ray_gives_the_local_numbers(ray_session, nb201_cgs, tmp_path: Path) -> None:
    """``bank_scores_many(executor=...)``: the whole default bank on Ray workers, bit-identical to
    this process, and cached here (a second run sends nothing)."""
    import numpy as np

    from cgpredict.proxies.bank import BankConfig, bank_scores_many

    cgs, config = nb201_cgs[:4], BankConfig(batch_size=8)
    local = bank_scores_many(cgs, None, config, cache=False, progress=False)
    remote = bank_scores_many(cgs, None, config, cache_dir=tmp_path, progress=False, executor=RayExecutor())
    for a, b in zip(local, remote):
        assert bits(a.scores.values()) == bits(b.scores.values()) and a.errors == b.errors
        assert all(np.array_equal(a.node[k], b.node[k], equal_nan=True) for k in a.node)
    assert all(r.cached for r in bank_scores_many(cgs, None, config, cache_dir=tmp_path, progress=False,
                                                  executor=RayExecutor()))
