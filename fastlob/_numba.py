"""The one place that decides how fastlob's kernels are compiled.

Every kernel is decorated with :func:`njit` from here, so caching and floating-point settings are
decided once: ``cache=True`` (compilation is part of the user's wait; the on-disk cache makes the
second run start at once) and ``fastmath=False`` (matching and accounting must be exact; no kernel
may let the compiler reassociate money arithmetic). ``NUMBA_BOUNDSCHECK=1`` and
``NUMBA_DISABLE_JIT=1`` keep working because nothing here overrides them.

Kernels never allocate, so they are compiled without the runtime's reference counting
(``_nrt=False``): with it, every call increfs and decrefs each array it receives, which dominated
the matching path.

Numba keys a kernel's on-disk cache on its own source file only: a kernel whose callee in another
file changed (``flow.py`` calling ``rng.standard_normal``), or whose options changed here, would
load stale machine code. So on import the cache in ``fastlob/_kernels/__pycache__`` is dropped
whenever the kernels' sources (and this file) differ from those it was built from; the stamp
lives beside it. (A cache elsewhere, under ``NUMBA_CACHE_DIR`` or a read-only install's user
cache, is not checked.)

:func:`prefetch` is the one hardware hint the kernels use: the batched step asks for the cache
lines of an env a few envs ahead while it steps the current one (see ``mm._prefetch_env``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

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


def prefetch(array, index):
    """Ask the CPU to start loading the cache line of ``array[index]``, to be written soon.

    A hint, never an access: it changes no value, raises nothing and faults on no address, so
    ``index`` (an integer, or a tuple of integers with one per dimension) is not checked
    against the bounds or wrapped when negative. Compiled, it is LLVM's ``llvm.prefetch`` with
    write intent and the highest locality (``prefetchw`` on x86-64); as plain Python
    (``NUMBA_DISABLE_JIT=1``) it does nothing.
    """


def _prefetch_indices(index):
    """How many indices ``index`` (a Numba type) holds, or None if it is not an index."""
    if isinstance(index, types.Integer):
        return 1
    if isinstance(index, types.BaseTuple) and all(
        isinstance(t, types.Integer) for t in index.types
    ):
        return len(index.types)
    return None


@intrinsic
def _prefetch_for_write(typingctx, array, index):
    count = _prefetch_indices(index)
    if not isinstance(array, types.Array) or count != array.ndim:
        return None

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        data = context.make_array(array_type)(context, builder, args[0])
        if count == 1:
            indices = [context.cast(builder, args[1], index_type, types.intp)]
        else:
            indices = [
                context.cast(builder, value, value_type, types.intp)
                for value, value_type in zip(
                    cgutils.unpack_tuple(builder, args[1], count), index_type.types, strict=True
                )
            ]
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, data, indices, wraparound=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # llvmlite mangles the name for the pointer type: llvm.prefetch.p0 with LLVM's opaque
        # pointers, llvm.prefetch.p0i8 with the typed pointers of older llvmlite releases
        function = builder.module.declare_intrinsic(
            "llvm.prefetch",
            [byte_pointer],
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
        )
        write, keep_in_all_levels, data_cache = (ir.Constant(i32, v) for v in (1, 3, 1))
        builder.call(
            function,
            [builder.bitcast(pointer, byte_pointer), write, keep_in_all_levels, data_cache],
        )
        return context.get_dummy_value()

    return types.void(array, index), codegen


@overload(prefetch, inline="always")
def _prefetch_overload(array, index):
    if not isinstance(array, types.Array) or _prefetch_indices(index) != array.ndim:
        return None

    def implementation(array, index):
        _prefetch_for_write(array, index)

    return implementation
