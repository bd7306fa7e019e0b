"""The one place that decides how fastlob's kernels are compiled.

Every kernel is decorated with :func:`njit` from here, so caching and floating-point settings are
decided once: ``cache=True`` (compilation is part of the user's wait; the on-disk cache makes the
second run start at once) and ``fastmath=False`` (matching and accounting must be exact; no kernel
may let the compiler reassociate money arithmetic). ``NUMBA_BOUNDSCHECK=1`` and
``NUMBA_DISABLE_JIT=1`` keep working because nothing here overrides them.

Kernels never allocate, so they are compiled without the runtime's reference counting
(``_nrt=False``): with it, every call increfs and decrefs each array it receives, which cost 5x on
the matching path. Note that the on-disk cache is keyed on the kernel's own source file: after
changing options here, delete the ``__pycache__/*.nbi``/``*.nbc`` files.
"""

from __future__ import annotations

import numba

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
