"""MkDocs hook: figures in the pages come from benchmarks/results/*.json, never typed by hand.

In a page, ``{{ result FILE PATH [FORMAT] }}`` is replaced by the value at the dotted PATH
inside ``benchmarks/results/FILE.json`` (list items by index), formatted with the Python
format spec FORMAT (e.g. ``.1%``, ``.3f``, ``,``). A missing file or path fails the build.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
REFERENCE = re.compile(r"\{\{\s*result\s+(\S+)\s+(\S+)(?:\s+(\S+))?\s*\}\}")


@cache
def _load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"{path}: results file not found")
    return json.loads(path.read_text())


def _value(name: str, dotted: str):
    value = _load(name)
    for key in dotted.split("."):
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ValueError(f"benchmarks/results/{name}.json has no {dotted!r} (failed at {key!r})") from None
    return value


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(match: re.Match) -> str:
        value = _value(match.group(1), match.group(2))
        return format(value, match.group(3)) if match.group(3) else str(value)

    return REFERENCE.sub(replace, markdown)
