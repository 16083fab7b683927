"""Published weights fetched into the cache, resumed and verified, against a server on 127.0.0.1
(never the internet): a cut transfer, a wrong hash, an archive without the file, no server at all."""

import hashlib
import http.server
import io
import json
import re
import socket
import threading
import zipfile

import pytest

from tf_ecg.cli import main
from tf_ecg.errors import WeightFileError
from tf_ecg.weights.fetch import fetch_weights


class WeightServer:
    """Serves ``files`` (path -> bytes) with range requests; ``cut_at`` ends the first
    transfer of a path after that many bytes, as a dropped connection would."""

    def __init__(self, files: dict, cut_at: int | None = None):
        self.files, self.cut_at, self.ranges = files, cut_at, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                content = server.files.get(self.path)
                server.ranges.append(self.headers.get("Range"))
                if content is None:
                    self.send_error(404)
                    return
                start = int(re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "bytes=0-").group(1))
                if start >= len(content):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = content[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_at is not None and start == 0:
                    self.wfile.write(body[:server.cut_at])
                    server.cut_at = None
                    return  # the connection closes short of Content-Length
                self.wfile.write(body)

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ECG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


@pytest.fixture(scope="module")
def glucose_bytes(originals):
    return (originals / "weights" / "glucose" / "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth").read_bytes()


def test_a_cut_transfer_resumes_and_the_file_is_verified(cache, glucose_bytes, tmp_path, monkeypatch, capsys):
    from tf_ecg.published import PRESETS

    server = WeightServer({"/glucose.pth": glucose_bytes}, cut_at=100_000)
    try:
        source = PRESETS["glucose_supervised"].weights
        url = f"{server.url}/glucose.pth"
        with pytest.raises(WeightFileError, match=rf"{re.escape(url)}: transfer cut at (\d+) bytes; run again to resume"):
            fetch_weights(url, source.file, source.sha256, progress=False)
        kept = (cache / f"{source.file}.download.partial").stat().st_size
        assert 0 < kept <= 100_000
        path = fetch_weights(url, source.file, source.sha256, progress=False)  # resumes
        assert server.ranges[-1] == f"bytes={kept}-" and path.read_bytes() == glucose_bytes
        assert fetch_weights(url, source.file, source.sha256, progress=False) == path  # from the cache
        assert len(server.ranges) == 2
    finally:
        server.close()


def test_export_without_weights_fetches_the_published_file(cache, glucose_bytes, tmp_path, monkeypatch):
    import dataclasses

    import tf_ecg.published as published

    server = WeightServer({"/glucose.pth": glucose_bytes})
    try:
        preset = published.PRESETS["glucose_supervised"]
        monkeypatch.setitem(published.PRESETS, "glucose_supervised", dataclasses.replace(
            preset, weights=dataclasses.replace(preset.weights, url=f"{server.url}/glucose.pth")))
        assert main(["export", "--preset", "glucose_supervised", "--out", str(tmp_path / "saved")]) == 0
        metadata = json.loads((tmp_path / "saved" / "assets.extra" / "tf_ecg.json").read_text())
        assert metadata["weights"]["published_file"] is True  # the preset's sha256 matched
    finally:
        server.close()


def test_a_wrong_hash_is_kept_aside_and_an_unknown_one_recorded(cache, glucose_bytes, capsys):
    server = WeightServer({"/w.pth": glucose_bytes[:-1] + b"\x00"})
    try:
        with pytest.raises(WeightFileError, match=r"sha256 [0-9a-f]{64} where 0+ is expected: the file is kept aside"):
            fetch_weights(f"{server.url}/w.pth", "w.pth", "0" * 64, progress=False)
        assert (cache / "w.pth.rejected").is_file() and not (cache / "w.pth").exists()
        path = fetch_weights(f"{server.url}/w.pth", "x.pth", progress=False)  # no hash known: recorded
        assert "no published sha256 yet; recorded" in capsys.readouterr().out
        recorded = json.loads((cache / "recorded_sha256.json").read_text())
        assert recorded[f"{server.url}/w.pth"] == hashlib.sha256(path.read_bytes()).hexdigest()
    finally:
        server.close()


def test_an_archive_is_unpacked_and_one_without_the_file_refused(cache, glucose_bytes):
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("model/model.hdf5", glucose_bytes)
    wrong = io.BytesIO()
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr("model/readme.txt", b"nothing")
    server = WeightServer({"/model.zip": packed.getvalue(), "/wrong.zip": wrong.getvalue()})
    try:
        path = fetch_weights(f"{server.url}/model.zip", "model.hdf5", hashlib.sha256(glucose_bytes).hexdigest(),
                             member="model/model.hdf5", progress=False)
        assert path.read_bytes() == glucose_bytes and not list(cache.glob("*.partial"))
        with pytest.raises(WeightFileError, match=r"the archive has no 'model/model.hdf5' \(it has \['model/readme.txt'\]\)"):
            fetch_weights(f"{server.url}/wrong.zip", "other.hdf5", member="model/model.hdf5", progress=False)
    finally:
        server.close()


def test_no_server_and_no_writable_cache_are_one_line(cache, tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.hdf5"
    assert main(["export", "--preset", "ribeiro_code", "--weights", url, "--out", str(tmp_path / "never")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"tf-ecg: error: {url}: cannot download (ConnectionError") and \
        error.endswith(f"put the file there by hand: {cache}") and "\n" not in error
    assert not (tmp_path / "never").exists()
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    monkeypatch.setenv("TF_ECG_CACHE", str(not_a_folder))
    with pytest.raises(WeightFileError, match="the weight cache is not writable"):
        fetch_weights(url, "model.hdf5", progress=False)
