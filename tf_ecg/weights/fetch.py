"""Published weight files fetched into tf_ecg's cache, resumably, and checked by sha256.

``fetch_weights(url, file_name, sha256, member)`` downloads ``url`` into
``<cache>/weights/`` (``$TF_ECG_CACHE``, default ``~/.cache/tf_ecg``): into ``<file>.partial``
first, resumed with an HTTP range request if an earlier transfer was cut, then (for an
archive) the ``member`` is taken out of it, its sha256 compared with the expected one and
the file moved into place. A file whose hash differs is kept aside (``<file>.rejected``),
never used. Where no hash is known yet, the first download records the one it got in
``<cache>/weights/recorded_sha256.json`` and says so once; later downloads must match it.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import requests
from tqdm.auto import tqdm

from tf_ecg.data.paths import cache_root, sha256_of
from tf_ecg.errors import WeightFileError

RECORDED = "recorded_sha256.json"
CHUNK = 1 << 16  # what a cut transfer keeps is written in blocks of this size


def weights_cache() -> Path:
    return cache_root() / "weights"


def fetch_weights(url: str, file_name: str, sha256: str | None = None, member: str | None = None,
                  progress: bool = True, timeout: float = 30) -> Path:
    """The weight file at ``url`` (or ``member`` of the zip archive there), from the cache
    or downloaded into it; checked against ``sha256`` (or the hash recorded by the first
    download). Errors name the URL and the cache folder."""
    folder = weights_cache()
    target = folder / file_name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise WeightFileError(folder, f"the weight cache is not writable ({error.strerror}): set TF_ECG_CACHE "
                                      f"to a writable folder") from None
    expected = sha256 or _recorded(folder).get(url)
    if target.is_file():
        if expected is None or sha256_of(target) == expected:
            return target
        _reject(target, expected, url)
    download = folder / f"{file_name}.download.partial"
    _download(url, download, folder, progress, timeout)
    if member is not None:
        _extract(download, member, target, url)
        download.unlink()
    else:
        download.replace(target)
    digest = sha256_of(target)
    if expected is None:
        recorded = _recorded(folder)
        recorded[url] = digest
        (folder / RECORDED).write_text(json.dumps(recorded, indent=1))
        print(f"tf-ecg: {file_name} from {url}: no published sha256 yet; recorded {digest} in "
              f"{folder / RECORDED} (later downloads must match it)")
    elif digest != expected:
        _reject(target, expected, url)
    return target


def _download(url: str, partial: Path, folder: Path, progress: bool, timeout: float) -> None:
    """``url`` into ``partial``, continuing what an earlier, cut transfer left there."""
    start = partial.stat().st_size if partial.is_file() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    hint = f"put the file there by hand: {folder}"
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # the earlier transfer was complete
                return
            if response.status_code not in (200, 206):
                raise WeightFileError(url, f"HTTP {response.status_code} {response.reason}; {hint}")
            if response.status_code == 200:
                start = 0  # the server ignored the range: start over
            total = start + int(response.headers.get("Content-Length", 0)) or None
            with open(partial, "ab" if start else "wb") as handle, \
                    tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=partial.stem,
                         disable=not progress) as bar:
                for block in response.iter_content(CHUNK):
                    handle.write(block)
                    bar.update(len(block))
            if total is not None and partial.stat().st_size < total:
                raise WeightFileError(url, f"transfer cut at {partial.stat().st_size} of {total} bytes; "
                                           f"the same command resumes it")
    except requests.exceptions.ChunkedEncodingError:
        raise WeightFileError(url, f"transfer cut at {partial.stat().st_size} bytes; run again to resume, "
                                   f"or {hint}") from None
    except requests.RequestException as error:
        reason = type(error).__name__ if not str(error) else f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        raise WeightFileError(url, f"cannot download ({reason}); run again to resume, or {hint}") from None


def _extract(archive: Path, member: str, target: Path, url: str) -> None:
    try:
        with zipfile.ZipFile(archive) as opened:
            if member not in opened.namelist():
                raise WeightFileError(url, f"the archive has no {member!r} (it has {opened.namelist()[:8]})")
            staging = target.with_name(target.name + ".extracting")
            with opened.open(member) as source, open(staging, "wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
            staging.replace(target)
    except zipfile.BadZipFile:
        archive.unlink()
        raise WeightFileError(url, "not a zip archive (removed from the cache; run again to download it anew)") from None


def _reject(target: Path, expected: str, url: str) -> None:
    aside = target.with_name(target.name + ".rejected")
    digest = sha256_of(target)
    target.replace(aside)
    raise WeightFileError(url, f"sha256 {digest} where {expected} is expected: the file is kept aside as "
                               f"{aside}, not used")


def _recorded(folder: Path) -> dict:
    path = folder / RECORDED
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (ValueError, OSError):
        raise WeightFileError(path, "unreadable record of downloaded hashes: remove it") from None
