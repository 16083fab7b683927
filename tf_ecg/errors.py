"""Errors that name the offending file and the problem.

Everything the library raises because of its *input* (a bad file, an unknown model or
source name, an invalid recipe, an output path it must not touch) is a
:class:`TfEcgInputError`; the command line prints those as one line and exits with 2.
Any other exception is a bug in tf_ecg (or a dependency) and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class TfEcgInputError(ValueError):
    """Bad input: the message starts with the file it is about (when there is one)."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ECGDataError(TfEcgInputError):
    """Bad input data: a missing or truncated file, wrong rate, NaNs, wrong lead count..."""


class WeightFileError(TfEcgInputError):
    """A weight file that cannot be read or does not match the model it is loaded into."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(path, problem)


class RecipeError(TfEcgInputError):
    """A recipe (or an override of it) that is not valid: unknown key, wrong type, missing key."""


class OutputPathError(TfEcgInputError):
    """An output path tf_ecg refuses to write to (it would replace what it did not write)."""


class RunError(TfEcgInputError):
    """A run directory that does not fit the request (unfinished, or made by another recipe)."""


class BackendError(TfEcgInputError):
    """A Keras backend (``KERAS_BACKEND``) that tf_ecg does not run on, or that is not installed."""


class ImplausibleInputWarning(UserWarning):
    """Input that is readable but unlikely to be what it claims (e.g. an amplitude that no
    surface ECG has in the declared units); the message names the file and the likely fix."""
