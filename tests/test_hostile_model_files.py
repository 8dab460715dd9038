"""Hostile model files: each is a ModelError through ``recsys.load`` and one line with exit
code 2 through ``recsys predict MODEL 1 1``, before anything is allocated beyond what its
(consistent) arrays need. The files are built by ``recsys.testing.hostile``."""

import io
import json
import pathlib
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import recsys.memory as memory
from recsys.cli import main
from recsys.errors import ModelError, ResourceError
from recsys.models.funksvd import FunkSVD
from recsys.models.ranking import RankingMF
from recsys.models.registry import load
from recsys.testing import hostile as H

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory, small_ratings) -> bytes:
    """A ranking model (it has unknown_user) with titles, so every member is there."""
    model = RankingMF(n_factors=3, n_epochs=2).fit(small_ratings)
    model.state_.item_titles = {small_ratings.item_map.id_of(i): f"Film {i}" for i in range(5)}
    path = tmp_path_factory.mktemp("hostile") / "m.npz"
    model.save(path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def text_id_bytes(tmp_path_factory) -> bytes:
    import pandas as pd

    frame = pd.DataFrame({"user": ["ann", "bob", "ann", "cy"], "item": ["x", "y", "y", "z"],
                          "rating": [5, 3, 4.0, 2]})
    path = tmp_path_factory.mktemp("text") / "t.npz"
    FunkSVD(n_factors=2, n_epochs=2, reg=0.05).fit(frame).save(path)
    return path.read_bytes()


def _array(data: bytes, name: str) -> np.ndarray:
    return np.load(io.BytesIO(H.read_members(data)[1][f"{name}.npy"]), allow_pickle=False)


def refused(tmp_path, data: bytes, match: str) -> str:
    """Assert ``data`` is a ModelError matching ``match`` through load and the CLI; return
    the message."""
    path = tmp_path / "hostile.npz"
    path.write_bytes(data)
    with pytest.raises(ModelError, match=match) as info:
        load(path)
    result = CliRunner().invoke(main, ["predict", str(path), "1", "1"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("recsys: error: "), lines
    assert "internal error" not in lines[0]
    return str(info.value)


def test_the_fixtures_load(tmp_path, model_bytes, text_id_bytes):
    for data in (model_bytes, text_id_bytes):
        path = tmp_path / "ok.npz"
        path.write_bytes(data)
        load(path)


# ------------------------------------------------------------------ 1. dtypes and values


@pytest.mark.parametrize("member, make", H.WRONG_DTYPES,
                         ids=[f"{m}-{i}" for i, (m, _) in enumerate(H.WRONG_DTYPES)])
def test_wrong_dtype_with_consistent_manifest_and_checksum(tmp_path, model_bytes, member,
                                                           make):
    bad = make(_array(model_bytes, member))
    message = refused(tmp_path, H.with_arrays(model_bytes, {member: bad}),
                      f"array {member} is declared as .*; model files hold|"
                      f"dtypes disagree with each other: {member} is")
    assert member in message


def test_float_ids_are_refused_not_rounded(tmp_path, model_bytes):
    ids = _array(model_bytes, "user_ids").astype(np.float64) + 0.5
    refused(tmp_path, H.with_arrays(model_bytes, {"user_ids": ids}),
            r"user_ids is declared as float64 \(<f8\); model files hold int64 or text ids")


def test_text_ids_of_other_dtypes(tmp_path, text_id_bytes):
    ids = _array(text_id_bytes, "item_ids")
    assert ids.dtype.kind == "U"
    for bad in (ids.astype("S"), ids.astype(object), ids.astype(">U8")):
        refused(tmp_path, H.with_arrays(text_id_bytes, {"item_ids": bad}), "item_ids")


class _Marker:
    """Unpickling this would create a file: the loader must never get there."""

    path = None

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_object_arrays_are_refused_without_unpickling(tmp_path, model_bytes):
    marker = tmp_path / "unpickled"
    _Marker.path = marker
    evil = np.array([_Marker()] * len(_array(model_bytes, "user_ids")), dtype=object)
    refused(tmp_path, H.with_arrays(model_bytes, {"user_ids": evil}), r"object \(\|O\)")
    # the manifest left as it was: the member's header says object, the manifest int64
    refused(tmp_path, H.with_arrays(model_bytes, {"user_ids": evil}, consistent=False),
            "user_ids")
    assert not marker.exists()


def _edit_values(data, name, change):
    array = _array(data, name).copy()
    change(array)
    return H.with_arrays(data, {name: array})


@pytest.mark.parametrize("name, change, match", [
    ("user_factors", lambda a: a.__setitem__((0, 0), np.nan), "user_factors holds non-finite"),
    ("item_bias", lambda a: a.__setitem__(1, np.inf), "item_bias holds non-finite"),
    ("unknown_user", lambda a: a.__setitem__(0, -np.inf), "unknown_user holds non-finite"),
    ("user_ids", lambda a: a.__setitem__(1, a[0]), "user_ids holds an id twice"),
    ("item_ids", lambda a: a.__setitem__(2, a[0]), "item_ids holds an id twice"),
    ("seen_indices", lambda a: a.__setitem__(0, 10_000), "seen_indices holds items out of range"),
    ("seen_indices", lambda a: a.__setitem__(0, -1), "seen_indices holds items out of range"),
    ("seen_indices", lambda a: a.__setitem__(slice(0, 2), a[1::-1]),
     "seen_indices is not sorted within each user"),
    ("seen_indptr", lambda a: a.__setitem__(1, a[2] + 1), "seen_indptr does not rise"),
    ("seen_indptr", lambda a: a.__setitem__(0, 1), "seen_indptr does not rise"),
    ("title_items", lambda a: a.__setitem__(1, a[0]), "title_items holds an item twice"),
])
def test_values_the_format_does_not_allow(tmp_path, model_bytes, name, change, match):
    refused(tmp_path, _edit_values(model_bytes, name, change), match)


def test_titles_must_match_their_items(tmp_path, model_bytes, text_id_bytes):
    texts = _array(model_bytes, "title_texts")
    refused(tmp_path, H.with_arrays(model_bytes, {"title_texts": texts[:-1]}),
            "title_texts is .* need")
    items = _array(model_bytes, "title_items").astype(str)
    refused(tmp_path, H.with_arrays(model_bytes, {"title_items": items}),
            "title_items holds ids of another type")


@pytest.mark.parametrize("name, shape", [
    ("user_factors", lambda s: (s[0] + 1, s[1])), ("item_factors", lambda s: (s[0], s[1] + 1)),
    ("user_bias", lambda s: (s[0] - 1,)), ("seen_indptr", lambda s: (s[0] + 1,)),
    ("unknown_user", lambda s: (s[0] + 2,)),
])
def test_declared_shapes_that_disagree(tmp_path, model_bytes, name, shape):
    array = _array(model_bytes, name)
    bad = np.zeros(shape(array.shape), dtype=array.dtype)
    refused(tmp_path, H.with_arrays(model_bytes, {name: bad}),
            "array shapes disagree with each other: ")


def test_fortran_order_arrays_load_and_agree(tmp_path, model_bytes):
    P = _array(model_bytes, "user_factors")
    manifest, members = H.read_members(model_bytes)
    members["user_factors.npy"] = H.npy(np.asfortranarray(P))
    path = tmp_path / "f.npz"
    path.write_bytes(H.zip_bytes(manifest, members))
    np.testing.assert_array_equal(load(path).user_factors_, P)
    assert load(path).user_factors_.flags.c_contiguous


# ------------------------------------------------------------------ 2. sizes before data


@pytest.mark.parametrize("manifest, match", [
    ("unchanged", "user_factors: its member holds 192 bytes where shape"),
    ("same", r"shapes disagree with each other: user_factors is \[1000000000000, 1000\]"),
    ("consistent", "user_factors: its member holds .* bytes where shape"),
])
def test_npy_header_declaring_a_huge_shape(tmp_path, model_bytes, manifest, match):
    data = H.shape_bomb(model_bytes, (10**12, 1000), manifest)
    assert len(data) < 20_000
    refused(tmp_path, data, match)


def test_header_shape_within_limits_but_beyond_the_member(tmp_path, model_bytes):
    data = H.shape_bomb(model_bytes, (1, 10**9), "consistent")
    refused(tmp_path, data, "user_factors: its member holds 192 bytes where shape "
                            r"\[100, 1000000000\] <f4 needs 400,000,000,000 and a header")


def test_npy_header_disagreeing_with_the_manifest(tmp_path, model_bytes):
    """Same number of bytes, another shape: the header is read and compared first."""
    P = _array(model_bytes, "user_factors")
    manifest, members = H.read_members(model_bytes)
    members["user_factors.npy"] = H.npy(P.reshape(P.shape[::-1]))
    refused(tmp_path, H.zip_bytes(manifest, members),
            r"user_factors has shape \[3, 100\] <f4, manifest says \[100, 3\] <f4")


def test_member_with_more_data_than_its_header_declares(tmp_path, model_bytes):
    manifest, members = H.read_members(model_bytes)
    members["item_bias.npy"] += bytes(16)
    refused(tmp_path, H.zip_bytes(manifest, members),
            "item_bias: its member holds .* bytes of data where its header declares")


def test_npy_header_too_long_or_of_another_version(tmp_path, model_bytes):
    manifest, members = H.read_members(model_bytes)
    blob = members["user_bias.npy"]
    # format 2.0 claiming a 4 GiB header: refused from the length field, nothing read
    members["user_bias.npy"] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + blob[10:]
    refused(tmp_path, H.zip_bytes(manifest, members), "user_bias has a bad .npy header")
    members["user_bias.npy"] = b"\x93NUMPY\x03\x00" + blob[8:]
    refused(tmp_path, H.zip_bytes(manifest, members), r"\.npy format 3\.0")
    members["user_bias.npy"] = b"\x93NUMPX" + blob[6:]
    refused(tmp_path, H.zip_bytes(manifest, members), "user_bias has a bad .npy header")


def test_deflate_bomb_is_refused_before_inflating(tmp_path, model_bytes):
    data = H.deflate_bomb(model_bytes, 2 << 30)
    assert len(data) < 5 << 20
    message = refused(tmp_path, data, r"user_factors\.npy would inflate 1,0\d\dx")
    assert "2.0 GiB" in message


def test_deflate_bomb_loads_in_little_memory(tmp_path, model_bytes):
    """Peak RSS (the kernel's count) of a process loading a 2 GiB bomb stays small."""
    path = tmp_path / "bomb.npz"
    path.write_bytes(H.deflate_bomb(model_bytes, 2 << 30, exact_crc=False))
    # VmHWM, not ru_maxrss: after vfork and exec, ru_maxrss includes the parent's peak
    code = ("import sys\n"
            "from recsys.errors import ModelError\n"
            "from recsys.models.registry import load\n"
            "from recsys.testing.memprobe import rss_peak\n"
            "try:\n    load(sys.argv[1])\nexcept ModelError:\n    print('refused')\n"
            "print(rss_peak())\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    verdict, peak = out.stdout.split()
    assert verdict == "refused"
    assert int(peak) < 300 << 20


def test_deflated_members_within_limits_load(tmp_path, model_bytes):
    """A recsys file zipped again with deflate (as zip -9 would) still loads."""
    path = tmp_path / "d.npz"
    path.write_bytes(H.deflated(model_bytes))
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    plain = tmp_path / "p.npz"
    plain.write_bytes(model_bytes)
    np.testing.assert_array_equal(load(path).item_factors_, load(plain).item_factors_)


def test_manifest_bomb(tmp_path, model_bytes):
    manifest, members = H.read_members(model_bytes)
    huge = json.dumps(manifest).encode() + b" " * (17 << 20)
    data = H.zip_bytes(huge, members, {H.MANIFEST: zipfile.ZIP_DEFLATED})
    assert len(data) < 1 << 20
    refused(tmp_path, data, "the manifest claims 17.0 MiB")


def test_other_compression_methods_are_refused(tmp_path, model_bytes):
    manifest, members = H.read_members(model_bytes)
    data = H.zip_bytes(manifest, members, {"user_ids.npy": zipfile.ZIP_BZIP2})
    refused(tmp_path, data, "user_ids.npy uses compression method 12")


def test_loading_checks_the_memory_the_arrays_need(tmp_path, model_bytes, monkeypatch):
    path = tmp_path / "m.npz"
    path.write_bytes(model_bytes)
    monkeypatch.setattr(memory, "available_memory", lambda: 1_000)
    with pytest.raises(ResourceError, match="loading .* needs about"):
        load(path)


# ------------------------------------------------------------------ 3. members


@pytest.mark.parametrize("name", ["user_factors.npy", "seen_indices.npy", "manifest.json"])
def test_duplicate_member_names(tmp_path, model_bytes, name):
    blob = H.read_members(model_bytes)[1][name] if name == "manifest.json" else None
    data = H.duplicate_member(model_bytes, name, blob)
    # zipfile alone reads the second copy, and it passes its checksum
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert [i.filename for i in zf.infolist()].count(name) == 2
    refused(tmp_path, data, f"member '{name}' appears more than once")


@pytest.mark.parametrize("name", ["extra.npy", "../user_ids.npy", "unknown_user.npy/",
                                  "notes.txt"])
def test_members_a_model_file_does_not_have(tmp_path, model_bytes, name):
    refused(tmp_path, H.extra_member(model_bytes, name, b"x"), "unexpected member")


def test_member_not_listed_in_the_manifest(tmp_path, model_bytes):
    data = H.with_manifest(model_bytes, lambda m: m["arrays"].pop("unknown_user"))
    refused(tmp_path, data, "unexpected member 'unknown_user.npy'")
    data = H.with_manifest(model_bytes, lambda m: m["arrays"].update(extra=dict(
        m["arrays"]["user_bias"])))
    refused(tmp_path, data, "manifest lists unknown arrays extra")


@pytest.mark.parametrize("name", ["user_factors.npy", "user_ids.npy", "seen_indptr.npy",
                                  "title_texts.npy", "unknown_user.npy"])
@pytest.mark.parametrize("keep", [0.0, 0.05, 0.5, 0.99])
def test_truncated_members(tmp_path, model_bytes, name, keep):
    refused(tmp_path, H.truncated_member(model_bytes, name, keep), name[:-4])


def test_member_truncated_in_the_file(tmp_path, model_bytes):
    """The zip's directory intact, a member's data cut short inside the file."""
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as zf:
        info = zf.getinfo("item_factors.npy")
    data = bytearray(model_bytes)
    start = info.header_offset + 30 + len(info.filename) + 64
    data[start:start + 40] = b""
    refused(tmp_path, bytes(data), "damaged|not a zip")


# ------------------------------------------------------------------ manifests


@pytest.mark.parametrize("keys, value", H.HUGE_NUMBERS,
                         ids=[f"{'.'.join(k)}={str(v)[:12]}" for k, v in H.HUGE_NUMBERS])
def test_manifest_with_huge_numbers(tmp_path, model_bytes, keys, value):
    refused(tmp_path, H.with_manifest(model_bytes, lambda m: H.set_path(m, keys, value)),
            "damaged|newer|bad")


@pytest.mark.parametrize("edit", [
    lambda m: m["arrays"]["user_factors"].update(dtype=["<f4"]),
    lambda m: m["arrays"]["user_factors"].update(shape="big"),
    lambda m: m["arrays"]["user_factors"].update(shape=[True, 3]),
    lambda m: m["arrays"]["user_factors"].update(shape=[3.0, 3]),
    lambda m: m["arrays"]["user_factors"].update(sha256="x"),
    lambda m: m["arrays"].update(user_bias=[1, 2]),
    lambda m: m.update(arrays=[]),
    lambda m: m.update(history="x"),
    lambda m: m.update(mu="1"),
    lambda m: m.update(rating_scale=[1]),
])
def test_manifest_entries_of_the_wrong_type(tmp_path, model_bytes, edit):
    refused(tmp_path, H.with_manifest(model_bytes, edit), "damaged")


def test_structured_mutations_raise_only_model_error(tmp_path, model_bytes):
    path = tmp_path / "m.npz"
    for seed in range(60):
        path.write_bytes(H.structured_mutation(model_bytes, np.random.default_rng(seed)))
        try:
            load(path)
        except ModelError:
            pass
