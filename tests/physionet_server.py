"""A PhysioNet look-alike on 127.0.0.1 serving ../shared/data, for download tests.

Paths are ``/<slug>/<version>/<file>`` as on physionet.org/files. RECORDS and
ANNOTATORS are generated from the folder when it has none. HTTP range requests are
honoured (wfdb resumes partial files with them).
"""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path


class PhysioNetMirror:
    def __init__(self, databases: dict[str, tuple[Path, list[str]]]):
        """databases: "<slug>/<version>" -> (folder, record names to list in RECORDS)."""
        self.databases = databases
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.requests: list[tuple[str, str, str | None]] = []

    def _content(self, path: str) -> bytes | None:
        for prefix, (folder, records) in self.databases.items():
            if not path.startswith(f"/{prefix}/"):
                continue
            name = path[len(prefix) + 2:]
            if name == "RECORDS":
                return "".join(f"{r}\n" for r in records).encode()
            if name == "ANNOTATORS" and any(folder.glob("*.atr")):
                return b"atr\treference beat, rhythm and signal quality annotations\n"
            file = (folder / name).resolve()
            if file.is_file() and folder.resolve() in file.parents:
                return file.read_bytes()
        return None

    def _handler(self):
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _respond(self, with_body: bool):
                content = mirror._content(self.path)
                mirror.requests.append((self.command, self.path, self.headers.get("Range")))
                if content is None:
                    self.send_error(404)
                    return
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if match:
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else len(content) - 1
                    if start >= len(content):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(content)}")
                        self.end_headers()
                        return
                    body = content[start:end + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(content)}")
                else:
                    body = content
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self):
                self._respond(True)

            def do_HEAD(self):
                self._respond(False)

        return Handler

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
