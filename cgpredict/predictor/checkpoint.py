"""Checkpoint folders of predictors and bags: format, versions, integrity, sane sizes.

Pipeline position: model → CG → features → predictor → **checkpoint (save/load)** → ranking/search.

A predictor checkpoint is a folder with ``config.json`` (format, versions, constructor options,
ensemble weights, scalers, PCA and FCM state as plain arrays), ``weights.pt`` (one
``state_dict``, loaded with ``torch.load(weights_only=True)``: no pickle runs) and
``manifest.json`` (SHA-256 of every other file). A bag's folder holds its ``config.json``, a
``manifest.json`` over everything below it, and one predictor checkpoint per ``bag<k>/``.

* Writing goes through :func:`cgpredict.fileio.atomic_directory`: the files are written into a
  temporary folder beside the target and swapped in, so a killed writer leaves the previous
  checkpoint intact (plus a ``.NAME.*.tmp`` folder that the next save of that folder clears,
  :func:`cgpredict.fileio.remove_orphans`).
* Loading refuses another format, feature version or cgpredict major.minor version, a file that
  does not match its hash in the manifest (edited, truncated or half-written), and options
  outside :data:`BOUNDS` or a model larger than :data:`MAX_PARAMETERS` — before any module is
  built, so a tampered ``config.json`` cannot make ``load`` allocate gigabytes.
* Format version 1 (the shipped ``nb101`` checkpoint until it was retrained on canonical CGs) has no manifest and is still read; every
  checkpoint written now is version 2. :func:`write_manifest` turns a version-1 folder into a
  version-2 one (``python -m cgpredict.predictor.checkpoint FOLDER``).
* ``config.json`` records the ``canonical`` option (whether the members read canonical CGs); a
  config without it was saved before the option existed, trained on CGs as converted, and loads
  with ``canonical=False`` so its predictions do not change.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cgpredict import __version__
from cgpredict.errors import CGError
from cgpredict.features import FEATURE_VERSION
from cgpredict.fileio import atomic_directory, atomic_write_json, remove_orphans

if TYPE_CHECKING:
    from cgpredict.predictor.core import Predictor

P = TypeVar("P", bound="Predictor")

CHECKPOINT_FORMAT = "cgpredict.predictor"
BAG_CHECKPOINT_FORMAT = "cgpredict.predictor_bag"
#: Written by this cgpredict (with ``manifest.json``).
CHECKPOINT_VERSION = 2
#: Read by this cgpredict (1: no manifest, e.g. the shipped checkpoint before canonical CGs).
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
MANIFEST = "manifest.json"
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"

#: Allowed ranges of the size-determining options of a checkpoint's config (inclusive).
BOUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "encoder": {"branch_dim": (1, 1024), "gnn_layers": (1, 32), "heads": (1, 64)},
    "regressor": {"hidden": (1, 4096), "hidden_layers": (0, 32), "pca_dim": (1, 4096)},
    "pairwise": {"hidden": (1, 4096), "hidden_layers": (0, 32), "pca_dim": (1, 4096)},
    "kgnn": {"hidden": (1, 4096), "layers": (1, 64)},
    "": {"n_clusters": (0, 1000), "bags": (2, 256)},
}
#: Largest model (trainable parameters, all members) a checkpoint may ask for (~400 MB of float32;
#: the shipped one has under 1 M).
MAX_PARAMETERS = 100_000_000


class CheckpointError(CGError, ValueError):
    """A saved predictor cannot be loaded: missing files, another format or incompatible versions."""


def _minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def read_checkpoint_config(path: Path, needs: str = "config.json") -> dict[str, Any]:
    """The parsed ``path/config.json`` of a checkpoint folder (``needs`` names the files a
    checkpoint must have, for the error); :class:`CheckpointError` if it is missing or not JSON."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{path} is not a predictor checkpoint (needs {needs})")
    try:
        doc = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CheckpointError(f"{cfg_path} is not a checkpoint configuration (a JSON object)")
    return doc


def check_saved_version(path: Path, doc: dict[str, Any]) -> None:
    """Refuse a checkpoint saved by a cgpredict of another major.minor version."""
    saved = str(doc.get("cgpredict_version"))
    if _minor(saved) != _minor(__version__):
        raise CheckpointError(f"{path} was saved by cgpredict {saved}, incompatible with this cgpredict "
                              f"{__version__} (major.minor must match); retrain or install cgpredict {saved}")


def check_format(path: Path, doc: dict[str, Any], fmt: str) -> None:
    """Refuse another format or format version (``fmt``: the expected format)."""
    if doc.get("format") != fmt or doc.get("format_version") not in READABLE_VERSIONS:
        readable = " or ".join(f"v{v}" for v in READABLE_VERSIONS)
        raise CheckpointError(f"{Path(path) / 'config.json'}: checkpoint format {doc.get('format')!r} "
                              f"v{doc.get('format_version')} is not {fmt!r} {readable}")


# ---------------------------------------------------------------------------------------- manifest
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str | Path) -> Path:
    """Write ``folder/manifest.json``: the SHA-256 of every other file below ``folder``."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)
    doc = {"format": "cgpredict.manifest", "files": {p.relative_to(folder).as_posix(): _sha256(p) for p in files}}
    return atomic_write_json(folder / MANIFEST, doc, indent=1)


def verify_manifest(folder: Path, doc: dict[str, Any]) -> None:
    """Check every file against ``folder/manifest.json`` (required from format version 2)."""
    manifest = folder / MANIFEST
    if not manifest.is_file() and doc.get("format_version") != CHECKPOINT_VERSION:
        return  # version 1 has none; another version is refused by check_format
    if not manifest.is_file():
        raise CheckpointError(f"{folder} has no {MANIFEST}: the checkpoint is incomplete (a save was "
                              "interrupted?) or was copied without it")
    try:
        files = json.loads(manifest.read_text())["files"]
        entries = {str(k): str(v) for k, v in files.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{manifest} is not a checkpoint manifest: {exc}") from exc
    for name, expected in entries.items():
        file = folder / name
        if ".." in Path(name).parts or not file.is_file():
            raise CheckpointError(f"{file} is listed in {manifest} but missing")
        if _sha256(file) != expected:
            raise CheckpointError(f"{file} does not match its hash in {manifest}: it was changed or truncated "
                                  "after the checkpoint was saved")
    if "config.json" not in entries:
        raise CheckpointError(f"{manifest} does not cover config.json")


# ---------------------------------------------------------------------------------------- bounds
def _int_field(cfg_path: Path, where: str, key: str, value: Any, lo: int, hi: int) -> int:
    name = f"{where}.{key}" if where else key
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CheckpointError(f"{cfg_path}: config field {name} = {value!r} is outside the sane range "
                              f"[{lo}, {hi}]; the file was edited or is not a cgpredict checkpoint")
    return value


def check_bounds(cfg_path: Path, config: dict[str, Any]) -> None:
    """Refuse options outside :data:`BOUNDS` and a model above :data:`MAX_PARAMETERS`."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: 'config' is not a JSON object")
    for where, fields in BOUNDS.items():
        section = config if not where else config.get(where) or {}
        if not isinstance(section, dict):
            raise CheckpointError(f"{cfg_path}: config field {where} is not a JSON object")
        for key, (lo, hi) in fields.items():
            if key in section and section[key] is not None:
                _int_field(cfg_path, where, key, section[key], lo, hi)
    estimate = estimated_parameters(config)
    if estimate > MAX_PARAMETERS:
        raise CheckpointError(f"{cfg_path}: the configured model would have about {estimate:.3g} parameters "
                              f"(limit {MAX_PARAMETERS:.3g}); the file was edited or is not a cgpredict checkpoint")


def estimated_parameters(config: dict[str, Any]) -> int:
    """An upper estimate of the trainable parameters the config asks for (bounded fields only)."""
    enc, reg = config.get("encoder") or {}, config.get("regressor") or {}
    pair, kgnn = config.get("pairwise") or {}, config.get("kgnn") or {}
    b = int(enc.get("branch_dim", 64))
    total = 16 * b * b * (int(enc.get("gnn_layers", 4)) + 4) + 4096 * b
    dim = 2 * b + 64  # embedding + a proxy graph vector
    heads = max(1, int(config.get("n_clusters", 10)))

    def mlp(hidden: int, layers: int, in_dim: int) -> int:
        return heads * (in_dim * hidden + max(layers, 0) * hidden * (hidden + 1) + hidden + 1)

    total += 2 * mlp(int(reg.get("hidden", 256)), int(reg.get("hidden_layers", 4)), dim + 1)
    total += 2 * mlp(int(pair.get("hidden", 128)), int(pair.get("hidden_layers", 2)), 2 * dim + 2)
    h = int(kgnn.get("hidden", 32))
    total += (int(kgnn.get("layers", 6)) + 4) * 3 * h * (h + 64)
    return int(total)


# ---------------------------------------------------------------------------------------- read/write
def open_checkpoint(path: str | Path, fmt: str = CHECKPOINT_FORMAT) -> dict[str, Any]:
    """The verified ``config.json`` document of a predictor (or, with ``fmt``, bag) checkpoint:
    files present, format and versions readable, manifest matching, options within bounds."""
    path = Path(path)
    is_predictor = fmt == CHECKPOINT_FORMAT
    doc = read_checkpoint_config(path, needs="config.json and weights.pt" if is_predictor else "config.json")
    if is_predictor and doc.get("format") == BAG_CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} holds a bag of predictors: load it with cgpredict.PredictorBag.load "
                              "or cgpredict.load_predictor")
    if not is_predictor and doc.get("format") != BAG_CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a bag of predictors (format {doc.get('format')!r}); "
                              "load it with cgpredict.Predictor.load or cgpredict.load_predictor")
    if is_predictor and not (path / "weights.pt").is_file():
        raise CheckpointError(f"{path} is not a predictor checkpoint (needs config.json and weights.pt)")
    verify_manifest(path, doc)
    check_format(path, doc, fmt)
    if is_predictor and doc.get("feature_version") != FEATURE_VERSION:
        raise CheckpointError(f"{path} was trained on CG features v{doc.get('feature_version')} but this "
                              f"cgpredict computes v{FEATURE_VERSION}; retrain or use a matching cgpredict")
    check_saved_version(path, doc)
    for key in ("config", "weights"):
        if not isinstance(doc.get(key), dict):
            raise CheckpointError(f"{path / 'config.json'}: field {key!r} is missing or not a JSON object")
    check_bounds(path / "config.json", doc["config"])
    return doc


def header(fmt: str) -> dict[str, Any]:
    """The format and version fields every checkpoint's ``config.json`` starts with."""
    doc = {"format": fmt, "format_version": CHECKPOINT_VERSION, "cgpredict_version": __version__}
    if fmt == CHECKPOINT_FORMAT:
        doc["feature_version"] = FEATURE_VERSION
    return doc


def save_folder(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(folder)`` into a temporary folder, add the manifest and swap it in at ``path``.

    Refuses to replace an existing folder that is not a cgpredict checkpoint (it would delete
    the user's files)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{path} is a file; a checkpoint is a folder")
        if any(path.iterdir()) and not (path / "config.json").is_file():
            raise CheckpointError(f"{path} is a folder that is not a cgpredict checkpoint; refusing to replace it "
                                  "(choose a new folder)")
    remove_orphans(path.parent, path.name)  # what a killed earlier save of this folder left
    with atomic_directory(path) as tmp:
        write(tmp)
        write_manifest(tmp)
    return path


def write_files(folder: Path, doc: dict[str, Any], state_dict: dict[str, Any] | None) -> None:
    """Write ``config.json`` (and ``weights.pt`` when ``state_dict`` is given) into ``folder``."""
    import torch

    atomic_write_json(folder / "config.json", doc, indent=1)
    if state_dict is not None:
        torch.save(state_dict, folder / "weights.pt")


def load_weights(path: Path) -> dict[str, Any]:
    """``path/weights.pt`` with ``torch.load(weights_only=True)`` (no pickle code runs)."""
    import torch

    w_path = path / "weights.pt"
    try:
        return torch.load(w_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or hostile file
        raise CheckpointError(f"{w_path} is not a readable weights file: {exc}") from exc


# ---------------------------------------------------------------------------------------- predictors
def pretrained_path(name: str) -> Path:
    """The folder of the checkpoint shipped as ``name`` (``FileNotFoundError`` listing the others)."""
    path = CHECKPOINT_DIR / name
    if not (path / "config.json").is_file():
        available = sorted(p.name for p in CHECKPOINT_DIR.iterdir() if p.is_dir()) if CHECKPOINT_DIR.is_dir() else []
        raise FileNotFoundError(
            f"no pretrained predictor {name!r} in {CHECKPOINT_DIR} (available: {available or 'none'}); "
            "train one with Predictor().fit(cgs, labels).save(path) and load it with Predictor.load(path)")
    return path


def predictor_document(pred: Predictor) -> dict[str, Any]:
    """The ``config.json`` document of a fitted predictor."""
    return {**header(CHECKPOINT_FORMAT), "config": pred.config(), "weights": pred.weights_, "taus": pred.taus_,
            "grid_scores": pred.grid_scores_,
            "encoder_state": None if pred.encoder_ is None else pred.encoder_.state(),
            "member_state": {name: model.state() for name, model in pred.models.items()}}


def write_predictor(pred: Predictor, folder: Path) -> None:
    """Write a predictor's ``config.json`` and ``weights.pt`` into the (new, empty) ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_files(folder, predictor_document(pred), pred.modules().state_dict())


def save_predictor(pred: Predictor, path: str | Path) -> Path:
    """Save a fitted predictor as a checkpoint folder (atomically, with a manifest)."""
    return save_folder(path, lambda tmp: write_predictor(pred, tmp))


def load_predictor_folder(cls: type[P], path: str | Path, progress: bool = True) -> P:
    """A predictor of class ``cls`` from a checkpoint folder (see the module docstring)."""
    path = Path(path)
    cfg_path = path / "config.json"
    doc = open_checkpoint(path)
    try:
        # a checkpoint saved before the ``canonical`` option was trained on CGs as converted
        obj = cls(progress=progress, **{"canonical": False, **doc["config"]})
        obj._validate_params()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path}: invalid 'config': {exc}") from exc
    obj.n_clusters_, obj.m_ = int(obj.n_clusters), float(obj.m)
    obj._build(keep_encoder=False)
    try:
        if obj.encoder_ is not None:
            obj.encoder_.load_state(doc["encoder_state"])
        for name, state in doc["member_state"].items():
            obj.members_[name].load_state(state)
        obj.weights_ = {str(k): float(v) for k, v in doc["weights"].items()}
        obj.taus_ = {str(k): float(v) for k, v in doc.get("taus", {}).items()}
        obj.grid_scores_ = dict(doc.get("grid_scores", {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{cfg_path}: the saved state does not fit the configuration ({type(exc).__name__}: "
                              f"{exc})") from exc
    obj.crossfit_scores_, obj.crossfit_folds_ = {}, None
    try:
        obj.modules().load_state_dict(load_weights(path))
    except RuntimeError as exc:
        raise CheckpointError(f"{path / 'weights.pt'} does not match the configuration in {cfg_path}: {exc}") from exc
    for module in obj.modules().values():
        module.eval()
    return obj


def main(argv: list[str] | None = None) -> int:
    """``python -m cgpredict.predictor.checkpoint FOLDER…``: add a manifest to version-1 checkpoints
    (format version becomes 2; nothing else changes)."""
    folders = (argv if argv is not None else sys.argv[1:])
    if not folders:
        print(main.__doc__)
        return 2
    for folder in map(Path, folders):
        doc = read_checkpoint_config(folder)
        if doc.get("format_version") == 1:
            doc["format_version"] = 2
            atomic_write_json(folder / "config.json", doc, indent=1)
        write_manifest(folder)
        print(f"{folder}: manifest written")
    return 0


if __name__ == "__main__":  # pragma: no cover - command line
    raise SystemExit(main())
