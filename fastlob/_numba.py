"""The one place that decides how fastlob's kernels are compiled.

Every kernel is decorated with :func:`njit` from here, so caching and floating-point settings are
decided once: ``cache=True`` (compilation is part of the user's wait; the on-disk cache makes the
second run start at once) and ``fastmath=False`` (matching and accounting must be exact; no kernel
may let the compiler reassociate money arithmetic). ``NUMBA_BOUNDSCHECK=1`` and
``NUMBA_DISABLE_JIT=1`` keep working because nothing here overrides them.

Kernels never allocate, so they are compiled without the runtime's reference counting
(``_nrt=False``): with it, every call increfs and decrefs each array it receives, which cost 5x on
the matching path.

Numba keys a kernel's on-disk cache on its own source file only: a kernel whose callee in another
file changed (``flow.py`` calling ``rng.standard_normal``), or whose options changed here, would
load stale machine code. So on import the cache in ``fastlob/_kernels/__pycache__`` is dropped
whenever the kernels' sources (and this file) differ from those it was built from; the stamp
lives beside it. (A cache elsewhere, under ``NUMBA_CACHE_DIR`` or a read-only install's user
cache, is not checked.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

#: the package of the kernels, whose ``__pycache__`` holds their compiled code
KERNEL_DIR = Path(__file__).parent / "_kernels"
#: the file in that ``__pycache__`` naming the sources the cache was built from
STAMP_NAME = "fastlob-kernels.stamp"


def source_stamp(kernel_dir: Path) -> str:
    """SHA-256 of every ``*.py`` in ``kernel_dir`` (names and contents) and of this file."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(kernel_dir.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale_cache(kernel_dir: Path, stamp: str) -> bool:
    """Delete the Numba cache files (``*.nbi``, ``*.nbc``) in ``kernel_dir/__pycache__`` unless
    its stamp equals ``stamp``, then write ``stamp``. Returns whether files were dropped; a
    directory that cannot be written (a read-only install) is left as it is."""
    cache = kernel_dir / "__pycache__"
    stamp_file = cache / STAMP_NAME
    try:
        if stamp_file.read_text() == stamp:
            return False
    except OSError:
        pass  # no stamp yet
    try:
        for path in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp_file.write_text(stamp)
    except OSError:
        return False
    return True


drop_stale_cache(KERNEL_DIR, source_stamp(KERNEL_DIR))

#: fastmath is off for every kernel: matching and accounting are exact.
FASTMATH = False


def njit(*args, **kwargs):
    """``numba.njit`` with fastlob's defaults (``cache=True``, ``fastmath=False``, ``nogil=True``).

    Use bare (``@njit``) or with extra options (``@njit(parallel=True)``).
    """
    options = {"cache": True, "fastmath": FASTMATH, "nogil": True, "_nrt": False}
    options.update(kwargs)
    if len(args) == 1 and callable(args[0]):
        return numba.njit(**options)(args[0])
    return numba.njit(*args, **options)


prange = numba.prange
