"""Predictor-guided CG search: mutations, objective, Pareto front, algorithms, exports and CLI."""

from __future__ import annotations

import argparse
import csv
import json
import math
import textwrap
import warnings

import numpy as np
import pytest

from cgpredict.cg import CG
from cgpredict.converters import from_torch
from cgpredict.search import (
    MUTATIONS,
    CellSpace,
    CGSpace,
    Objective,
    diff_cgs,
    get_mutations,
    local_search,
    mutate,
    pareto_front,
    random_search,
    regularized_evolution,
    search_cg,
)
from cgpredict.search.graph_edit import ShapeError, canonical_key, check_shapes
from cgpredict.search.spaces import run_check


@pytest.fixture(scope="module")
def nets() -> dict[str, CG]:
    import torchvision

    return {
        "resnet18": from_torch(torchvision.models.resnet18(), input_shape=(1, 3, 32, 32), name="resnet18"),
        "mobilenet_v2": from_torch(torchvision.models.mobilenet_v2(), input_shape=(1, 3, 32, 32),
                                   name="mobilenet_v2"),
    }


def _count(cg: CG, op: str) -> int:
    return sum(n.op == op for n in cg.nodes)


def _expected_change(name: str, before: CG, after: CG, site: int) -> None:
    """Each mutation changes what its description says."""
    hb, ha = before.op_histogram(), after.op_histogram()
    node = before.nodes[site]
    move = after.meta["mutations"][-1]
    assert move.startswith(name + ":")
    if name == "kernel_size":
        k = int(move.split("-> ")[1].split("x")[0])
        assert k != node.kernel[0]
        assert any(n.name == node.name and n.kernel == (k, k) for n in after.nodes)
        assert after.num_nodes == before.num_nodes
    elif name == "activation":
        new_op = move.split("-> ")[1]
        assert after.nodes[site].op == new_op != node.op  # same node order, one op changed
        assert [n.op for n in after.nodes if n.id != site] == [n.op for n in before.nodes if n.id != site]
        assert after.flops == before.flops and after.params == before.params
    elif name == "to_separable":
        assert ha.get("depthwise_conv", 0) == hb.get("depthwise_conv", 0) + 1
        assert after.params < before.params
    elif name == "to_inverted":
        assert ha.get("depthwise_conv", 0) == hb.get("depthwise_conv", 0) + 1
        assert ha["conv"] == hb["conv"] + 1
    elif name == "to_dense":
        assert ha.get("depthwise_conv", 0) == hb["depthwise_conv"] - 1
    elif name == "width":
        old, new = (int(v) for v in move.split(" channels")[0].split(" ")[-3::2])
        assert old == node.out_shape[1] != new
        assert [n.out_shape[1] for n in after.nodes if n.name == node.name] == [new]
    elif name == "add_skip":
        assert ha["add"] == hb.get("add", 0) + 1 and after.params == before.params
    elif name == "drop_skip":
        assert ha.get("add", 0) == hb["add"] - 1 and after.params == before.params
    elif name == "remove_block":
        assert ha.get("add", 0) == hb["add"] - 1 and after.params < before.params
    elif name == "add_block":
        assert ha["add"] == hb.get("add", 0) + 1 and after.params > before.params


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_mutation_keeps_the_cg_valid_and_changes_what_it_says(nets, name) -> None:
    mutation = MUTATIONS[name]
    rng = np.random.default_rng(0)
    applied = 0
    for net in nets.values():
        sites = mutation.sites(net)
        for site in sites[:: max(1, len(sites) // 3)][:3]:
            child = mutation.apply(net, site, rng)
            if child is None:
                continue
            child.validate()
            check_shapes(child)
            assert [n.id for n in child.nodes] == list(range(child.num_nodes))
            _expected_change(name, net, child, site)
            assert net.meta.get("mutations") is None  # the parent is untouched
            run_check(child)
            applied += 1
    assert applied > 0, f"{name} never applied on resnet18/mobilenet_v2"


def test_check_shapes_catches_a_broken_edit(nets) -> None:
    cg = CG.from_dict(nets["resnet18"].to_dict())
    conv = next(n for n in cg.nodes if n.op == "conv" and n.kernel == (3, 3) and n.id > 5)
    conv.weight_shape = (conv.weight_shape[0], conv.weight_shape[1] + 1, 3, 3)
    with pytest.raises(ShapeError, match=conv.name):
        check_shapes(cg)


def test_mutate_is_seeded_and_chains(nets) -> None:
    def walk(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        cg = nets["mobilenet_v2"]
        for _ in range(6):
            cg = mutate(cg, rng) or cg
        return cg.meta["mutations"]

    assert walk(3) == walk(3)
    assert walk(3) != walk(4)
    assert len(walk(3)) == 6
    with pytest.raises(ValueError, match="nope"):
        get_mutations(["kernel_size", "nope"])


def test_canonical_key_ignores_move_order(nets) -> None:
    cg = nets["resnet18"]
    act, ks = MUTATIONS["activation"], MUTATIONS["kernel_size"]
    rng = np.random.default_rng(0)
    a_site, k_site = act.sites(cg)[2], ks.sites(cg)[4]
    one = ks.apply(act.apply(cg, a_site, np.random.default_rng(1)), k_site, np.random.default_rng(2))
    two = act.apply(ks.apply(cg, k_site, np.random.default_rng(2)), a_site, np.random.default_rng(1))
    assert canonical_key(one) == canonical_key(two)
    assert canonical_key(one) != canonical_key(cg)
    assert canonical_key(mutate(cg, rng)) != canonical_key(cg)


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.integers(0, 6, size=30).astype(float)
        f = rng.integers(0, 6, size=30).astype(float)
        p[rng.integers(30)] = np.nan
        front = pareto_front(p, f)
        brute = set()
        seen = set()
        for i in np.argsort(f, kind="stable"):
            if not np.isfinite(p[i]):
                continue
            dominated = any(np.isfinite(p[j]) and p[j] >= p[i] and f[j] <= f[i] and (p[j] > p[i] or f[j] < f[i])
                            for j in range(30))
            if not dominated and (p[i], f[i]) not in seen:
                brute.add((p[i], f[i]))
                seen.add((p[i], f[i]))
        assert {(p[i], f[i]) for i in front} == brute
        assert len(front) == len(brute)
        assert np.all(np.diff(f[front]) > 0) and np.all(np.diff(p[front]) > 0)
    with pytest.raises(ValueError):
        pareto_front([1.0, 2.0], [1.0])


def test_objective_hard_and_soft_budget() -> None:
    hard, soft = Objective(100.0), Objective(100.0, penalty=2.0)
    assert hard.value(0.9, 100) == 0.9 and hard.value(0.9, 101) == -math.inf
    assert soft.value(0.9, 150) == pytest.approx(0.9 - 2.0 * 0.5)
    assert hard.sort_key(0.1, 90) > hard.sort_key(0.9, 120)  # feasible beats infeasible
    assert hard.sort_key(0.0, 110) > hard.sort_key(0.0, 130)  # infeasible: fewer FLOPs first
    with pytest.raises(ValueError, match="flops_budget"):
        Objective(0.0)


def _dw_scorer(cgs: list[CG]) -> np.ndarray:
    """A simple deterministic scorer: more depthwise convs and fewer parameters are better."""
    return np.array([_count(c, "depthwise_conv") - c.params / 1e6 for c in cgs])


def test_local_search_improves_respects_budget_and_reproduces(nets) -> None:
    start = nets["resnet18"]
    res = search_cg(start, _dw_scorer, flops_budget=0.8, iterations=4, topk=4, mutants=4, seed=0, progress=False)
    assert res.top and all(c.flops <= 0.8 * start.flops for c in res.top)
    assert res.best.pred > res.start.pred
    assert res.start.pred == pytest.approx(_dw_scorer([start])[0])
    assert [c.value for c in res.top] == sorted((c.value for c in res.top), reverse=True)
    for c in res.top:  # recorded numbers are the CG's own
        assert c.flops == c.item.flops and c.params == c.item.params
        check_shapes(c.item)
    again = search_cg(start, _dw_scorer, flops_budget=0.8, iterations=4, topk=4, mutants=4, seed=0, progress=False)
    assert [c.key for c in again.history] == [c.key for c in res.history]
    other = search_cg(start, _dw_scorer, flops_budget=0.8, iterations=4, topk=4, mutants=4, seed=1, progress=False)
    assert [c.key for c in other.history] != [c.key for c in res.history]
    front = res.pareto()
    assert all(a.flops < b.flops and a.pred < b.pred for a, b in zip(front, front[1:]))
    traj = res.trajectory()
    assert traj.size == res.queries and np.all(np.diff(traj[np.isfinite(traj)]) >= 0)


def test_a_start_no_move_applies_to_is_refused_and_a_missed_budget_names_the_moves(nets) -> None:
    """An MLP has no site for any move: refused up front. A one-conv 1-D net has only activation swaps,
    which cannot cut FLOPs: the warning says so instead of only asking for more iterations."""
    import torch.nn as nn

    from cgpredict.search.mutations import applicable

    mlp = from_torch(nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5)), input_shape=(1, 12), name="mlp")
    with pytest.raises(ValueError, match="no mutation applies to mlp"):
        search_cg(mlp, _dw_scorer, flops_budget=0.8, progress=False)
    assert {"kernel_size", "width", "add_block"} <= set(applicable(nets["resnet18"]))
    one_conv = from_torch(nn.Sequential(nn.Conv1d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                                        nn.Flatten(), nn.Linear(16, 4)), input_shape=(1, 8, 32), name="one_conv")
    assert applicable(one_conv) == ("activation",)
    with pytest.warns(UserWarning, match="moves that apply to the start: activation"):
        res = search_cg(one_conv, _dw_scorer, flops_budget=0.5, iterations=2, topk=2, mutants=2, progress=False)
    assert res.best is None and res.start_moves == ("activation",)


def test_width_moves_edit_a_1d_conv_net_exactly() -> None:
    """Width on (N, C, L) maps: the mutant's MACs and params equal those of the same net built at the
    new width, it runs, and a search under a FLOPs budget finds such mutants."""
    import torch.nn as nn

    from cgpredict.search.mutations import applicable

    def signal(c: int) -> CG:
        return from_torch(nn.Sequential(nn.Conv1d(8, c, 3, padding=1), nn.BatchNorm1d(c), nn.ReLU(),
                                        nn.Conv1d(c, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                                        nn.Flatten(), nn.Linear(16, 4)), input_shape=(1, 8, 32), name="signal")
    start = signal(16)
    assert "width" in applicable(start)
    width = MUTATIONS["width"]
    rng = np.random.default_rng(0)
    for _ in range(4):
        child = width.apply(start, width.sites(start)[0], rng)
        if child is None:
            continue
        run_check(child)
        same = signal(child.nodes[width.sites(start)[0]].out_shape[1])
        assert (child.flops, child.params) == (same.flops, same.params)
    res = search_cg(start, _dw_scorer, flops_budget=0.8, iterations=3, topk=2, mutants=4, progress=False)
    assert res.best is not None and all(c.flops <= 0.8 * start.flops for c in res.top)


def test_soft_penalty_can_exceed_budget_hard_cannot(nets) -> None:
    start = nets["mobilenet_v2"]

    def big(cgs: list[CG]) -> np.ndarray:  # rewards MACs: pushes against the budget
        return np.array([c.flops / start.flops for c in cgs])

    hard = search_cg(start, big, flops_budget=1.0, iterations=3, topk=3, mutants=4, progress=False)
    soft = search_cg(start, big, flops_budget=1.0, penalty=0.01, iterations=3, topk=3, mutants=4, progress=False)
    assert all(c.flops <= start.flops for c in hard.top)
    assert any(c.flops > start.flops for c in soft.top)


def test_evolution_and_random_use_the_query_budget(nets) -> None:
    start = nets["mobilenet_v2"]
    space = CGSpace(start, _dw_scorer, walk=2)
    evo = regularized_evolution(space, start, Objective(), population=8, tournament=3, max_queries=24, progress=False)
    rnd = random_search(space, start, Objective(), max_queries=24, progress=False)
    assert evo.queries == 24 and rnd.queries == 24
    assert len({c.key for c in evo.history}) == len(evo.history)
    assert evo.best.pred >= evo.start.pred
    with pytest.raises(ValueError, match="tournament"):
        regularized_evolution(space, start, population=4, tournament=5)


def test_cell_space_restricted_to_allowed_archs() -> None:
    rng = np.random.default_rng(0)
    allowed = [tuple(int(v) for v in rng.integers(5, size=6)) for _ in range(60)]
    target = np.array([2, 2, 2, 2, 2, 2])
    space = CellSpace(6, 5, lambda archs: np.array([-(np.asarray(a) != target).sum() for a in archs], float),
                      allowed=allowed)
    for _ in range(50):
        child, move = space.mutate(allowed[0], rng)
        assert child in set(allowed) and child != allowed[0] and move.startswith("edge")
    res = local_search(space, allowed[0], iterations=30, topk=3, mutants=4, max_queries=40, progress=False)
    best_possible = max(-(np.asarray(a) != target).sum() for a in allowed)
    assert res.queries <= 40 and res.best.pred >= res.start.pred
    assert res.best.pred >= best_possible - 2


def test_diff_names_the_changes(nets) -> None:
    start = nets["resnet18"]
    child = MUTATIONS["to_separable"].apply(start, MUTATIONS["to_separable"].sites(start)[3], np.random.default_rng(0))
    text = diff_cgs(start, child)
    assert "to_separable" in text and "depthwise_conv 0->1" in text
    assert "+depthwise_conv" in text.replace(" ", "") or "+depthwise_conv" in text


TINY_NET = textwrap.dedent('''
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                       nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(x + self.block(x))
            return self.head(x.mean((2, 3)))
''')


def test_cli_search_writes_outputs(tmp_path) -> None:
    from cgpredict.commands import search as search_cmd
    from cgpredict.models.synthetic import toy_family
    from cgpredict.predictor import Predictor

    cgs, acc = toy_family(48, seed=0)
    ckpt = Predictor(members=["k-GNN"], kgnn={"epochs": 3}, progress=False).fit(cgs, acc).save(tmp_path / "pred")
    (tmp_path / "tiny.py").write_text(TINY_NET)
    parser = argparse.ArgumentParser()
    search_cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["search", f"{tmp_path / 'tiny.py'}:Tiny", "--input-shape", "1,3,16,16",
                              "--predictor", str(ckpt), "--flops-budget", "1.0", "--iterations", "2", "--topk", "2",
                              "--mutants", "3", "-o", str(out), "-q"])
    assert args.func(args) == 0
    for name in ("results.csv", "pareto.csv", "search.json", "search.png", "rank01/model.cg.json",
                 "rank01/model.py", "rank01/model.onnx", "rank01/diff.txt"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert 1 <= len(rows) <= 2 and all(r["runs"] == "True" and r["onnx_same_cg"] == "True" for r in rows)
    summary = json.loads((out / "search.json").read_text())
    assert all(r["macs"] <= summary["start"]["macs"] for r in summary["top"])
    import subprocess
    import sys

    import onnx

    onnx.checker.check_model(onnx.load(str(out / "rank01" / "model.onnx")))
    ran = subprocess.run([sys.executable, str(out / "rank01" / "model.py")], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "output (1, 10)" in ran.stdout
    missing = parser.parse_args(["search", "torchvision:resnet18", "--predictor", str(tmp_path / "nope"), "-o",
                                 str(out)])
    with pytest.raises(FileNotFoundError, match="nope"):
        missing.func(missing)


def test_resolve_start_family_arch_and_json(tmp_path) -> None:
    from cgpredict.datasets import nasbench201 as nb
    from cgpredict.search import resolve_start

    cg = resolve_start("nasbench201:(0, 2, 3, 2, 3, 1)")
    assert cg.name == "nasbench201:(0, 2, 3, 2, 3, 1)"
    assert cg.macs(nb.FLOPS_MODE) == 88307392 and cg.params == 615386  # the table's own row
    cg.to_json(tmp_path / "start.json")
    assert resolve_start(str(tmp_path / "start.json")).hash() == cg.hash()
    with pytest.raises(ValueError):
        search_cg(cg, _dw_scorer, method="annealing")
    with pytest.raises(ValueError, match="budget"):
        search_cg(cg, _dw_scorer, flops_budget=-1)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["torchvision:resnet18", "torchvision:mobilenet_v2"])
def test_pretrained_search_on_torchvision_models(tmp_path, model) -> None:
    """Free-form acceptance: every returned net runs, meets the budget and round-trips through ONNX."""
    from cgpredict.predictor import CHECKPOINT_DIR, Predictor
    from cgpredict.search import resolve_start, write_results

    if not (CHECKPOINT_DIR / "nb101" / "config.json").is_file():
        pytest.skip("no pretrained nb101 checkpoint shipped")
    start = resolve_start(model)
    res = search_cg(start, Predictor.pretrained("nb101", progress=False).predict, flops_budget=0.8, iterations=6,
                    topk=3, mutants=8, progress=False)
    rows = write_results(res, start, tmp_path, progress=False)
    assert rows
    for row in rows:
        assert row["macs"] <= 0.8 * start.flops
        assert row["runs"] and row["onnx_same_cg"]


def _flops_scorer(start: CG):
    """Rises with MACs (like the pretrained predictor) plus a bonus per SiLU: a 20 % MAC cut costs
    about 0.22, each ReLU turned into SiLU gives back 0.05."""
    def score(cgs: list[CG]) -> np.ndarray:
        return np.array([math.log(c.flops / start.flops) + 0.05 * _count(c, "silu") for c in cgs])
    return score


def test_budget_forcing_cuts_returns_feasible_nets_and_scores_over_budget_ones(nets) -> None:
    start = nets["resnet18"]
    budget = 0.8 * start.macs("torchvision")
    kwargs = dict(flops_budget=0.8, iterations=4, topk=4, mutants=6, seed=3, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = search_cg(start, _flops_scorer(start), **kwargs)
        again = search_cg(start, _flops_scorer(start), **kwargs)
    assert res.top and res.best.flops <= budget and all(c.flops <= budget for c in res.top)
    assert all(math.isfinite(c.value) and c.query > 0 for c in res.top)
    over = [c for c in res.history if c.flops > budget]
    assert over and all(c.query > 0 and math.isfinite(c.pred) and c.value == -math.inf for c in over)
    assert not {c.key for c in over} & {c.key for c in res.top}
    # the walk to the budget is not counted in the improvement rounds: some came after the first feasible one
    first = min(c.iteration for c in res.history if c.flops <= budget)
    assert max(c.iteration for c in res.history) >= first + 3
    assert [c.key for c in again.history] == [c.key for c in res.history]
    assert [c.pred for c in again.top] == [c.pred for c in res.top]


def test_explore_keeps_over_budget_parents_and_is_validated(nets) -> None:
    start = nets["resnet18"]
    budget = 0.8 * start.macs("torchvision")
    space = CGSpace(start, _flops_scorer(start))
    parents_over = {}
    for explore in (0.0, 0.5):
        res = local_search(space, start, Objective(budget), iterations=3, topk=4, mutants=4, explore=explore,
                           progress=False)
        assert res.top and all(c.flops <= budget for c in res.top)
        first = min(c.iteration for c in res.history if c.flops <= budget)
        by_key = {c.key: c for c in res.history}
        later = [c for c in res.history if c.iteration > first + 1 and c.parent in by_key]
        parents_over[explore] = sum(by_key[c.parent].flops > budget for c in later)
    assert parents_over[0.0] == 0 < parents_over[0.5]
    with pytest.raises(ValueError, match="explore"):
        local_search(space, start, Objective(budget), explore=1.5, progress=False)


def test_over_budget_order_prefers_cheap_cuts_that_keep_the_prediction() -> None:
    from cgpredict.search.algorithms import Candidate, _over_budget_order

    def cand(key: str, pred: float, flops: float, query: int) -> Candidate:
        return Candidate(None, key, pred, flops, 0.0, -math.inf, query, 1)

    lowest = cand("lowest-flops", 1.0, 100.0, 1)    # the greedy cut, loses most
    cheap = cand("cheap-cut", 2.9, 110.0, 2)        # nearly as few FLOPs, keeps the prediction
    high = cand("no-cut", 3.0, 150.0, 3)
    mid = cand("dominated", 2.0, 130.0, 4)          # worse than cheap-cut in both
    unscored = cand("unscored", math.nan, 90.0, 0)
    order = [c.key for c in _over_budget_order([high, mid, lowest, unscored, cheap])]
    assert order == ["cheap-cut", "lowest-flops", "no-cut", "dominated", "unscored"]


def test_search_warns_when_no_net_within_budget_predicts_the_start(nets) -> None:
    start = nets["mobilenet_v2"]

    def macs_only(cgs: list[CG]) -> np.ndarray:  # any cut lowers the prediction: 0.8 cannot reach the start
        return np.array([c.flops / start.flops for c in cgs])

    with pytest.warns(UserWarning, match=r"below the start's 1\.000"):
        res = search_cg(start, macs_only, flops_budget=0.8, iterations=2, topk=3, mutants=4, progress=False)
    assert res.best is not None and res.best.pred < res.start.pred
    assert "predicts" in res.below_start() and f"{res.best.pred:.3f}" in res.below_start()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no warning when the start is matched
        ok = search_cg(start, macs_only, flops_budget=1.0, iterations=1, topk=2, mutants=4, progress=False)
    assert ok.below_start() is None


def test_cli_search_with_the_generalist_scores_against_one_fixed_reference(tmp_path, monkeypatch, capsys) -> None:
    """The default scorer is the shipped generalist, anchored on the start's nearest training group:
    the search improves that score, and every reported score is the net's own (batch-independent)."""
    from cgpredict import cli
    from cgpredict.ranking import GeneralistScorer
    from cgpredict.generalist import GeneralistPredictor
    from cgpredict.search import resolve_start

    def refuse(self, cgs):  # noqa: ANN001, ANN202 - --no-proxies must never run the bank
        raise AssertionError("the proxy bank ran")

    monkeypatch.setattr(GeneralistPredictor, "bank_results", refuse)
    spec, out = "nasbench201:(0, 2, 3, 2, 3, 1)", tmp_path / "out"
    assert cli.main(["search", spec, "--no-proxies", "--iterations", "3", "--topk", "3", "--mutants", "6",
                     "--no-onnx", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    model = GeneralistPredictor.pretrained(progress=False)
    start = resolve_start(spec)
    group = model.nearest_group(model.columns([start], use_proxies=False))
    assert GeneralistScorer(model, use_proxies=False).anchor(start) == group
    assert f"training group {group!r}" in text and "not accuracies" in text and "start " + spec + ": score" in text
    summary = json.loads((out / "search.json").read_text())
    assert summary["start"]["pred"] == pytest.approx(model.predict([start], use_proxies=False, reference=group)[0])
    top = summary["top"]
    assert top and top[0]["pred"] > summary["start"]["pred"]  # the search found a higher-scored net
    cgs = [CG.from_json(out / f"rank{r['rank']:02d}" / "model.cg.json") for r in top]
    together = model.predict(cgs, use_proxies=False, reference=group)
    alone = [model.predict([c], use_proxies=False, reference=group)[0] for c in cgs]
    np.testing.assert_allclose(together, alone)
    np.testing.assert_allclose(together, [r["pred"] for r in top])
    with pytest.raises(RuntimeError, match="anchor"):
        GeneralistScorer(model)([start])


def test_cli_search_keeps_the_gennape_predictor_on_request(tmp_path, capsys) -> None:
    from cgpredict import cli
    from cgpredict.predictor import Predictor
    from cgpredict.search import resolve_start

    spec, out = "nasbench201:(0, 2, 3, 2, 3, 1)", tmp_path / "out"
    assert cli.main(["search", spec, "--pretrained", "nb101", "--iterations", "1", "--topk", "2", "--mutants", "3",
                     "--no-onnx", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"start {spec}: predicted " in text and "training group" not in text
    summary = json.loads((out / "search.json").read_text())
    shipped = Predictor.pretrained("nb101", progress=False)
    assert summary["start"]["pred"] == pytest.approx(float(shipped.predict([resolve_start(spec)])[0]), abs=1e-4)
    assert cli.main(["search", spec, "--pretrained", "nb101", "--no-proxies", "-o", str(tmp_path / "x")]) == 2
    assert "--no-proxies applies to the generalist only" in capsys.readouterr().err
    assert cli.main(["search", spec, "--pretrained", "nb101", "--predictor", str(tmp_path), "-o",
                     str(tmp_path / "x")]) == 2
    assert "not both" in capsys.readouterr().err


def test_cli_search_runs_the_bank_on_an_executor_with_the_same_scores(tmp_path, monkeypatch, capsys) -> None:
    """``--executor local:2`` scores each round's candidates in worker processes: same search, same scores."""
    from cgpredict import cli

    spec = "nasbench201:(0, 2, 3, 2, 3, 1)"
    argv = ["search", spec, "--iterations", "1", "--topk", "2", "--mutants", "2", "--no-onnx", "-q"]
    runs = {}
    for name, extra in (("workers", ["--executor", "local:2"]), ("here", [])):
        monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / f"cache_{name}"))  # each run computes its own scores
        assert cli.main([*argv, *extra, "-o", str(tmp_path / name)]) == 0
        runs[name] = json.loads((tmp_path / name / "search.json").read_text())
        assert any((tmp_path / f"cache_{name}").rglob("*.npz"))
    assert runs["workers"]["start"]["pred"] == pytest.approx(runs["here"]["start"]["pred"])
    assert [r["pred"] for r in runs["workers"]["top"]] == pytest.approx([r["pred"] for r in runs["here"]["top"]])
    capsys.readouterr()
    assert cli.main([*argv, "--executor", "local:2", "--pretrained", "nb101", "-o", str(tmp_path / "x")]) == 2
    assert "--executor applies to the generalist only" in capsys.readouterr().err
    assert cli.main([*argv, "--executor", "gpu:9", "-o", str(tmp_path / "x")]) == 2
    assert "--executor 'gpu:9'" in capsys.readouterr().err
