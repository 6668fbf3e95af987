"""One BLAS thread for dso's batched numpy work.

The batched power flow multiplies many small matrices. OpenBLAS's worker threads cost more
than they give there: between calls they spin, and on a 2-core machine shared with other
work they take the core that the elementwise steps need (measured 3-5x slower batches).
:func:`single_blas_thread` limits BLAS to one thread for a block of work (threadpoolctl's
library controllers, found once); a library already at one thread is left alone and nested uses
cost nothing, so a block costs a few native calls (threadpoolctl's ``limit()`` re-reads every
library's full info on each use). Not thread-safe: dso runs its numpy work on one Python thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import LibController, ThreadpoolController


class _BlasLimiter:
    """The BLAS library controllers (found on first use) plus a nesting depth."""

    def __init__(self) -> None:
        self.libs: list[LibController] | None = None
        self.depth = 0


_LIMITER = _BlasLimiter()


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread (re-entrant; restores the previous setting)."""
    if _LIMITER.depth:
        yield
        return
    if _LIMITER.libs is None:
        _LIMITER.libs = ThreadpoolController().select(user_api="blas").lib_controllers
    before = [(lib, lib.get_num_threads()) for lib in _LIMITER.libs]
    changed = [(lib, n) for lib, n in before if n is not None and n != 1]
    for lib, _ in changed:
        lib.set_num_threads(1)
    _LIMITER.depth += 1
    try:
        yield
    finally:
        _LIMITER.depth -= 1
        for lib, n in changed:
            lib.set_num_threads(n)
