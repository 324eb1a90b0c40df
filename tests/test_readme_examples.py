"""README.md's Python examples run as written, in order, in one namespace (as a reader pastes them).

Later examples use names defined by earlier ones (``cg``, ``cgs``, ``acc``, ``from_torch``), so the
blocks are executed top to bottom in a temporary working folder. Printed values that README states
exactly (``print(x)  # value``, where the comment is a literal rather than a description) are
compared with what the code prints.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of every fenced ```python block of ``text``."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if current is None and line.strip() == "```python":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


#: README comments after a ``print`` that state the exact output (checked); other comments describe it.
EXACT_OUTPUT = {
    "print(cg.summary())": "ResNet: 177 nodes, 192 edges, 4.089 GMACs, 25.557 M params",
    'print(cg.meta["method"])': "meta",
    "print(round(vit_cg.flops / 1e9, 2), round(vit_cg.macs(\"conv_linear\") / 1e9, 2))": "17.56 16.85",
    "print(cg_onnx.op_histogram() == cg_torch.op_histogram(), cg_onnx.flops == cg_torch.flops)": "True True",
    "print(cg.params, cg.macs(nb201.FLOPS_MODE))": "615386 88307392",
    "print(round(cg.flops / 1e6, 1), cg.params)": "322.3 6301240",
    "print(type(load_predictor()).__name__)": "GeneralistPredictor",
}


def _normalised(source: str) -> str:
    """``source`` (one statement) as :func:`ast.unparse` writes it, so spacing does not matter."""
    return ast.unparse(ast.parse(source).body[0])


#: :data:`EXACT_OUTPUT` keyed by the normalised statement.
EXPECTED_BY_STATEMENT = {_normalised(line): (line, expected) for line, expected in EXACT_OUTPUT.items()}


def _statements(code: str) -> list[tuple[str, str]]:
    """Each top-level statement of ``code`` with its source text."""
    tree = ast.parse(code)
    return [(ast.get_source_segment(code, node) or "", ast.unparse(node)) for node in tree.body]


def test_readme_blocks_are_found_and_checked_lines_exist() -> None:
    text = README.read_text()
    blocks = python_blocks(text)
    assert len(blocks) >= 8
    for line, expected in EXACT_OUTPUT.items():
        pattern = re.escape(line) + r"\s*#\s*" + re.escape(expected)
        assert re.search(pattern, text), f"README no longer states `{line}  # {expected}`"


@pytest.mark.slow
def test_readme_examples_run_in_order(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_DATA", str(shared_data))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for start, code in python_blocks(README.read_text()):
        for source, normalised in _statements(code):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(compile(source, f"README.md:{start}", "exec"), namespace)  # noqa: S102 - README's own code
                except Exception as exc:  # pragma: no cover - the failure message is the point
                    raise AssertionError(f"README.md block at line {start} failed at `{source}`: {exc!r}") from exc
            if normalised in EXPECTED_BY_STATEMENT:
                line, expected = EXPECTED_BY_STATEMENT[normalised]
                assert out.getvalue().strip() == expected, f"README.md:{start} `{line}` printed {out.getvalue()!r}"
    assert os.path.isdir(tmp_path / "search_out") and os.path.exists(tmp_path / "toy_predictor")
