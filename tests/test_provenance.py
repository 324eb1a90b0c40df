"""The code provenance line written into benchmark reports, on real git checkouts.

Pipeline position: beside the pipeline (benchmark reports).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cgpredict.provenance import REPO_ROOT, code_fingerprint, code_line, git_commit, package_roots

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_commit_clean_changed_and_outside_a_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.txt", "pkg/mod.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "--short=10", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("not part of the commit\n")
    assert git_commit(tmp_path) == head  # untracked files do not mark the code as changed
    (tmp_path / "a.txt").write_text("two\n")
    assert git_commit(tmp_path) == head  # an edited report or README is not a code change
    (tmp_path / "pkg" / "mod.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "+changes"


def test_code_line_names_this_checkout() -> None:
    line = code_line()
    commit = git_commit(REPO_ROOT)
    assert line.startswith("Code: cgpredict ")
    assert (f"git `{commit}`" in line) if commit else ("not a git checkout" in line)


def test_code_fingerprint_follows_the_code_only(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    first = code_fingerprint([pkg])
    assert first == code_fingerprint([pkg, pkg / "sub"])  # a nested root adds nothing
    (pkg / "NOTES.md").write_text("a report\n")
    assert code_fingerprint([pkg]) == first
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    changed = code_fingerprint([pkg])
    assert changed != first
    (pkg / "sub" / "b.py").rename(pkg / "b.py")  # same bytes, another module
    assert code_fingerprint([pkg]) not in (first, changed)


def test_installed_fingerprint_covers_the_mapped_packages() -> None:
    names = {p.name for p in package_roots()}
    assert {"converters", "datasets", "models"} <= names
    assert code_fingerprint() == code_fingerprint(package_roots())
