"""Errors and warnings raised by gulm.data readers.

Every message names the file and, where it applies, the record, the line or the position, so that a
user can go straight to the bad input.
"""
from __future__ import annotations

__all__ = [
    "DataError",
    "FastaError",
    "CompressionError",
    "RecordNotFoundError",
    "RegionError",
    "BedError",
    "LabeledDataError",
    "DataWarning",
    "one_line_warnings",
]


class DataError(ValueError):
    """Base class of the input errors raised by gulm.data."""


class FastaError(DataError):
    """A FASTA file that cannot be read: missing records, bad headers, corrupt compression..."""


class CompressionError(FastaError):
    """A compressed input that cannot be read: an unsupported format, or a name that promises a
    compression its bytes do not have."""


class RecordNotFoundError(DataError, KeyError):
    """A record name that the FASTA file does not hold (also a KeyError, as for a dict)."""

    def __str__(self) -> str:  # KeyError would print the message inside quotes
        return str(self.args[0]) if self.args else ""


class RegionError(DataError):
    """Coordinates outside a record, or a region string that cannot be parsed."""


class BedError(DataError):
    """A malformed BED or GFF line; the message gives file:line."""


class LabeledDataError(DataError):
    """A labeled-sequence table or set that cannot be used (missing column, no rows...)."""


class DataWarning(UserWarning):
    """Input that was read but partly skipped (for instance a FASTA record with no sequence)."""


def one_line_warnings(prefix: str):
    """Shows every warning from now on as one line on stderr, ``{prefix}: warning: ...`` (a
    :class:`DataWarning` without its class name, anything else with it); returns the previous
    ``warnings.showwarning`` for the caller to put back."""
    import sys
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if not issubclass(category, DataWarning):
            text = f"{category.__name__}: {text}"
        print(f"{prefix}: warning: {text}", file=file or sys.stderr, flush=True)

    previous, warnings.showwarning = warnings.showwarning, show
    return previous
