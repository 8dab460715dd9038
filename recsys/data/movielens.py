"""The MovieLens releases: where to get them, how to check them, where they are kept.

``download("ml-1m")`` fetches the official zip from GroupLens (or from ``$RECSYS_MIRROR``),
streams it to a temporary file while hashing it, checks its MD5 (published by GroupLens
beside the zip for the fixed releases) or, for the releases that change over time, its zip
integrity, then unpacks it into a temporary folder and renames that into the cache. A
failed or damaged download leaves nothing in the cache; a second call does nothing.

The item metadata of a release (titles and genres, ``read_item_metadata``) is read from
the files beside its ratings. This module imports nothing heavy at import time (pandas only
when metadata is read), so the command line can use it freely.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from recsys.errors import RecsysError
from recsys.progress import Silent, bar

if TYPE_CHECKING:
    import pandas as pd

    from recsys.data.ratings import IdMap

BASE_URL = "https://files.grouplens.org/datasets/movielens"
_CHUNK = 1 << 20
_TIMEOUT_S = 30


@dataclass(frozen=True)
class Dataset:
    """One MovieLens release.

    ``md5`` is the checksum GroupLens publishes in ``<name>.zip.md5``; None for the releases
    that are regenerated from time to time (``ml-latest*``), which are checked by zip
    integrity instead. ``size`` is the zip's size in bytes (None where it changes).
    ``users``, ``movies`` and ``ratings`` are the counts the release's README states
    (``movies`` counts the catalogue; fewer movies have ratings). ``ratings_file`` is the
    path inside the zip; ``format`` says how it is laid out.
    """

    name: str
    md5: str | None
    size: int | None
    ratings_file: str
    format: str
    users: int
    movies: int
    ratings: int
    note: str = ""

    def url(self, mirror: str | None = None) -> str:
        base = mirror or os.environ.get("RECSYS_MIRROR") or BASE_URL
        return f"{base.rstrip('/')}/{self.name}.zip"

    @property
    def folder(self) -> str:
        """The top folder inside the zip (ml-10m unpacks to ``ml-10M100K``)."""
        return PurePosixPath(self.ratings_file).parts[0]


_TAB = "tab-separated user, item, rating, timestamp; no header"
_DAT = "'::'-separated UserID::MovieID::Rating::Timestamp; no header"
_CSV = "CSV with header userId,movieId,rating,timestamp"

REGISTRY: dict[str, Dataset] = {d.name: d for d in [
    Dataset("ml-100k", "0e33842e24a9c977be4e0107933c0723", 4_924_029, "ml-100k/u.data", _TAB,
            943, 1_682, 100_000, "1998; whole stars 1-5; titles in u.item (Latin-1); "
            "official folds u1..u5, ua, ub"),
    Dataset("ml-1m", "c4d9eecfca2ab87c1945afe126590906", 5_917_549, "ml-1m/ratings.dat", _DAT,
            6_040, 3_900, 1_000_209, "2003; whole stars 1-5; README says about 3,900 movies "
            "(3,706 rated); movies.dat is Latin-1"),
    Dataset("ml-10m", "ce571fd55effeba0271552578f2648bd", 65_566_137, "ml-10M100K/ratings.dat",
            _DAT, 71_567, 10_681, 10_000_054, "2009; half stars 0.5-5; 69,878 users rate"),
    Dataset("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3", 198_702_078, "ml-20m/ratings.csv",
            _CSV, 138_493, 27_278, 20_000_263, "2015; half stars 0.5-5"),
    Dataset("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada", 261_978_986, "ml-25m/ratings.csv",
            _CSV, 162_541, 62_423, 25_000_095, "2019; half stars 0.5-5"),
    Dataset("ml-32m", "d472be332d4daa821edc399621853b57", 238_950_008, "ml-32m/ratings.csv",
            _CSV, 200_948, 87_585, 32_000_204, "2023; half stars 0.5-5"),
    Dataset("ml-latest-small", None, None, "ml-latest-small/ratings.csv", _CSV,
            610, 9_742, 100_836, "development release, changes over time (counts of the "
            "2018 edition); checked by zip integrity"),
    Dataset("ml-latest", None, None, "ml-latest/ratings.csv", _CSV,
            330_975, 86_537, 33_832_162, "development release, changes over time (counts of "
            "the 2023 edition); checked by zip integrity"),
]}


def cache_dir() -> Path:
    """Where datasets are kept: ``$RECSYS_DATA``, else ``$XDG_CACHE_HOME/recsys``, else
    ``~/.cache/recsys``."""
    if os.environ.get("RECSYS_DATA"):
        return Path(os.environ["RECSYS_DATA"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "recsys"


def get(name: str) -> Dataset:
    try:
        return REGISTRY[name]
    except KeyError:
        raise RecsysError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None


def _as_dataset(dataset: str | Dataset) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else get(dataset)


def local_folder(dataset: str | Dataset, cache: Path | None = None) -> Path:
    """The folder a release is (or would be) unpacked to."""
    return Path(cache or cache_dir()) / _as_dataset(dataset).name


def ratings_path(dataset: str | Dataset, cache: Path | None = None) -> Path:
    ds = _as_dataset(dataset)
    return local_folder(ds, cache) / PurePosixPath(ds.ratings_file).name


def is_downloaded(dataset: str | Dataset, cache: Path | None = None) -> bool:
    return ratings_path(dataset, cache).is_file()


def resolve_data(arg, cache: Path | None = None) -> str:
    """A ratings path for a command-line DATA argument: a file path, ``-`` (standard input,
    which the readers copy once), or a registry name.

    An existing path always wins; a registry name gives the cached ratings file, or an
    error saying how to download it.
    """
    text = str(arg)
    if text == "-":
        return text
    if text not in REGISTRY or Path(text).exists():
        return text
    path = ratings_path(text, cache)
    if not path.is_file():
        raise RecsysError(f"{text} is not downloaded yet: run `recsys download {text}` "
                          f"(it goes to {local_folder(text, cache)})")
    return str(path)


# ----------------------------------------------------------------------------- download


def _network_error(url: str, exc: BaseException) -> RecsysError:
    if isinstance(exc, urllib.error.HTTPError):
        return RecsysError(f"download of {url} failed: the server answered {exc.code} "
                           f"{exc.reason}")
    reason = getattr(exc, "reason", exc)
    return RecsysError(f"no network: cannot reach {url} ({reason}); check the connection, "
                       "or set RECSYS_MIRROR to a server that has the zip")


def _progress(name: str, done: int, total: int | None, started: float, final=False) -> None:
    mib = done / 2**20
    if total:
        text = f"{mib:7.1f} / {total / 2**20:.1f} MiB ({100 * done / total:3.0f}%)"
    else:
        text = f"{mib:7.1f} MiB"
    rate = mib / max(time.monotonic() - started, 1e-9)
    sys.stderr.write(f"\rdownloading {name}: {text}  {rate:.1f} MiB/s")
    if final:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _fetch(url: str, out, name: str, expected_size: int | None, progress: bool) -> str:
    """Stream ``url`` into the open binary file ``out``; return the MD5 hex digest."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else expected_size
            done, started, last = 0, time.monotonic(), 0.0
            shown = bar(total, f"downloading {name}", "B", unit_scale=True,
                        unit_divisor=1024) if progress else Silent()
            plain = progress and isinstance(shown, Silent) and sys.stderr.isatty()
            with shown:
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    md5.update(block)
                    done += len(block)
                    shown.update(len(block))
                    now = time.monotonic()
                    if plain and now - last > 0.2:
                        _progress(name, done, total, started)
                        last = now
            if plain:
                _progress(name, done, total, started, final=True)
    except urllib.error.HTTPError as exc:
        raise _network_error(url, exc) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        raise _network_error(url, exc) from None
    if length and length.isdigit() and done != int(length):
        raise RecsysError(f"download of {url} was cut short: {done:,} of {int(length):,} bytes")
    return md5.hexdigest()


def _verify(ds: Dataset, zip_path: Path, digest: str, url: str) -> None:
    size = zip_path.stat().st_size
    if ds.size is not None and size != ds.size:
        raise RecsysError(f"{url}: got {size:,} bytes, expected {ds.size:,}; "
                          "the file is damaged or not the official release")
    if ds.md5 is not None and digest != ds.md5:
        raise RecsysError(f"{url}: checksum mismatch (MD5 {digest}, expected {ds.md5}); "
                          "the file is damaged or not the official release")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise RecsysError(f"{url}: not a valid zip file ({exc})") from None
    if bad is not None:
        raise RecsysError(f"{url}: zip member {bad} is damaged (CRC mismatch)")
    if ds.ratings_file not in names:
        raise RecsysError(f"{url}: the zip has no {ds.ratings_file}")


def _extract(zip_path: Path, into: Path) -> None:
    """Unpack, refusing members that would land outside ``into``."""
    root = into.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for member in zf.infolist():
            target = (into / member.filename).resolve()
            if target != root and root not in target.parents:
                raise RecsysError(f"{zip_path.name}: member {member.filename!r} points outside "
                                  "the folder; refusing to unpack")
        zf.extractall(into)


def download(dataset: str | Dataset, *, force: bool = False, mirror: str | None = None,
             cache: Path | None = None, progress: bool = True) -> Path:
    """Download, verify and unpack a release; return the path of its ratings file.

    Does nothing when the release is already there (unless ``force``). ``mirror`` (or
    ``$RECSYS_MIRROR``) replaces the GroupLens base URL.
    """
    ds = _as_dataset(dataset)
    cache = Path(cache or cache_dir())
    target = local_folder(ds, cache)
    if is_downloaded(ds, cache) and not force:
        return ratings_path(ds, cache)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecsysError(f"cannot create the data folder {cache}: {exc.strerror}") from None
    url = ds.url(mirror)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{ds.name}.", suffix=".zip.part", dir=cache)
    tmp_zip = Path(tmp_name)
    tmp_dir = None
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, ds.name, ds.size, progress)
        _verify(ds, tmp_zip, digest, url)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{ds.name}.", suffix=".unpack", dir=cache))
        _extract(tmp_zip, tmp_dir)
        unpacked = tmp_dir / ds.folder
        if target.exists():  # --force: swap the old copy out, then remove it
            old = Path(tempfile.mkdtemp(prefix=f".{ds.name}.", suffix=".old", dir=cache))
            os.replace(target, old / "x")
            os.replace(unpacked, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(unpacked, target)
    finally:
        with contextlib.suppress(OSError):
            tmp_zip.unlink()
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return ratings_path(ds, cache)


def describe() -> list[dict]:
    """One row per release for ``recsys datasets``."""
    rows = []
    for ds in REGISTRY.values():
        rows.append({
            "name": ds.name,
            "size": f"{ds.size / 2**20:.1f} MiB" if ds.size else "varies",
            "ratings": ds.ratings,
            "users": ds.users,
            "movies": ds.movies,
            "check": "md5" if ds.md5 else "zip",
            "downloaded": str(ratings_path(ds)) if is_downloaded(ds) else "",
        })
    return rows


# ----------------------------------------------------------------------------- item metadata


def read_item_titles(ratings_file, item_map: IdMap | None = None) -> dict:
    """Titles of MovieLens items from the metadata file beside a ratings file, if any.

    ml-100k keeps them in ``u.item`` (``|``-separated, Latin-1), ml-1m and ml-10m in
    ``movies.dat`` (``::``-separated; Latin-1 in ml-1m, UTF-8 in ml-10m), later releases in
    ``movies.csv`` (UTF-8, quoted titles). Returns {raw item id: title}; {} when none is found.
    """
    folder = Path(ratings_file).parent
    frame = read_item_metadata(folder)
    if frame is None:
        return {}
    titles = dict(zip(frame["item"].tolist(), frame["title"].tolist(), strict=False))
    if item_map is not None:
        if not item_map.is_integer:
            titles = {str(k): v for k, v in titles.items()}
        known = set(item_map.to_list())
        titles = {k: v for k, v in titles.items() if k in known}
    return titles


def read_item_metadata(folder) -> pd.DataFrame | None:
    """Item id, title and genres from a MovieLens folder; None when there is no such file."""
    import numpy as np  # here, not above: listing and downloading releases stay fast
    import pandas as pd

    folder = Path(folder)
    try:
        if (folder / "u.item").is_file():
            raw = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1",
                              quoting=csv.QUOTE_NONE, dtype=str)
            genre_names = _ml100k_genres(folder)
            flags = raw.iloc[:, 5:].astype(int).to_numpy()
            genres = ["|".join(g for g, f in zip(genre_names, row, strict=False) if f)
                      for row in flags]
            return pd.DataFrame({"item": raw[0].astype(np.int64), "title": raw[1],
                                 "genres": genres})
        if (folder / "movies.dat").is_file():
            rows = []
            with open(folder / "movies.dat", "rb") as fh:
                data = fh.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            for line in text.splitlines():
                if line.strip():
                    movie, rest = line.split("::", 1)
                    title, _, genres = rest.rpartition("::")
                    rows.append((int(movie), title, genres))
            return pd.DataFrame(rows, columns=["item", "title", "genres"])
        if (folder / "movies.csv").is_file():
            raw = pd.read_csv(folder / "movies.csv", encoding="utf-8", dtype={"title": str})
            return pd.DataFrame({"item": raw["movieId"].astype(np.int64), "title": raw["title"],
                                 "genres": raw.get("genres", "")})
    except (ValueError, KeyError, OSError, pd.errors.ParserError):
        return None  # metadata is a nicety: a damaged file never blocks training
    return None


def _ml100k_genres(folder: Path) -> list[str]:
    path = folder / "u.genre"
    if path.is_file():
        text = path.read_text(encoding="latin-1")
        return [ln.split("|")[0] for ln in text.splitlines() if ln.strip()]
    return ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
            "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
            "Romance", "Sci-Fi", "Thriller", "War", "Western"]
