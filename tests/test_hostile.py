"""Hostile inputs at the command line: nothing executed, nothing overwritten, one clear error line.

Pipeline position: the whole pipeline from the outside (model → CG → features → predictor →
ranking/search), through ``cgpredict.cli.main``. Every case asserts the intended outcome (an
error naming the culprit and exit status 2, or the correct result) and that no user file changed
and no marker file appeared. Checks that happen before any work keep each case under a second;
the caches are in tests/test_hostile_cache.py, kills mid-write in tests/test_hostile_faults.py.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from cgpredict import cli
from cgpredict.cg import CG, CGBuilder
from cgpredict.errors import CGSchemaError, LabelFileError
from hostile_helpers import TINY_SOURCE, flops_scorer, markers, payload, snapshot


@pytest.fixture()
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder (the working directory) holding a model file, a label table and notes."""
    home = tmp_path / "user"
    home.mkdir()
    (home / "net.py").write_text(TINY_SOURCE)
    (home / "labels.csv").write_text("arch,val_accuracy\n4,60\n8,65\n")
    (home / "notes.txt").write_text("my notes\n")
    monkeypatch.chdir(home)
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``cgpredict ARGV``."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *needles: str) -> None:
    """stderr is one ``error:`` line (no traceback) containing every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def tiny_cg(name: str = "tiny") -> CG:
    b = CGBuilder(name)
    x = b.add("input", [], (1, 3, 8, 8))
    c = b.add("conv", [x], (1, 4, 8, 8), weight_shape=(4, 3, 3, 3), kernel=(3, 3), stride=(1, 1), padding=(1, 1),
              dilation=(1, 1), params=108)
    r = b.add("relu", [c], (1, 4, 8, 8))
    p = b.add("global_pool", [r], (1, 4, 1, 1))
    f = b.add("reshape", [p], (1, 4))
    lin = b.add("linear", [f], (1, 10), weight_shape=(10, 4), params=50, bias=True)
    b.add("output", [lin], (1, 10))
    return b.build()


# ---------------------------------------------------------------------------------- 1. injection
def test_docstring_closing_name_never_runs_from_model_py(user: Path) -> None:
    """A single-line name that closes model.py's docstring (allowed by the schema: no control
    characters) ends up as a repr literal; importing the generated file runs nothing."""
    from cgpredict.search.export import export_cg

    name = f'x"""; {payload(user)}; """ \'\'\' {{shapes}} \\'
    cg = CG.from_json(tiny_cg(name).to_json())  # the schema accepts it: one line, printable
    record = export_cg(cg, user / "out", onnx=False)
    spec = importlib.util.spec_from_file_location("generated_model", record["module_py"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NAME == name and module.INPUT_SHAPES == [[1, 3, 8, 8]]
    assert module.build()(__import__("torch").zeros(1, 3, 8, 8)).shape == (1, 10)
    assert not markers(user)


@pytest.mark.parametrize("field, value, culprit", [
    ("name", f'"""\n{{payload}}\n"""', "CG field 'name'"),
    ("node_name", "conv\n__import__('os')", "node 1: field 'name'"),
    ("op", "conv'); import os; ('", "node 1: field 'op'"),
    ("attrs", {"k": {"a": [[[[[[[[1]]]]]]]]}}, "nested deeper"),
    ("attrs", {"bad key!": 1}, "not an identifier-like name"),
    ("extra", "x", "unknown field(s) 'extra'"),
    ("id", 7, "field 'id'"),
    ("macs", True, "field 'macs'"),
    ("inputs", [-1], "field 'inputs'"),
    ("order", None, "not an earlier node"),
])
def test_cg_json_outside_the_schema_is_refused(user: Path, field: str, value: object, culprit: str) -> None:
    doc = tiny_cg().to_dict()
    node = doc["nodes"][1]
    if field == "name":
        doc["name"] = str(value).replace("{payload}", payload(user))
    elif field == "node_name":
        node["name"] = value
    elif field == "extra":
        node["extra"] = value
    elif field == "order":
        node["inputs"], node["in_shapes"] = [3], [doc["nodes"][3]["out_shape"]]
    else:
        node[field] = value
    path = user / "crafted.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CGSchemaError) as info:
        CG.from_json(path)
    assert culprit in str(info.value) and str(path) in str(info.value)
    assert not markers(user)


def test_search_refuses_a_crafted_start_before_any_work(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tiny_cg().to_dict()
    doc["name"] = f'"""\n{payload(user)}\n"""'
    (user / "crafted.json").write_text(json.dumps(doc))
    before = snapshot(user)
    code, _, err = run(capsys, "search", "crafted.json", "-o", "out", "--iterations", 1, "-q")
    assert code == 2
    assert_one_error_line(err, "crafted.json", "'name'", "control character")
    assert snapshot(user) == before and not markers(user)


def test_deeply_nested_cg_json_is_a_schema_error(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (user / "deep.json").write_text("[" * 100000 + "]" * 100000)
    before = snapshot(user)
    code, _, err = run(capsys, "show", "deep.json")
    assert code == 2
    assert_one_error_line(err, "deep.json", "nested too deeply")
    assert snapshot(user) == before


def test_convert_name_option_is_checked(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "convert", "net.py:TinyNet", "--input-shape", "1,3,8,8", "--name", "a\nb", "-o", "n.json")
    assert code == 2
    assert_one_error_line(err, "--name", "control character")
    assert not (user / "n.json").exists()


# ---------------------------------------------------------------------------------- 3. -o never overwrites
@pytest.mark.parametrize("force", [False, True])
def test_convert_never_writes_onto_its_input(user: Path, capsys: pytest.CaptureFixture[str], force: bool) -> None:
    before = snapshot(user)
    code, _, err = run(capsys, "convert", "net.py:TinyNet", "-o", "net.py", *(["--force"] if force else []))
    assert code == 2
    assert_one_error_line(err, "net.py", "also an input")
    assert snapshot(user) == before


def test_convert_replaces_an_existing_output_only_with_force(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(user)
    code, _, err = run(capsys, "convert", "net.py:TinyNet", "--input-shape", "1,3,8,8", "-o", "notes.txt")
    assert code == 2
    assert_one_error_line(err, "notes.txt", "--force")
    assert snapshot(user) == before
    code, out, _ = run(capsys, "convert", "net.py:TinyNet", "--input-shape", "1,3,8,8", "-o", "notes.txt", "--force")
    assert code == 0 and "wrote notes.txt" in out
    assert CG.from_json(user / "notes.txt").params == tiny_params()
    assert not list(user.glob(".*.tmp"))


def tiny_params() -> int:
    return (8 * 3 * 9 + 8) + 2 * 8 + (10 * 8 + 10)


@pytest.mark.parametrize("argv, needle", [
    (["convert", "net.py:TinyNet", "-o", "sub"], "is a folder"),
    (["convert", "net.py:TinyNet", "-o", "link.py", "--force"], "also an input"),
    (["convert", "net.py:TinyNet", "-o", "notes.txt/x.json"], "is a file, not a folder"),
    (["show", "net.py:TinyNet", "-o", "sub"], "is a folder"),
    (["show", "net.py:TinyNet", "-o", "pic.gif"], ".png"),
    (["predict", "net.py:TinyNet", "-o", "sub"], "is a folder"),
    (["predict", "net.py:TinyNet", "-o", "net.py", "--force"], "also an input"),
    (["rank", "--family", "nasbench201", "-o", "sub"], "is a folder"),
    (["rank", "--family", "nasbench201", "--data", "data", "-o", "data/labels.csv", "--force"], "inside the input folder"),
    (["rank", "--family", "nasbench201", "--checkpoint", "ckpt", "-o", "ckpt/rank.csv"], "inside the input folder"),
    (["finetune", "--labels", "labels.csv", "--family", "nasbench201", "-o", "labels.csv"], "is a file"),
    (["finetune", "--labels", "labels.csv", "--family", "nasbench201", "-o", "sub"], "--force"),
    (["finetune", "--labels", "labels.csv", "--family", "nasbench201", "-o", "sub", "--force"], "not a cgpredict checkpoint"),
    (["finetune", "--labels", "labels.csv", "--family", "nasbench201", "-o", "ckpt", "--force"], "not part of a checkpoint"),
    (["finetune", "--labels", "labels.csv", "--family", "nasbench201", "-o", "."], "current folder"),
    (["search", "net.py:TinyNet", "-o", "notes.txt", "--force"], "is a file"),
    (["search", "net.py:TinyNet", "-o", "sub"], "--force"),
    (["search", "net.py:TinyNet", "-o", "sub", "--force"], "did not write (keep.txt)"),
    (["search", "net.py:TinyNet", "-o", "."], "current folder"),
])
def test_outputs_are_checked_before_any_work(user: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                             needle: str) -> None:
    """Every refusal comes before the predictor loads or a model converts (well under a second)."""
    import time

    (user / "sub").mkdir()
    (user / "sub" / "keep.txt").write_text("mine\n")
    (user / "data").mkdir()
    (user / "data" / "labels.csv").write_text("arch,val_accuracy\n")
    (user / "ckpt").mkdir()
    (user / "ckpt" / "config.json").write_text(json.dumps({"format": "cgpredict.predictor"}))
    (user / "ckpt" / "weights.pt").write_bytes(b"")
    (user / "ckpt" / "my-notes.md").write_text("mine\n")
    (user / "link.py").symlink_to(user / "net.py")
    before = snapshot(user)
    start = time.perf_counter()
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert_one_error_line(err, needle)
    assert snapshot(user) == before
    assert time.perf_counter() - start < 3.0


def test_search_force_replaces_only_its_own_folder_and_leaves_no_stale_ranks(user: Path) -> None:
    from cgpredict.search import search_cg, write_results
    from cgpredict.search.export import SEARCH_MANIFEST

    start = tiny_cg("start")

    first = search_cg(start, flops_scorer, iterations=1, topk=4, mutants=4, progress=False)
    write_results(first, start, user / "out", onnx=False, progress=False)
    assert len(list((user / "out").glob("rank*"))) == len(first.top) >= 3
    second = search_cg(start, flops_scorer, iterations=1, topk=1, mutants=2, progress=False)
    rows = write_results(second, start, user / "out", onnx=False, progress=False)
    assert sorted(p.name for p in (user / "out").glob("rank*")) == ["rank01"]
    assert rows[0]["dir"] == str(user / "out" / "rank01")
    manifest = json.loads((user / "out" / SEARCH_MANIFEST).read_text())
    assert "rank01" in manifest["entries"] and "rank02" not in manifest["entries"]
    # a user's file inside an earlier output: the folder is no longer replaced, the file stays
    (user / "out" / "mine.txt").write_text("mine\n")
    before = snapshot(user)
    with pytest.raises(FileExistsError, match="mine.txt"):
        write_results(second, start, user / "out", onnx=False, progress=False)
    assert snapshot(user) == before
    assert not list(user.glob(".*.tmp"))


def test_cli_search_force_replaces_an_earlier_search_only(user: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from cgpredict.commands import search as search_command

    monkeypatch.setattr(search_command, "_scorer", lambda args, executor=None: flops_scorer)
    argv = ["search", "net.py:TinyNet", "--input-shape", "1,3,8,8", "--iterations", 1, "--mutants", 3, "--no-onnx",
            "-q", "-o", "out"]
    assert run(capsys, *argv, "--topk", 3)[0] == 0
    assert len(list((user / "out").glob("rank*"))) >= 2
    code, _, err = run(capsys, *argv, "--topk", 1)
    assert code == 2
    assert_one_error_line(err, "out", "--force")
    assert run(capsys, *argv, "--topk", 1, "--force")[0] == 0
    assert sorted(p.name for p in (user / "out").glob("rank*")) == ["rank01"]
    results = (user / "out" / "results.csv").read_text().splitlines()
    assert len(results) == 2 and ",out/rank01," in results[1]  # the path as given, not the temporary one


# ---------------------------------------------------------------------------------- 6. label files
@pytest.mark.parametrize("text, needles", [
    ("arch,flops,params\n4,1.0,2.0\n8,2.0,3.0\n", ["no label column", "val_accuracy, label, accuracy, y",
                                                     "--label-column"]),
    ("4,60\n8,65\n16,70\n", ["line 1", "no header"]),
    ("arch,label\n4,60\n8,6\x005\n", ["line 3", "is not a number"]),
    ("arch,label\n4,60\n" + "9" * 200000 + ",60\n", ["line 3", "not valid CSV", "field limit"]),
    ("arch,label\n4,60\n8,nan\n", ["line 3", "not a finite number"]),
    ("arch,label,label\n4,60,60\n", ["duplicate column"]),
    ("arch,label\n4,60,1\n", ["line 2", "3 fields"]),
])
def test_label_tables_are_read_by_name_or_refused(user: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                  needles: list[str]) -> None:
    (user / "bad.csv").write_text(text)
    before = snapshot(user)
    code, _, err = run(capsys, "finetune", "--labels", "bad.csv", "--builder", "net.py:TinyNet", "-o", "new.ckpt")
    assert code == 2
    assert_one_error_line(err, "bad.csv", *needles)
    assert snapshot(user) == before and not (user / "new.ckpt").exists()


def test_label_column_option_names_the_column(user: Path) -> None:
    from cgpredict.datasets._table import read_table

    path = user / "t.csv"
    path.write_text("arch,flops,top1\n4,1.0,60\n8,2.0,65\n")
    with pytest.raises(LabelFileError, match="no label column"):
        read_table(path, int)
    table = read_table(path, int, label_column="top1")
    assert table.labels.tolist() == [60.0, 65.0] and table.columns["flops"].tolist() == [1.0, 2.0]
    with pytest.raises(LabelFileError, match="no label column 'acc'"):
        read_table(path, int, label_column="acc")


def test_label_key_nested_too_deeply(user: Path) -> None:
    from cgpredict.datasets._table import read_table

    path = user / "t.csv"
    path.write_text("arch,label\n1,60\n" + "[" * 50000 + "]" * 50000 + ",61\n")
    with pytest.raises(LabelFileError, match="line 3: arch .* nested too deeply"):
        read_table(path, json.loads)


@pytest.mark.parametrize("content, needle", [(b"\xff\xfe\x00binary", "not UTF-8"), (None, "is a folder")])
def test_label_file_that_is_not_csv_text(user: Path, content: bytes | None, needle: str) -> None:
    from cgpredict.datasets._table import read_table

    path = user / "t.csv"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(LabelFileError, match=needle):
        read_table(path, int)


def test_onnx_label_rows_cannot_leave_their_folder(user: Path) -> None:
    from cgpredict.datasets.custom import family_from_onnx_folder

    (user / "models").mkdir()
    (user / "models" / "labels.csv").write_text("file,label\n../notes.txt,1\n")
    with pytest.raises(LabelFileError, match="outside the ONNX folder"):
        family_from_onnx_folder(user / "models", user / "models" / "labels.csv")


# ---------------------------------------------------------------------------------- 8. errors
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "cgpredict" / "checkpoints" / "nb101" / "config.json"


@pytest.mark.parametrize("setup, needle", [
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "config.json").write_text("[" * 100000 + "]" * 100000), "not valid JSON"),  # nested too deeply: named as such
    (lambda d: (d / "config.json").write_text(json.dumps({"format": "cgpredict.predictor"})), "ckpt"),
    (lambda d: None, "not a predictor checkpoint"),
    (lambda d: (d / "config.json").write_text(SHIPPED_CONFIG.read_text()), "ckpt"),  # truncated weights.pt
    (lambda d: (d / "config.json").write_text(json.dumps(
        {k: v for k, v in json.loads(SHIPPED_CONFIG.read_text()).items() if k != "config"})), "ckpt"),  # KeyError
    (lambda d: (d / "config.json").write_text(json.dumps(
        {**json.loads(SHIPPED_CONFIG.read_text()), "config": [1, 2]})), "ckpt"),  # TypeError
])
def test_broken_checkpoints_end_in_one_line(user: Path, capsys: pytest.CaptureFixture[str], setup, needle: str) -> None:
    ckpt = user / "ckpt"
    ckpt.mkdir()
    (ckpt / "weights.pt").write_bytes(b"PK\x03\x04 truncated")
    setup(ckpt)
    before = snapshot(user)
    code, _, err = run(capsys, "predict", "net.py:TinyNet", "--checkpoint", ckpt)
    assert code == 2
    assert_one_error_line(err, needle)
    assert snapshot(user) == before


def test_checkpoint_that_is_a_file(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "predict", "net.py:TinyNet", "--checkpoint", "notes.txt")
    assert code == 2
    assert_one_error_line(err, "notes.txt", "is a file")


@pytest.mark.parametrize("proxy, needle", [
    ('{"bogus": 1}', "unknown field(s) 'bogus'"),
    ('{"iterations": "many"}', "'iterations'"),
    ('{"method": "magic"}', "unknown proxy method"),
    ("[1, 2]", "JSON object"),
    ("{", "not valid JSON"),
])
def test_proxy_option_is_validated_before_the_work(user: Path, capsys: pytest.CaptureFixture[str], proxy: str,
                                                   needle: str) -> None:
    code, _, err = run(capsys, "rank", "--family", "nasbench201", "--n", 4, "-q", "--pretrained", "nb101",
                       "--proxy", proxy)  # --proxy is a GENNAPE option
    assert code == 2
    assert_one_error_line(err, "--proxy", needle)


@pytest.mark.parametrize("argv, needle", [
    (["convert", "sub"], "is a folder, not a model"),
    (["convert", "missing.onnx"], "missing.onnx"),
    (["convert", "garbage.onnx"], "garbage.onnx"),
    (["convert", "net.py:Nope"], "no class 'Nope'"),
    (["convert", "boom.py:Net"], "boom.py"),
    (["convert", "net.py:TinyNet", "--input-shape", "1,x"], "input shape"),
    (["show", "sub"], "is a folder"),
    (["rank", "--family", "nasbench201", "--data", "nonexistent"], "nonexistent"),
    (["rank", "--family", "nasbench201", "--data", "notes.txt"], "is a file"),
    (["rank", "--family", "nasbench201", "--n", "1"], "--n"),
    (["finetune", "--labels", "missing.csv", "--family", "nasbench201", "-o", "x"], "missing.csv"),
    (["finetune", "--labels", "sub", "--family", "nasbench201", "-o", "x"], "is a folder"),
    (["finetune", "--labels", "labels.csv", "--family", "nasbench201", "-o", "x", "--epochs", "0"], "--epochs"),
    (["search", "net.py:TinyNet", "-o", "x", "--topk", "0"], "--topk"),
])
def test_malformed_inputs_end_in_one_line(user: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          needle: str) -> None:
    (user / "sub").mkdir()
    (user / "garbage.onnx").write_bytes(b"\x08\x07 not a protobuf \xff" * 3)
    (user / "boom.py").write_text("raise RuntimeError('boom at import')\n")
    before = snapshot(user)
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert_one_error_line(err, needle)
    assert snapshot(user) == before


def test_unexpected_failures_are_one_line_and_debug_shows_the_traceback(
        user: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from cgpredict.commands import show

    def broken(args: object) -> int:
        raise TypeError("an internal bug")

    real_register = show.register

    def register(subparsers: object) -> object:
        parser = real_register(subparsers)
        parser.set_defaults(func=broken)
        return parser

    monkeypatch.setattr(show, "register", register)
    code, _, err = run(capsys, "show", "x.json")
    assert code == 1
    assert_one_error_line(err, "unexpected TypeError: an internal bug", "--debug")
    with pytest.raises(TypeError, match="an internal bug"):
        cli.main(["show", "x.json", "--debug"])


# ---------------------------------------------------------------------------------- 11. smaller
def test_ood_text_is_unknown_when_the_distance_is_nan() -> None:
    from cgpredict.ranking import ood_text

    nan = float("nan")
    assert ood_text({"ood": False, "centroid_distance": nan}) == "n/a"
    assert ood_text({"ood": False, "max_membership": nan}) == "n/a"
    assert ood_text({"ood": True, "centroid_distance": 3.0}) == "yes"
    assert ood_text({"ood": False, "centroid_distance": 0.5}) == "no"
    assert math.isnan(nan)


@pytest.mark.slow
def test_progress_bars_leave_no_escape_junk_in_a_log(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cgpredict.cli", "rank", "--family", "two_path", "--n", "4"],
                          capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "CGPREDICT_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr, done.stderr[:300]
    assert "ranking 4 sampled, unlabelled nets" in done.stdout


def test_progress_bars_are_off_off_terminal_and_on_a_loaded_predictor(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from cgpredict.predictor import Predictor
    from cgpredict.quiet import progress_wanted, set_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_wanted(True, Tty()) and not progress_wanted(True, io.StringIO())
    assert not progress_wanted(False, Tty())
    monkeypatch.setenv("CGPREDICT_NO_PROGRESS", "1")
    assert not progress_wanted(True, Tty())
    predictor = Predictor(progress=True)
    set_progress(predictor, False)
    assert predictor.progress is False
    set_progress(predictor, True)
    assert predictor.progress is True


def test_progress_bar_draws_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from cgpredict.quiet import progress_bar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def drawn(stream: io.StringIO, progress: bool = True) -> str:
        for _ in progress_bar(range(3), desc="work", file=stream, progress=progress, mininterval=0):
            pass
        return stream.getvalue()

    assert "work" in drawn(Tty()) and "3/3" in drawn(Tty())
    assert drawn(io.StringIO()) == ""  # a log file or pipe
    assert drawn(Tty(), progress=False) == ""
    monkeypatch.setenv("CGPREDICT_NO_PROGRESS", "1")
    assert drawn(Tty()) == ""


def test_proxy_command_leaves_no_bar_junk_in_a_log(tmp_path: Path) -> None:
    """``cgpredict proxy`` with stderr to a file: its bars stay off (they used to fill the log)."""
    import subprocess
    import sys

    out = tmp_path / "scores.csv"
    done = subprocess.run([sys.executable, "-m", "cgpredict.cli", "proxy", "--family", "nasbench201", "--n", "2",
                           "--method", "synflow", "-o", str(out)], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "CGPREDICT_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "proxy" not in done.stderr, done.stderr[:300]
    assert len(out.read_text().strip().splitlines()) == 3


def test_a_cg_asking_for_huge_tensors_is_refused_before_allocation(user: Path) -> None:
    """A schema-valid CG file whose weights or activations would need terabytes is refused by the
    rebuild (search, proxies) with the node named, before anything is allocated."""
    import resource

    from cgpredict.cg import CGBuilder
    from cgpredict.rebuild import RebuildError, cg_to_module

    b = CGBuilder("huge")
    x = b.add("input", out_shape=(1, 1_000_000))
    y = b.add("linear", [x], out_shape=(1, 1_000_000), weight_shape=(1_000_000, 1_000_000))
    b.add("output", [y], out_shape=(1, 1_000_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RebuildError, match="weight elements"):
        cg_to_module(b.build())
    b = CGBuilder("wide")
    x = b.add("input", out_shape=(1, 3, 32, 32))
    y = b.add("upsample", [x], out_shape=(1, 3, 2**16, 2**16))
    b.add("output", [y], out_shape=(1, 3, 2**16, 2**16))
    with pytest.raises(RebuildError, match=r"node 1 \(upsample"):
        cg_to_module(b.build())
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing was allocated
