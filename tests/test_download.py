"""Downloads through wfdb against a PhysioNet mirror on 127.0.0.1 (never the internet)."""

import pytest

from tf_ecg.cli import main
from tf_ecg.data.download import download_database
from physionet_server import PhysioNetMirror


@pytest.fixture
def mirror(shared_data):
    ptbxl_records = [r.strip() for r in (shared_data / "ptbxl" / "RECORDS-v1.0.3").read_text().split()[:2]]
    with PhysioNetMirror({"mitdb/1.0.0": (shared_data / "mitdb", ["100", "101", "102"]),
                          "ptb-xl/1.0.3": (shared_data / "ptbxl", ptbxl_records)}) as server:
        yield server


def test_mitdb_download_is_byte_identical_and_resumes(mirror, shared_data, tmp_path):
    target = download_database("mitdb", tmp_path, base_url=mirror.url, limit=2, progress=False)
    assert sorted(p.name for p in target.iterdir()) == [
        "100.atr", "100.dat", "100.hea", "101.atr", "101.dat", "101.hea"]
    for file in target.iterdir():
        assert file.read_bytes() == (shared_data / "mitdb" / file.name).read_bytes()
    # An interrupted download: the rest of the file comes with a range request.
    partial = target / "101.dat"
    partial.write_bytes(partial.read_bytes()[:300_000])
    mirror.requests.clear()
    download_database("mitdb", tmp_path, base_url=mirror.url, limit=2, progress=False)
    assert partial.read_bytes() == (shared_data / "mitdb" / "101.dat").read_bytes()
    ranged = [r for r in mirror.requests if r[1].endswith("101.dat") and r[2]]
    assert any(r[2].startswith("bytes=300000-") for r in ranged)
    assert not any(r[1].endswith("100.dat") and r[0] == "GET" and not r[2] for r in mirror.requests)


def test_ptbxl_download_through_the_cli(mirror, shared_data, tmp_path):
    code = main(["data", "download", "ptb-xl", "--data-root", str(tmp_path), "--base-url", mirror.url,
                 "--limit", "1"])
    assert code == 0
    target = tmp_path / "ptbxl"
    for name in ("ptbxl_database.csv", "scp_statements.csv", "records100/00000/00001_lr.hea",
                 "records100/00000/00001_lr.dat"):
        assert (target / name).read_bytes() == (shared_data / "ptbxl" / name).read_bytes()
