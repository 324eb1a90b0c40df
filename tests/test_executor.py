"""The executor seam without Ray: spec parsing, per-item failures, the result store, resume.

Ray's own tests are in ``test_executor_ray.py`` (skipped when ``ray`` is not installed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgpredict.executors import (ExecutorError, LocalExecutor, Outcome, ResultStore, get_executor, run_cached,
                                 score_cgs)
from cgpredict.proxies.zero_cost import synflow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nb201_cgs():
    """Twelve sampled NAS-Bench-201 CGs (no labels needed; converted once, then cached)."""
    from cgpredict.datasets import load_family

    return load_family("nasbench201", n=12, seed=0).cgs(progress=False)


def bits(values):
    """Floats as exact text (``float.hex``), so equal means bit-identical and NaN equals NaN."""
    return [float(v).hex() for v in values]


def test_get_executor_resolves_specs() -> None:
    assert isinstance(get_executor(None), LocalExecutor) and get_executor("local").workers == 1
    assert get_executor("local:3").workers == 3
    own = LocalExecutor(workers=2)
    assert get_executor(own) is own
    with pytest.raises(ValueError, match="unknown executor spec 'dask'"):
        get_executor("dask")
    with pytest.raises(ValueError, match="'local:N' needs a number"):
        get_executor("local:many")
    with pytest.raises(TypeError, match="expected a spec string or an Executor"):
        get_executor(3)  # type: ignore[arg-type]


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ExecutorError, match=r"pip install cgpredict\[ray\]"):
        get_executor("ray:auto")


def test_failures_are_reported_per_item_and_the_run_goes_on(nb201_cgs, broken_cg) -> None:
    cgs = [nb201_cgs[0], broken_cg, nb201_cgs[1]]
    outcomes = score_cgs(cgs, synflow, "local")
    assert [o.ok for o in outcomes] == [True, False, True]
    assert bits([outcomes[0].value, outcomes[2].value]) == bits([synflow(nb201_cgs[0]), synflow(nb201_cgs[1])])
    with pytest.raises(Exception) as raised:  # the error the outcome must report
        synflow(broken_cg)
    assert outcomes[1].error.startswith(type(raised.value).__name__ + ": ") and not outcomes[1].fault


def test_process_pool_sends_cg_json_and_gives_the_same_numbers(nb201_cgs, broken_cg) -> None:
    cgs = list(nb201_cgs[:5]) + [broken_cg]
    here = score_cgs(cgs, synflow, "local")
    pool = score_cgs(cgs, synflow, "local:2", chunk_size=2)
    assert bits([o.value for o in pool[:5]]) == bits([o.value for o in here[:5]])
    assert not pool[5].ok and pool[5].error == here[5].error


def worker_pid(_item) -> int:
    return os.getpid()


def test_pool_outlives_one_map_call_until_close() -> None:
    """A caller mapping batch after batch (a search: one batch per round) pays the workers' start-up once."""
    with LocalExecutor(workers=2) as runner:
        first = {o.value for o in runner.map(worker_pid, list(range(8)), chunk_size=1)}
        second = {o.value for o in runner.map(worker_pid, list(range(8)), chunk_size=1)}
        assert os.getpid() not in first and second <= first  # the same worker processes
    assert runner._pool is None  # closed: the workers are gone; a later map starts new ones
    assert os.getpid() not in {o.value for o in runner.map(worker_pid, [0, 1], chunk_size=1)}
    runner.close()


def test_pool_refuses_a_function_it_cannot_send(nb201_cgs) -> None:
    with pytest.raises(ExecutorError, match="cannot be sent to worker processes"):
        LocalExecutor(workers=2).map(lambda cg: cg.num_nodes, nb201_cgs[:3])


def test_store_round_trip_and_fault_refusal(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.put("ab" * 32, "cfg", Outcome(value=[1.5, float("nan")]))
    store.put("cd" * 32, "cfg", Outcome(error="ValueError: no"))
    got = store.get("ab" * 32, "cfg")
    assert got is not None and got.value[0] == 1.5 and got.value[1] != got.value[1]
    assert store.get("cd" * 32, "cfg") == Outcome(error="ValueError: no")
    assert store.get("ab" * 32, "other config") is None
    assert store.hashes("cfg") == ["ab" * 32, "cd" * 32]
    with pytest.raises(ValueError, match="refusing to store a fault"):
        store.put("ef" * 32, "cfg", Outcome(error="WorkerCrashed", fault=True))
    store.path("ef" * 32, "cfg").parent.mkdir(parents=True)
    store.path("ef" * 32, "cfg").write_text("{torn")  # an unreadable entry is recomputed, not trusted
    assert store.get("ef" * 32, "cfg") is None


def test_run_cached_computes_only_missing_and_duplicates_once(nb201_cgs, tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    calls: list[str] = []

    def scorer(cg):
        calls.append(cg.hash())
        return synflow(cg)

    first = run_cached(LocalExecutor(), scorer, nb201_cgs[:4], "synflow|test", store)
    assert len(calls) == 4 and len(store.hashes("synflow|test")) == 4
    cgs = list(nb201_cgs[:6]) + [nb201_cgs[0]]  # two new networks, one repeated
    again = run_cached(LocalExecutor(), scorer, cgs, "synflow|test", store)
    assert len(calls) == 6 and sorted(calls[4:]) == sorted(cg.hash() for cg in nb201_cgs[4:6])
    assert bits([o.value for o in again[:4]]) == bits([o.value for o in first])
    assert again[6] == again[0]
    assert len(store.hashes("synflow|test")) == 6


def test_unstorable_value_is_a_per_item_error(nb201_cgs, tmp_path: Path) -> None:
    outcomes = run_cached(LocalExecutor(), lambda cg: object(), nb201_cgs[:1], "object", ResultStore(tmp_path))
    assert not outcomes[0].ok and "not JSON-representable" in outcomes[0].error


RESUME_SCRIPT = """
import json, sys, time
from cgpredict.cg import CG
from cgpredict.executors import LocalExecutor, ResultStore, run_cached
from cgpredict.proxies.zero_cost import synflow

def slow_synflow(cg):
    time.sleep(0.3)
    return synflow(cg)

cgs = [CG.from_json(text) for text in json.load(open(sys.argv[1]))]
run_cached(LocalExecutor(), slow_synflow, cgs, "synflow|resume", ResultStore(sys.argv[2]))
"""


def test_run_killed_mid_way_resumes_where_it_stopped(nb201_cgs, tmp_path: Path) -> None:
    cgs = list(nb201_cgs)
    (tmp_path / "cgs.json").write_text(json.dumps([cg.to_json() for cg in cgs]))
    (tmp_path / "run.py").write_text(RESUME_SCRIPT)
    store = ResultStore(tmp_path / "store")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "cgs.json"), str(store.root)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while len(store.hashes("synflow|resume")) < 3:
            assert proc.poll() is None, f"the scoring run ended early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the scoring run wrote no entries in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean-up: as a crash or an OOM kill
        proc.wait()
    done = set(store.hashes("synflow|resume"))
    unique = {cg.hash() for cg in cgs}
    assert 3 <= len(done) < len(unique)
    calls: list[str] = []

    def scorer(cg):
        calls.append(cg.hash())
        return synflow(cg)

    resumed = run_cached(LocalExecutor(), scorer, cgs, "synflow|resume", store)
    assert sorted(calls) == sorted(unique - done)  # only what the killed run had not written
    assert bits([o.value for o in resumed]) == bits([synflow(cg) for cg in cgs])
    assert set(store.hashes("synflow|resume")) == unique


def test_family_conversion_through_an_executor(tmp_path) -> None:
    """``Family.cgs(executor="local:2")`` converts in two processes: same CGs as here, cached."""
    from cgpredict.datasets import load_family

    fam = load_family("nasbench201", n=5, seed=12)
    local = fam.cgs(progress=False, cache=False)
    pooled = fam.cgs(progress=False, cache_root=tmp_path, executor="local:2")
    assert [(cg.name, cg.to_dict()["nodes"]) for cg in pooled] == [(cg.name, cg.to_dict()["nodes"]) for cg in local]
    cached = fam.cgs(progress=False, cache_root=tmp_path)
    assert [cg.hash() for cg in cached] == [cg.hash() for cg in local]


def test_rank_rejects_an_unknown_executor_before_any_work(capsys) -> None:
    from cgpredict import cli

    assert cli.main(["rank", "--family", "nasbench201", "--n", "5", "--executor", "dask:x"]) == 2
    err = capsys.readouterr().err
    assert "--executor 'dask:x'" in err and "Traceback" not in err
