"""Download MIT-BIH and PTB-XL from PhysioNet with wfdb, resumably.

wfdb's own ``dl_database`` asks physionet.org for the latest version before anything
else; here the version is pinned and the index URL can point at any PhysioNet mirror
(tests use a server on 127.0.0.1). Files already complete are skipped and partial
files are resumed with HTTP range requests (wfdb's ``dl_pn_file``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm
from wfdb.io import download as wfdb_download

from tf_ecg.data.paths import DATASET_DIRS, data_root
from tf_ecg.errors import ECGDataError, OutputPathError

PHYSIONET_URL = wfdb_download.PN_INDEX_URL


@dataclass(frozen=True)
class PhysioNetDatabase:
    slug: str
    version: str
    extra_files: tuple[str, ...] = ()
    annotators: tuple[str, ...] = ()


DATABASES = {
    "mitdb": PhysioNetDatabase("mitdb", "1.0.0", annotators=("atr",)),
    "ptb-xl": PhysioNetDatabase("ptb-xl", "1.0.3",
                                extra_files=("ptbxl_database.csv", "scp_statements.csv", "LICENSE.txt")),
}


def _record_files(db_path: str, record: str, annotators) -> list[str]:
    """The header, its signal files and the annotation files of one record."""
    import wfdb

    directory, name = posixpath.split(record)
    header = wfdb.rdheader(name, pn_dir=posixpath.join(db_path, directory))
    files = [record + ".hea"]
    files += [posixpath.join(directory, f) for f in dict.fromkeys(header.file_name or [])]
    files += [f"{record}.{extension}" for extension in annotators]
    return files


def download_database(name: str, root: str | Path | None = None, base_url: str = PHYSIONET_URL,
                      records: list[str] | None = None, limit: int | None = None,
                      progress: bool = True) -> Path:
    """Download data set ``name`` ('mitdb' or 'ptb-xl') into ``<root>/<folder>``.

    ``records`` or ``limit`` restrict the download to some records (the CSV/metadata
    files always come). Returns the data set folder.
    """
    if name not in DATABASES:
        raise ECGDataError(None, f"unknown database {name!r}; choose from {sorted(DATABASES)}")
    database = DATABASES[name]
    target = data_root(root) / DATASET_DIRS[name]
    if target.exists() and not target.is_dir():
        raise OutputPathError(target, "exists and is not a folder")
    db_path = f"{database.slug}/{database.version}"
    base_url = base_url.rstrip("/") + "/"
    created = [p for p in (target, *target.parents) if not p.exists()]
    previous_url = wfdb_download.config.db_index_url
    wfdb_download.set_db_index_url(base_url)
    try:
        try:
            record_list = records or wfdb_download.get_record_list(db_path)
        except (OSError, ValueError) as error:  # requests' errors are OSErrors
            raise ECGDataError(base_url + db_path, f"cannot list the records of {name} ({_reason(error)}); "
                                                   f"check the network or --base-url") from None
        target.mkdir(parents=True, exist_ok=True)
        if limit is not None:
            record_list = record_list[:limit]
        files = list(database.extra_files)
        for record in tqdm(record_list, desc=f"{name}: listing", disable=not progress):
            try:
                files += _record_files(db_path, record, database.annotators)
            except (OSError, ValueError) as error:
                raise ECGDataError(base_url + posixpath.join(db_path, record + ".hea"),
                                   f"cannot read the record header ({_reason(error)})") from None
        for file in tqdm(files, desc=f"{name}: downloading", unit="file", disable=not progress):
            directory, base = posixpath.split(file)
            (target / directory).mkdir(parents=True, exist_ok=True)
            # [basefile, subdir, db, dl_dir, keep_subdirs, overwrite]: resumes partial files
            try:
                wfdb_download.dl_pn_file([base, directory, db_path, str(target), True, False])
            except OSError as error:
                raise ECGDataError(base_url + posixpath.join(db_path, file),
                                   f"download failed ({_reason(error)}); files already complete are kept "
                                   f"and the same command resumes") from None
    except BaseException:
        for folder in created:  # folders this call made and left empty go again
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    finally:
        wfdb_download.set_db_index_url(previous_url)
    return target


def _reason(error: BaseException) -> str:
    """The innermost message of a chained network error, in one line."""
    while error.__context__ is not None and not str(error):
        error = error.__context__
    return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}" if str(error) else type(error).__name__
