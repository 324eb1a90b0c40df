"""Property tests: random small DAG networks built from the op vocabulary convert exactly.

Each example draws a network of convolutions (plain, grouped, depthwise), batch norm,
activations, add/mul, concat, split/chunk, pools, global pool, pad, upsample, reshape, mean and a
linear head over a random DAG, converts it with ``from_torch`` and checks the CG: acyclic and
valid, shapes consistent along every edge, the op multiset equal to what the network used, the
parameter count exact, and an exact JSON round trip.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from cgpredict.cg import CG
from cgpredict.converters import from_torch
from cgpredict.ops import conv_op_type

ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU,
        "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


@dataclass
class Value:
    shape: tuple[int, ...]  # without the batch dim
    from_reshape: bool = False


@dataclass
class Step:
    kind: str
    inputs: tuple[int, ...]
    cfg: dict[str, Any] = field(default_factory=dict)


class RandomNet(nn.Module):
    """Interprets a list of :class:`Step` over a growing list of tensors; returns the leaves."""

    def __init__(self, steps: list[Step], leaves: list[int]) -> None:
        super().__init__()
        self.steps, self.leaves = steps, leaves
        self.layers = nn.ModuleDict()
        for i, s in enumerate(steps):
            c = s.cfg
            if s.kind == "conv":
                self.layers[str(i)] = nn.Conv2d(c["cin"], c["cout"], c["k"], stride=c["stride"],
                                                padding=c["k"] // 2, groups=c["groups"], bias=c["bias"])
            elif s.kind == "bn":
                self.layers[str(i)] = nn.BatchNorm2d(c["cin"])
            elif s.kind == "act":
                self.layers[str(i)] = ACTS[c["act"]]()
            elif s.kind == "head":
                self.layers[str(i)] = nn.Linear(c["cin"], c["cout"])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        vals = [x]
        for i, s in enumerate(self.steps):
            a = vals[s.inputs[0]]
            c = s.cfg
            if s.kind in ("conv", "bn", "act"):
                y = self.layers[str(i)](a)
            elif s.kind == "add":
                y = a + vals[s.inputs[1]]
            elif s.kind == "mul":
                y = a * vals[s.inputs[1]]
            elif s.kind == "concat":
                y = torch.cat([a, vals[s.inputs[1]]], dim=1)
            elif s.kind == "split":
                parts = torch.chunk(a, 2, dim=1) if c["chunk"] else torch.split(a, a.shape[1] // 2, dim=1)
                y = parts[c["index"]]
            elif s.kind == "pool":
                fn = F.max_pool2d if c["max"] else F.avg_pool2d
                y = fn(a, 3, 1, 1) if c["same"] else fn(a, 2, 2)
            elif s.kind == "gpool":
                y = F.adaptive_avg_pool2d(a, 1)
            elif s.kind == "pad":
                y = F.pad(a, (1, 1, 1, 1))
            elif s.kind == "upsample":
                y = F.interpolate(a, scale_factor=2.0, mode="nearest")
            elif s.kind == "reshape":
                n, ch, h, w = a.shape
                y = a.reshape(n, ch * 2, h // 2, w)
            elif s.kind == "mean":
                y = a.mean(dim=1, keepdim=True)
            elif s.kind == "head":
                y = self.layers[str(i)](torch.flatten(F.adaptive_avg_pool2d(a, 1), 1))
            else:  # pragma: no cover
                raise AssertionError(s.kind)
            vals.append(y)
        return tuple(vals[j] for j in self.leaves)


EXPECTED = {"bn": ["batch_norm"], "add": ["add"], "mul": ["mul"], "concat": ["concat"],
            "split": ["split"], "gpool": ["global_pool"], "pad": ["pad"], "upsample": ["upsample"],
            "reshape": ["reshape"], "mean": ["mean"], "head": ["global_pool", "reshape", "linear"]}


@st.composite
def random_nets(draw: st.DrawFn) -> tuple[RandomNet, tuple[int, ...], Counter, int]:
    """A random network, its input shape, the op multiset and the conv+linear MACs it must give."""
    batch = draw(st.sampled_from([1, 2]))
    size = draw(st.sampled_from([4, 6, 8]))
    vals = [Value((4, size, size))]
    steps: list[Step] = []
    expected: Counter = Counter({"input": 1, "output": 1})
    macs = 0
    for _ in range(draw(st.integers(2, 12))):
        image = [i for i, v in enumerate(vals) if len(v.shape) == 3]
        kinds = ["conv", "bn", "act", "add", "mul", "concat", "split", "pool", "gpool", "pad",
                 "upsample", "reshape", "mean", "head"]
        kind = draw(st.sampled_from(kinds))
        i = draw(st.sampled_from(image))
        ch, h, w = vals[i].shape
        cfg: dict[str, Any] = {}
        inputs: tuple[int, ...] = (i,)
        out: tuple[int, ...] = (ch, h, w)
        ops: list[str]
        if kind == "conv":
            cout = draw(st.sampled_from([ch, 2 * ch, 4]))
            groups = draw(st.sampled_from([g for g in (1, 2, ch) if ch % g == 0 and cout % g == 0]))
            k = draw(st.sampled_from([1, 3]))
            stride = draw(st.sampled_from([1, 2])) if min(h, w) >= 2 else 1
            cfg = {"cin": ch, "cout": cout, "k": k, "stride": stride, "groups": groups,
                   "bias": draw(st.booleans())}
            pad = k // 2
            out = (cout, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
            ops = [conv_op_type(ch, groups)]
            macs += out[0] * out[1] * out[2] * (ch // groups) * k * k
        elif kind == "bn":
            cfg, ops = {"cin": ch}, ["batch_norm"]
        elif kind == "act":
            cfg = {"act": draw(st.sampled_from(sorted(ACTS)))}
            ops = [cfg["act"]]
        elif kind in ("add", "mul", "concat"):
            same = [j for j in image if (vals[j].shape == vals[i].shape if kind != "concat"
                                         else vals[j].shape[1:] == (h, w))]
            j = draw(st.sampled_from(same))
            inputs = (i, j)
            if kind == "concat":
                out = (ch + vals[j].shape[0], h, w)
            ops = EXPECTED[kind]
        elif kind == "split":
            if ch % 2:
                continue
            cfg = {"chunk": draw(st.booleans()), "index": draw(st.integers(0, 1))}
            out, ops = (ch // 2, h, w), ["split"]
        elif kind == "pool":
            same = draw(st.booleans()) or h < 2 or w < 2 or h % 2 or w % 2
            cfg = {"max": draw(st.booleans()), "same": same}
            out = (ch, h, w) if same else (ch, h // 2, w // 2)
            ops = ["max_pool" if cfg["max"] else "avg_pool"]
        elif kind == "gpool":
            out, ops = (ch, 1, 1), ["global_pool"]
        elif kind == "pad":
            out, ops = (ch, h + 2, w + 2), ["pad"]
        elif kind == "upsample":
            if h > 8:
                continue
            out, ops = (ch, 2 * h, 2 * w), ["upsample"]
        elif kind == "reshape":
            if vals[i].from_reshape or h % 2:
                continue
            out, ops = (2 * ch, h // 2, w), ["reshape"]
        elif kind == "mean":
            out, ops = (1, h, w), ["mean"]
        else:  # head: global pool + flatten + linear
            cfg = {"cin": ch, "cout": draw(st.sampled_from([3, 5]))}
            out, ops = (cfg["cout"],), ["global_pool", "reshape", "linear"]
            macs += ch * cfg["cout"]
        steps.append(Step(kind, inputs, cfg))
        vals.append(Value(out, from_reshape=kind == "reshape"))
        expected.update(ops)
    used = {j for s in steps for j in s.inputs}
    leaves = [j for j in range(len(vals)) if j not in used]
    return RandomNet(steps, leaves), (batch, 4, size, size), expected, macs


def _check(cg: CG, net: RandomNet, expected: Counter) -> None:
    cg.validate()
    for node in cg.nodes:
        assert all(0 <= src < node.id for src in node.inputs)
        assert node.in_shapes == [cg.nodes[src].out_shape for src in node.inputs]
    assert Counter(n.op for n in cg.nodes) == expected
    assert cg.params == sum(p.numel() for p in net.parameters())
    assert CG.from_json(cg.to_json()) == cg


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(random_nets())
def test_random_dag_converts_exactly(case: tuple[RandomNet, tuple[int, ...], Counter, int]) -> None:
    net, shape, expected, macs = case
    cg = from_torch(net, input_shape=shape)
    assert cg.meta["method"] == "meta"
    _check(cg, net, expected)
    assert cg.input_nodes[0].out_shape == shape
    out_node = cg.output_node
    assert len(out_node.inputs) == len(net.leaves)
    assert cg.macs("conv_linear") == macs  # per sample, whatever the batch size


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(random_nets())
def test_random_dag_export_path_gives_the_same_cg(case: tuple[RandomNet, tuple[int, ...], Counter, int]) -> None:
    net, shape, expected, macs = case
    fast = from_torch(net, input_shape=shape)
    exported = from_torch(net, input_shape=shape, method="export")
    _check(exported, net, expected)
    assert exported.hash() == fast.hash() and exported.macs("conv_linear") == macs
