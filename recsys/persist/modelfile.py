"""Model files: a FactorState and its manifest in one zip of .npy arrays plus
``manifest.json``.

The manifest holds the format version, the kind of model and its parameters, the fit
report (regularization used, per-epoch history, training summary), the lineage (parent
model, digests of the training data, recsys version), array shapes and dtypes and a
SHA-256 of every array, so a truncated, corrupted, foreign or hostile file is detected
on load and reported as ``ModelError``: every member is checked against what the format
allows before its data is read (``recsys.persist.members``), and nothing in a model file
is ever unpickled. Writing is atomic; recsys stores the members uncompressed. This
module knows no estimator: it reads and writes a ``ModelRecord`` (kind name, parameters,
state, report).

Format versions: 1 held FunkSVD models only (SVD++ as ``method='svdpp'``, no lineage);
2 names the model kind and adds the lineage; 3 adds ``rating_factors``, the leading
factor columns predictions use (HybridMF), and is written only by models that have it,
so that every other file stays readable by recsys 0.2. All three are read.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.atomic import atomic_write
from recsys.data.ratings import IdMap
from recsys.errors import ModelError
from recsys.memory import ensure_memory, human_bytes
from recsys.persist.members import (
    CHUNK,
    MANIFEST,
    MANIFEST_LIMIT,
    ZIP_ERRORS,
    array_specs,
    check_sizes,
    damaged,
    read_array,
    zip_members,
)
from recsys.state import Factors, FactorState, FitReport, Lineage

log = logging.getLogger(__name__)
FORMAT = "recsys-funksvd"
FORMAT_VERSION = 3
#: Files whose predictions use every factor column are still written as format 2, which
#: recsys 0.2 reads; format 3 adds ``rating_factors`` (``FactorState.rating_factors``).
_PLAIN_VERSION = 2


@dataclass
class ModelRecord:
    """What a model file holds: the estimator's name and parameters, its state and report;
    ``manifest`` and ``format_version`` as read (a record being written has the current
    version)."""

    kind: str
    params: dict
    state: FactorState
    report: FitReport
    manifest: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (no copy when it is C-contiguous)."""
    array = np.ascontiguousarray(array)
    return hashlib.sha256(memoryview(array.reshape(-1).view(np.uint8)) if array.size
                          else b"").hexdigest()


def _id_array(id_map: IdMap) -> np.ndarray:
    ids = id_map.ids
    return ids.astype(np.int64) if id_map.is_integer else ids.astype(str)


#: Kinds whose files must say the factor regularization they were trained with (files of
#: format 1 were all FunkSVD).
_TRAINED_WITH_REG = ("FunkSVD", "SVDpp", "HybridMF", None)


def state_arrays(state: FactorState) -> dict:
    """The arrays of a model file, by member name."""
    titles = state.item_titles or {}
    title_items = np.array(list(titles.keys())) if titles else np.zeros(0, dtype=np.int64)
    if title_items.dtype.kind == "O":
        title_items = title_items.astype(str)
    f = state.factors
    return {
        "user_factors": f.user_factors,
        "item_factors": f.item_factors,
        "user_bias": f.user_bias,
        "item_bias": f.item_bias,
        "user_ids": _id_array(state.user_map),
        "item_ids": _id_array(state.item_map),
        "seen_indptr": state.seen[0],
        "seen_indices": state.seen[1],
        "title_items": title_items,
        "title_texts": np.array(list(titles.values()), dtype=str) if titles
        else np.zeros(0, dtype="<U1"),
        **({} if state.unknown_user is None else {"unknown_user": state.unknown_user}),
    }


def write_model(path, record: ModelRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    state, report = record.state, record.report
    arrays = state_arrays(state)
    manifest = {
        "format": FORMAT,
        "format_version": _PLAIN_VERSION if state.rating_factors is None else FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": record.kind,
        "params": record.params,
        "reg": None if report.reg is None else float(report.reg),
        "reg_trials": [list(trial) for trial in report.reg_trials],
        "mu": float(state.factors.mu),
        "rating_scale": list(state.rating_scale),
        "training": report.summary,
        "history": report.history,
        "best_epoch": report.best_epoch,
        "fitted": report.fitted,
        **({} if state.rating_factors is None else {"rating_factors": state.rating_factors}),
        "lineage": state.lineage.as_dict(),
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(a)}
                   for name, a in arrays.items()},
    }
    log.info("writing %s model to %s", record.kind, path)
    with atomic_write(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1, default=_json_default))
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                zf.writestr(f"{name}.npy", buffer.getvalue())


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a model manifest")


def read_manifest(path) -> dict:
    """The manifest of a model file (checked), without loading its arrays."""
    with _open_zip(path) as zf:
        return _manifest(zf, zip_members(zf, path), path)


def _open_zip(path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file")
    try:
        return zipfile.ZipFile(path, "r")
    except PermissionError:
        raise ModelError(f"{path}: permission denied") from None
    except ZIP_ERRORS:
        raise ModelError(f"{path}: not a recsys model file (not a zip archive, or truncated)") \
            from None


def _manifest(zf: zipfile.ZipFile, members: dict, path) -> dict:
    info = members.get(MANIFEST)
    if info is None:
        raise ModelError(f"{path}: not a recsys model file (no manifest)")
    if info.file_size > MANIFEST_LIMIT:
        raise damaged(path, f"the manifest claims {human_bytes(info.file_size)} (at most "
                             f"{human_bytes(MANIFEST_LIMIT)})")
    try:
        manifest = json.loads(zf.read(info).decode("utf-8"))
    except (*ZIP_ERRORS, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise damaged(path, f"manifest unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: not a recsys model file (format is "
                         f"{manifest.get('format') if isinstance(manifest, dict) else '?'!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise damaged(path, f"bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {version} is newer than this recsys "
                         f"reads (up to {FORMAT_VERSION}); upgrade recsys")
    return manifest


def read_model(path) -> ModelRecord:
    """Read a model file written by ``write_model`` (or format 1); raises ``ModelError``
    for anything amiss, ``ResourceError`` for a consistent model too large for the
    memory available.

    In order: the zip's members (no duplicates, nothing foreign, stored or deflate), the
    manifest (at most ``MANIFEST_LIMIT``), every array's declared dtype (the ones the
    format allows for it) and shape, the shapes against each other, each member's size in
    the zip against its declared array (and the inflation of compressed members), the
    memory the arrays need, and only then each array: its .npy header against the
    manifest, its data read into an array of the declared size and its checksum; last
    the values (finite factors, unique ids, a well-formed seen-items index, titles).
    Memory while reading: the declared arrays plus a 1 MiB buffer, then the id maps'
    hash tables and the titles as Python strings.
    """
    with _open_zip(path) as zf:
        members = zip_members(zf, path)
        manifest = _manifest(zf, members, path)
        specs = array_specs(manifest, members, path)
        needed = check_sizes(specs, members, path)
        ensure_memory(needed, f"loading {path}", "is the model file from a larger machine?")
        arrays = {name: read_array(zf, members[f"{name}.npy"], spec, path)
                  for name, spec in specs.items()}
    try:
        version = manifest["format_version"]
        params = manifest["params"]
        if not isinstance(params, dict):
            raise ValueError(f"bad parameters {str(params)[:80]}")
        kind = manifest.get("model") if version >= 2 else \
            ("SVDpp" if params.get("method") == "svdpp" else "FunkSVD")
        if not isinstance(kind, str):
            raise ValueError(f"bad model kind {str(kind)[:80]}")
        _check_values(arrays)
        state = _state(arrays, manifest)
        state.check()
        reg, trials = _trained_reg(manifest)
        best = manifest.get("best_epoch")
        fitted = manifest.get("fitted", {})
        if not isinstance(fitted, dict) or not all(map(_number, fitted.values())):
            raise ValueError(f"bad fitted values {str(fitted)[:80]}")
        history = manifest.get("history", [])
        if not isinstance(history, list):
            raise ValueError(f"bad history {str(history)[:80]}")
        report = FitReport(reg, trials, list(history),
                           best if isinstance(best, int) and not isinstance(best, bool)
                           else None, dict(manifest.get("training", {})), dict(fitted))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise damaged(path, str(exc)) from None
    return ModelRecord(kind, params, state, report, manifest, version)


def _number(x) -> bool:
    """A finite number (a huge JSON integer is not: float() overflows)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) \
        and abs(x) <= sys.float_info.max


def _all_finite(array: np.ndarray) -> bool:
    flat = array.reshape(-1)
    step = CHUNK // max(array.itemsize, 1)
    return all(np.isfinite(flat[i:i + step]).all() for i in range(0, len(flat), step))


def _check_values(arrays: dict) -> None:
    """What the dtypes and shapes cannot say: finite factors, a well-formed seen-items
    index (as ``FactorState.check``), unique titles of the items' id type."""
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "unknown_user"):
        if name in arrays and not _all_finite(arrays[name]):
            raise ValueError(f"array {name} holds non-finite values")
    titles, items = arrays["title_items"], arrays["item_ids"]
    if len(titles) and titles.dtype.kind != items.dtype.kind:
        raise ValueError("array title_items holds ids of another type than item_ids")
    if len(titles) != len(np.unique(titles)):
        raise ValueError("array title_items holds an item twice")


def _id_map(ids: np.ndarray, name: str) -> IdMap:
    try:
        return IdMap(ids)
    except ValueError:
        raise ValueError(f"array {name} holds an id twice") from None


def _state(arrays: dict, manifest: dict) -> FactorState:
    P = arrays["user_factors"]
    mu, scale = manifest["mu"], manifest["rating_scale"]
    if not _number(mu):
        raise ValueError(f"bad mu {str(mu)[:80]}")
    if not (isinstance(scale, list) and len(scale) == 2 and all(map(_number, scale))
            and scale[0] <= scale[1]):
        raise ValueError(f"bad rating scale {str(scale)[:80]}")
    factors = Factors(P.dtype.type(mu), arrays["user_bias"], arrays["item_bias"], P,
                      arrays["item_factors"])
    titles = {k.item(): str(v) for k, v in
              zip(arrays["title_items"], arrays["title_texts"], strict=True)}
    head = manifest.get("rating_factors") if manifest["format_version"] >= 3 else None
    if head is not None and not (isinstance(head, int) and not isinstance(head, bool)):
        raise ValueError(f"bad rating_factors {str(head)[:80]}")
    return FactorState(factors, _id_map(arrays["user_ids"], "user_ids"),
                       _id_map(arrays["item_ids"], "item_ids"),
                       (arrays["seen_indptr"], arrays["seen_indices"]),
                       (float(scale[0]), float(scale[1])), titles,
                       Lineage.from_dict(manifest.get("lineage")), arrays.get("unknown_user"),
                       head)


def _trained_reg(manifest: dict) -> tuple[float, list]:
    """The γ the model was trained with: ``reg`` in the manifest, else (files written before
    ``reg='auto'`` existed) the numeric parameter."""
    reg = manifest.get("reg", manifest["params"].get("reg"))
    if reg is None and manifest.get("model") not in _TRAINED_WITH_REG:
        pass  # a model without a chosen factor regularization (baselines, ranking)
    elif not (_number(reg) and reg >= 0):
        raise ValueError(f"bad regularization {str(reg)[:80]}")
    trials = manifest.get("reg_trials", [])
    if not (isinstance(trials, list) and all(
            isinstance(t, list) and len(t) == 2 and all(map(_number, t)) for t in trials)):
        raise ValueError(f"bad reg_trials {str(trials)[:80]}")
    return (None if reg is None else float(reg)), [(float(r), float(e)) for r, e in trials]
