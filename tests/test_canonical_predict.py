"""The predictor reads canonical CGs: one network, one prediction, whatever its source (issue 21, item 9).

Pipeline position: model → CG → **canonical CG inside the predictor** → members → ranking (tests).

The acceptance test exports each of the 20 hand-written networks of
:mod:`tests.test_canonical_zoo` three ways (``from_torch``, ONNX dynamo, legacy ONNX with constant
folding, i.e. batch norm folded into the convolutions) and hands the *raw* CGs to the shipped
``Predictor.pretrained("nb101")``: the predictor canonicalizes them itself, so the three predictions of
each network are identical. The other tests pin the option's wiring: per-object cache, proxies on
the CG as given, ``canonical`` in checkpoints (absent key → ``False``), the CLI.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from cgpredict import canonical as canonical_module  # noqa: E402
from cgpredict.converters import from_torch  # noqa: E402
from cgpredict.models.fcm import OutOfDistributionWarning  # noqa: E402
from cgpredict.predictor import Predictor  # noqa: E402
from cgpredict.predictor import inputs as inp  # noqa: E402
from cgpredict.predictor.checkpoint import write_manifest  # noqa: E402
from tests.test_canonical_zoo import HAND_ZOO, ResNetTiny, randomized, sources  # noqa: E402

TINY = dict(encoder={"epochs": 1, "branch_dim": 16}, regressor={"epochs": 3, "hidden": 32},
            pairwise={"epochs": 1, "hidden": 16}, kgnn={"epochs": 1}, n_clusters=3)


@pytest.fixture(scope="module")
def zoo_sources() -> dict[str, dict]:
    """``{model: {"torch"|"dynamo"|"legacy": raw CG}}`` for the 20 hand-written networks."""
    out = {}
    for name in sorted(HAND_ZOO):
        torch.manual_seed(0)
        out[name] = sources(randomized(HAND_ZOO[name]()), (1, 3, 32, 32))
    return out


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor.pretrained("nb101", progress=False)


def _predict(predictor: Predictor, cgs: list) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)  # not NB-101 cells
        return predictor.predict(cgs)


def test_shipped_checkpoint_reads_canonical_cgs(shipped: Predictor) -> None:
    assert shipped.canonical is True
    assert shipped.config()["canonical"] is True


def test_shipped_predictor_gives_one_prediction_per_network(zoo_sources: dict, shipped: Predictor) -> None:
    assert len(zoo_sources) >= 20
    labels = ("torch", "dynamo", "legacy")
    raw = {label: [zoo_sources[name][label] for name in zoo_sources] for label in labels}
    # the raw CGs do differ by source (legacy folds batch norm): the predictor must reconcile them
    differ = [name for name in zoo_sources if zoo_sources[name]["torch"].hash() != zoo_sources[name]["legacy"].hash()]
    assert len(differ) >= 15, differ
    predictions = {label: _predict(shipped, cgs) for label, cgs in raw.items()}
    for label in labels:
        assert np.all(np.isfinite(predictions[label]))
        for name, got, want in zip(zoo_sources, predictions[label], predictions["torch"]):
            assert got == want, f"{name}: {label} predicts {got}, from_torch {want}"
    ranks = {label: shipped.rank(cgs) for label, cgs in raw.items()}
    np.testing.assert_array_equal(ranks["legacy"], ranks["torch"])
    np.testing.assert_array_equal(ranks["dynamo"], ranks["torch"])
    # the same checkpoint reading the CGs as converted tells the sources apart: the option is what agrees
    shipped.canonical = False
    try:
        assert not np.array_equal(_predict(shipped, raw["torch"]), _predict(shipped, raw["legacy"]))
    finally:
        shipped.canonical = True


def test_canonical_forms_cached_per_cg_object(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = canonical_module.canonicalize
    monkeypatch.setattr(canonical_module, "canonicalize", lambda cg: calls.append(cg) or real(cg))
    inp.clear_canonical_cache()
    torch.manual_seed(0)
    cg = from_torch(randomized(ResNetTiny()), input_shape=(1, 3, 32, 32))
    first = inp.canonical_of(cg)
    assert inp.canonical_of(cg) is first and len(calls) == 1
    assert "batch_norm" in cg.op_histogram() and "batch_norm" not in first.op_histogram()
    assert inp.member_cgs([cg], canonical=False)[0] is cg
    copy = type(cg).from_json(cg.to_json())  # another object: canonicalized on its own
    assert inp.canonical_of(copy).hash() == first.hash() and len(calls) == 2


def test_predictor_canonicalizes_once_per_cg_across_calls(monkeypatch: pytest.MonkeyPatch,
                                                          shipped: Predictor) -> None:
    calls = []
    real = canonical_module.canonicalize
    monkeypatch.setattr(canonical_module, "canonicalize", lambda cg: calls.append(cg) or real(cg))
    torch.manual_seed(1)
    cgs = [from_torch(randomized(HAND_ZOO[name]()), input_shape=(1, 3, 32, 32)) for name in ("plain", "dense")]
    first = _predict(shipped, cgs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        shipped.score(cgs), shipped.member_scores(cgs), shipped.embed(cgs), shipped.ood(cgs)
    np.testing.assert_array_equal(_predict(shipped, cgs), first)
    assert len(calls) == 2


def test_members_read_canonical_cgs_and_proxies_the_cgs_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    cg = from_torch(randomized(ResNetTiny()), input_shape=(1, 3, 32, 32))
    seen: dict[str, list] = {}

    def fake_features(cgs):  # what the regression proxy would train: record it instead
        seen["features"] = list(cgs)
        return np.array([[1.0, 0.5]]), [np.zeros((cgs[0].num_nodes, 3), dtype=np.float32)]

    def fake_scores(cgs, graph=None):
        seen["scores"] = list(cgs)
        return np.zeros((len(cgs), 1))

    for canonical in (True, False):
        p = Predictor(proxy="gennas", canonical=canonical, progress=False)
        monkeypatch.setattr(p, "proxy_features", fake_features)
        monkeypatch.setattr(p, "proxy_scores", fake_scores)
        data = inp.Inputs(p, [cg])
        assert data.sources[0] is cg
        assert ("batch_norm" in data.cgs[0].op_histogram()) is not canonical
        assert data.nodes[0].shape[0] == data.cgs[0].num_nodes  # node columns follow the nodes members read
        data.proxy_scores
        assert seen["features"][0] is cg and seen["scores"][0] is cg


def test_canonical_of_equals_canonicalize_and_maps_nodes_to_their_origin(zoo_sources: dict) -> None:
    for name, per_source in zoo_sources.items():
        for label, cg in per_source.items():
            inp.clear_canonical_cache()
            canon = inp.canonical_of(cg)
            assert canon == canonical_module.canonicalize(cg), (name, label)  # names and order included
            rows = np.arange(cg.num_nodes, dtype=np.float64)[:, None]
            origin = inp.canonical_node_rows(cg, rows)[:, 0].astype(int)
            assert len(origin) == canon.num_nodes
            for node, i in zip(canon.nodes, origin):  # each canonical node comes from a node of its op
                source = cg.nodes[i]
                assert source.name == node.name and (source.op == node.op or node.op in ("global_pool", "split")), \
                    (name, label, node.op, source.op)


def test_proxy_node_columns_follow_canonical_nodes() -> None:
    torch.manual_seed(0)
    cg = from_torch(randomized(ResNetTiny()), input_shape=(1, 3, 32, 32))
    p = Predictor(proxy="gennas", canonical=True, progress=False)
    rows = [np.arange(cg.num_nodes, dtype=np.float32)[:, None].repeat(3, axis=1)]
    p.proxy_features = lambda cgs: (np.ones((1, 2)), rows)
    data = inp.Inputs(p, [cg])
    (cols,) = data.nodes
    canon = data.cgs[0]
    by_origin = {int(c[0]): node for c, node in zip(cols, canon.nodes)}
    assert len(by_origin) == canon.num_nodes  # distinct origins
    convs = [i for i, n in enumerate(cg.nodes) if n.op == "conv"]
    assert all(i in by_origin for i in convs)  # every conv (now holding its batch norm) keeps its row
    assert not any(cg.nodes[i].op == "batch_norm" for i in by_origin)  # folded batch norms are gone


def test_checkpoint_records_canonical_and_old_ones_load_as_converted(tmp_path: Path) -> None:
    from cgpredict.models.synthetic import toy_family

    cgs, acc = toy_family(40)
    for canonical in (True, False):
        p = Predictor(progress=False, canonical=canonical, **TINY).fit(cgs, acc)
        folder = p.save(tmp_path / f"c{canonical}")
        doc = json.loads((folder / "config.json").read_text())
        assert doc["config"]["canonical"] is canonical
        assert Predictor.load(folder, progress=False).canonical is canonical
    # a checkpoint written before the option existed: no key → the CGs as converted
    doc["config"].pop("canonical")
    (folder / "config.json").write_text(json.dumps(doc))
    write_manifest(folder)
    old = Predictor.load(folder, progress=False)
    assert old.canonical is False
    np.testing.assert_array_equal(old.predict(cgs[:5]), p.predict(cgs[:5]))


def test_encoder_pretraining_and_fit_read_canonical_cgs(monkeypatch: pytest.MonkeyPatch) -> None:
    from cgpredict.models.contrastive import ContrastiveEncoder

    torch.manual_seed(0)
    cgs = [from_torch(randomized(HAND_ZOO[name]()), input_shape=(1, 3, 32, 32)) for name in ("plain", "resnet_tiny")]
    seen = []
    monkeypatch.setattr(ContrastiveEncoder, "fit", lambda self, given: seen.append(list(given)) or self)
    Predictor(progress=False, **TINY).fit_encoder(cgs)
    Predictor(progress=False, canonical=False, **TINY).fit_encoder(cgs)
    assert [any("batch_norm" in cg.op_histogram() for cg in given) for given in seen] == [False, True]
    assert [cg.hash() for cg in seen[0]] == [inp.canonical_of(cg).hash() for cg in cgs]


def test_canonical_must_be_a_bool() -> None:
    from cgpredict.models.synthetic import toy_family

    cgs, acc = toy_family(20)
    with pytest.raises(ValueError, match="canonical must be True or False"):
        Predictor(progress=False, canonical="yes", **TINY).fit(cgs, acc)


def test_bag_passes_canonical_through() -> None:
    from cgpredict.predictor import PredictorBag

    assert PredictorBag(bags=2).canonical is True
    assert PredictorBag(bags=2, canonical=False).canonical is False
    assert PredictorBag(bags=2, canonical=False).get_params()["canonical"] is False


def test_cli_predict_torch_spec_and_its_legacy_onnx_export_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import io

    import onnx

    from cgpredict import cli

    source = tmp_path / "bnnet.py"
    source.write_text(
        "from torch import nn\n\n\n"
        "class BNNet(nn.Sequential):\n"
        "    def __init__(self):\n"
        "        super().__init__(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),\n"
        "                         nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32),\n"
        "                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from bnnet import BNNet  # noqa: PLC0415

    torch.manual_seed(0)
    model = randomized(BNNet())
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), buffer, dynamo=False, do_constant_folding=True)
    onnx_path = tmp_path / "bnnet.onnx"
    onnx_path.write_bytes(buffer.getvalue())
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(str(onnx_path)).graph.node}  # folded
    monkeypatch.setattr(cli, "COMMAND_MODULES", tuple(dict.fromkeys(cli.COMMAND_MODULES + ("predict",))))
    printed = {}
    for label, spec in (("torch", f"{source}:BNNet"), ("onnx", str(onnx_path))):
        assert cli.main(["predict", spec, "--input-shape", "1,3,32,32", "--pretrained", "nb101", "-q"]) == 0
        text = capsys.readouterr().out
        (row,) = [line.split() for line in text.splitlines() if line.startswith(spec)]
        printed[label] = row[1]  # the "pred acc %" column, as printed
    assert printed["torch"] == printed["onnx"], printed
    assert 0 < float(printed["torch"]) < 100
