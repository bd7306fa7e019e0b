"""The kernels' on-disk cache is dropped when any kernel source changes (Numba itself only
watches each kernel's own file)."""

from __future__ import annotations

from fastlob._numba import KERNEL_DIR, STAMP_NAME, drop_stale_cache, source_stamp


def _fake_cache(kernel_dir):
    cache = kernel_dir / "__pycache__"
    cache.mkdir(exist_ok=True)
    files = [cache / "flow.advance-1.py311.nbi", cache / "flow.advance-1.py311.1.nbc"]
    for path in files:
        path.write_bytes(b"compiled")
    return files


def test_cache_is_dropped_only_when_a_kernel_source_changes(tmp_path):
    (tmp_path / "flow.py").write_text("def advance(): pass\n")
    (tmp_path / "rng.py").write_text("def draw(): return 1\n")
    files = _fake_cache(tmp_path)
    stamp = source_stamp(tmp_path)
    assert drop_stale_cache(tmp_path, stamp)  # no stamp yet: whatever is there is untrusted
    assert not any(path.exists() for path in files)
    assert (tmp_path / "__pycache__" / STAMP_NAME).read_text() == stamp

    files = _fake_cache(tmp_path)  # compiled from these sources
    assert source_stamp(tmp_path) == stamp
    assert not drop_stale_cache(tmp_path, source_stamp(tmp_path))
    assert all(path.exists() for path in files)

    (tmp_path / "rng.py").write_text("def draw(): return 2\n")  # a callee in another file
    changed = source_stamp(tmp_path)
    assert changed != stamp
    assert drop_stale_cache(tmp_path, changed)
    assert not any(path.exists() for path in files)


def test_the_package_cache_carries_the_stamp_of_its_sources():
    stamp_file = KERNEL_DIR / "__pycache__" / STAMP_NAME
    assert stamp_file.read_text() == source_stamp(KERNEL_DIR)
