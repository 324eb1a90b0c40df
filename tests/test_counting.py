"""Counting modes (cgpredict.counting): built-in and family modes, independent of what was imported."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cgpredict.converters import from_torch
from cgpredict.counting import count_macs, counting_modes, register_counting_mode


def _tiny_cg():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10))
    return from_torch(net, input_shape=(1, 3, 8, 8))


def test_family_modes_resolve_without_importing_the_family_first() -> None:
    """A fresh interpreter that never imported nasbench201 still counts with its mode, and gets the
    same total as after importing the module."""
    code = ("import sys, torch; from cgpredict.converters import from_torch; "
            "net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()); "
            "cg = from_torch(net, input_shape=(1, 3, 8, 8)); "
            "before = 'cgpredict.datasets.nasbench201' in sys.modules; "
            "print(before, cg.macs('nasbench201'), cg.macs('transbench101_micro'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    from cgpredict.datasets import nasbench201, transbench101_micro

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    cg = from_torch(net, input_shape=(1, 3, 8, 8))
    assert [int(v) for v in out[1:]] == [nasbench201.nasbench201_macs(cg), transbench101_micro.transbench101_micro_macs(cg)]


def test_modes_list_built_in_and_family_modes_and_unknown_names_fail_clearly() -> None:
    modes = counting_modes()
    assert {"torchvision", "conv_linear", "all", "nasbench101", "nasbench201", "nasbench301",
            "transbench101_micro"} <= set(modes)
    cg = _tiny_cg()
    assert count_macs(cg, "conv_linear") == 8 * 8 * 4 * 27 + 4 * 10
    assert count_macs(cg, "all") > count_macs(cg, "torchvision") == count_macs(cg, "conv_linear")
    with pytest.raises(ValueError, match=r"unknown counting mode 'nope'; known: .*nasbench201"):
        count_macs(cg, "nope")


def test_registered_modes_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import cgpredict.counting as counting

    monkeypatch.setattr(counting, "_MODES", dict(counting._MODES))
    register_counting_mode("convs", {"conv"})
    register_counting_mode("twice", lambda cg: 2 * count_macs(cg, "convs"))
    cg = _tiny_cg()
    assert count_macs(cg, "twice") == 2 * count_macs(cg, "convs") == 2 * 8 * 8 * 4 * 27
