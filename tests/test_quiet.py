"""The CLI hides torch / torch-geometric's known internal warnings and nothing else.

Pipeline position: entry points (command line), around the whole pipeline.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from cgpredict.quiet import KNOWN_WARNINGS, hide_known_warnings


def test_only_the_known_warnings_are_hidden() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hide_known_warnings()
        warnings.warn("`torch.jit.script` is deprecated. Please switch to `torch.compile`.", FutureWarning)
        warnings.warn("Sparse CSR tensor support is in beta state.", UserWarning)
        warnings.warn("Sparse invariant checks are implicitly disabled.", UserWarning)
        warnings.warn("`torch.jit.script` is deprecated", UserWarning)  # same text, other category: shown
        warnings.warn("predicted accuracies are on NB-101's scale", UserWarning)
    assert [str(w.message) for w in caught] == ["`torch.jit.script` is deprecated",
                                                "predicted accuracies are on NB-101's scale"]
    assert len(KNOWN_WARNINGS) == 3


@pytest.mark.parametrize("predictor", [[], ["--pretrained", "nb101"]], ids=["generalist", "nb101"])
def test_cli_predict_prints_no_third_party_warnings(predictor: list[str]) -> None:
    """A fresh interpreter with every warning enabled (``-W default``): the torch-geometric import
    and the sparse inference path (GENNAPE) and the proxy bank (the default generalist) warn, and
    the CLI shows none of it."""
    done = subprocess.run([sys.executable, "-W", "default", "-m", "cgpredict.cli", "predict", "torchvision:resnet18",
                           *predictor], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "torchvision:resnet18" in done.stdout
    assert "Warning" not in done.stderr, done.stderr
