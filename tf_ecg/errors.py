"""Errors that name the offending file and the problem."""

from __future__ import annotations

from pathlib import Path


class ECGDataError(ValueError):
    """Bad input data: a missing or truncated file, wrong rate, NaNs, wrong lead count...

    The message always starts with the file it is about, so a user can find it.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class WeightFileError(ValueError):
    """A weight file that cannot be read or does not match the model it is loaded into."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
