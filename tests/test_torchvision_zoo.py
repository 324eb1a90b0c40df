"""Every torchvision classification model converts with from_torch (model → CG).

A representative subset runs by default; the full list of 80 models is marked ``slow``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

from cgpredict.converters import from_torch

ALL_MODELS = torchvision.models.list_models(module=torchvision.models)
DEFAULT = {
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "googlenet", "inception_v3",
    "maxvit_t", "mnasnet0_5", "mobilenet_v3_small", "regnet_y_400mf", "resnet18", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "squeezenet1_1", "swin_t", "vgg11", "vit_b_32",
}
# ops the lowering table does not know and records as `unknown`, per model family
EXPECTED_UNKNOWN = {"swin_t": {"roll"}, "swin_s": {"roll"}, "swin_b": {"roll"},
                    "swin_v2_t": {"roll", "linalg_vector_norm", "clamp_min"},
                    "swin_v2_s": {"roll", "linalg_vector_norm", "clamp_min"},
                    "swin_v2_b": {"roll", "linalg_vector_norm", "clamp_min"}}


def build(name: str) -> tuple[torch.nn.Module, str]:
    """The model with random weights: on the meta device where it can be built there, else CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init-weights FutureWarnings
        try:
            with torch.device("meta"):
                return torchvision.models.get_model(name), "meta"
        except Exception:  # noqa: BLE001 - e.g. RegNet computes widths with .tolist()
            torch.manual_seed(0)
            return torchvision.models.get_model(name), "cpu"


def test_the_zoo_has_80_models() -> None:
    assert len(ALL_MODELS) == 80 and DEFAULT <= set(ALL_MODELS)


@pytest.mark.parametrize(
    "name", [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in ALL_MODELS]
)
def test_model_converts(name: str) -> None:
    model, device = build(name)
    if name.startswith("regnet"):
        assert device == "cpu"  # these cannot be built on meta; the CPU build must still convert
    shape = (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the fast path must succeed: no fallback
        cg = from_torch(model, input_shape=shape)
    cg.validate()
    assert cg.meta["method"] == "meta"
    total = sum(p.numel() for p in model.parameters())
    assert cg.meta["model_params"] == total
    assert cg.params + cg.meta["unused_params"] == total
    if name in ("googlenet", "inception_v3"):  # auxiliary heads are not run in eval mode
        assert cg.meta["unused_params"] > 0
    else:
        assert cg.params == total
    assert cg.flops > 0 and cg.macs("conv_linear") <= cg.flops
    assert cg.input_nodes[0].out_shape == shape
    assert cg.nodes[cg.output_node.inputs[0]].out_shape == (1, 1000)
    unknown = {n.source_op for n in cg.nodes if n.op == "unknown"}
    assert unknown == EXPECTED_UNKNOWN.get(name, set())
    for node in cg.nodes:
        for src, shape_in in zip(node.inputs, node.in_shapes):
            assert cg.nodes[src].out_shape == shape_in
    # MACs are per sample: a batch of 2 gives the same totals (seq-first attention included)
    cg2 = from_torch(model, input_shape=(2,) + shape[1:])
    assert (cg2.flops, cg2.macs("all"), cg2.params) == (cg.flops, cg.macs("all"), cg.params)
