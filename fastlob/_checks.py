"""Argument checks shared by every owner: each raises a clear error naming the argument."""

from __future__ import annotations

import json
import math
import numbers
import os
import stat
from pathlib import Path

#: the largest settings file (a market, study, run, trial or baselines file) read, in bytes
MAX_SETTINGS_BYTES = 4 * 2**20
#: how much of a bad value an error message shows
SHOWN_CHARS = 120


def shown(value) -> str:
    """``repr(value)``, cut to :data:`SHOWN_CHARS` characters for an error message (a list of a
    million numbers is named, not printed)."""
    if isinstance(value, (list, tuple)) and len(value) > SHOWN_CHARS:
        value = value[:SHOWN_CHARS]  # repr of a cut list, not of the whole one
    if isinstance(value, int) and abs(value) > 10**SHOWN_CHARS:
        return f"an integer of {value.bit_length()} bits"  # repr stops at 4300 digits
    try:
        text = repr(value)
    except ValueError:  # such an integer inside a list
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def check_output_file(path, name: str) -> Path:
    """``path`` as a file a command may write, checked before any work: a ValueError naming
    ``name`` if it is a folder or its folder does not exist."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name} {path}: a folder, not a file to write")
    if not path.parent.is_dir():
        raise ValueError(f"{name} {path}: its folder {path.parent} does not exist")
    return path


def write_text_whole(path, text: str) -> None:
    """Write ``path`` whole or not at all: through ``path.tmp``, removed if the write fails."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def key_text(key) -> str:
    """A key for an error message: as it is if printable, else its repr (one line)."""
    return key if isinstance(key, str) and key.isprintable() else repr(key)


def read_settings_text(path, what: str, max_bytes: int = MAX_SETTINGS_BYTES) -> str:
    """The UTF-8 text of a small settings file; a ValueError naming ``path`` (a ``what``) if it
    is not a regular file (a device such as /dev/zero, a folder, a pipe), holds more than
    ``max_bytes`` or is not UTF-8, an OSError (naming it) if it cannot be opened. Reads at most
    ``max_bytes + 1`` bytes whatever the file claims."""
    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file (a {what} is read from a file)")
    if info.st_size > max_bytes:
        raise ValueError(
            f"{path}: {info.st_size} bytes, more than the {max_bytes} a {what} may hold"
        )
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path}: more than the {max_bytes} bytes a {what} may hold")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text, so not a {what} ({err})") from None


def parse_json(text: str, where: str):
    """``json.loads(text)``; a ValueError naming ``where`` if it is not JSON or nests deeper
    than Python's parser goes."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{where}: nested too deeply to be a settings file") from None


def read_json_file(path, what: str, max_bytes: int = MAX_SETTINGS_BYTES):
    """The JSON value of a small settings file (:func:`read_settings_text`, :func:`parse_json`),
    every error naming ``path``."""
    return parse_json(read_settings_text(path, what, max_bytes), str(path))


def check_int(name: str, value, low: int, high: int) -> int:
    """An integer in ``[low, high]`` (bools and floats, NaN included, are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and value != value:  # NaN
            raise ValueError(f"{name} must be an integer in [{low}, {high}], got NaN")
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def check_real(name: str, value, low: float, high: float, *, low_open=False) -> float:
    """A finite real in ``[low, high]`` (or ``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad_low = value <= low if low_open else value < low
    if not math.isfinite(value) or bad_low or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return value


def check_choice(name: str, value, options: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``options`` (an array or any other type is refused,
    not compared element by element); a ``ValueError`` naming ``name`` else."""
    if not (isinstance(value, str) and value in options):
        raise ValueError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def available_memory_bytes() -> int:
    """Memory this machine can give now: ``MemAvailable`` of ``/proc/meminfo``, else the physical
    memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits_memory(name: str, count: int, bytes_each: int, what: str) -> None:
    """Refuse, before allocating, ``count`` items of ``bytes_each`` bytes that this machine's
    available memory cannot hold; the error names ``name`` and both figures."""
    needed = count * bytes_each
    available = available_memory_bytes()
    if needed > available:
        raise ValueError(
            f"{name} = {count} needs {needed / 2**30:.1f} GiB of {what} "
            f"({bytes_each / 2**10:.1f} KiB each), more than the {available / 2**30:.1f} GiB "
            f"of memory available"
        )
