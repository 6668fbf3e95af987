"""One BLAS thread for dso's batched numpy work.

The batched power flow multiplies many small matrices. OpenBLAS's worker threads cost more
than they give there: between calls they spin, and on a 2-core machine shared with other
work they take the core that the elementwise steps need (measured 3-5x slower batches).
:func:`single_blas_thread` limits BLAS to one thread for a block of work (threadpoolctl);
nested uses cost nothing. Not thread-safe: dso runs its numpy work on one Python thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController


class _BlasLimiter:
    """Lazily created threadpool controller plus a nesting depth."""

    def __init__(self) -> None:
        self.controller: ThreadpoolController | None = None
        self.depth = 0


_LIMITER = _BlasLimiter()


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread (re-entrant; restores the previous setting)."""
    if _LIMITER.depth:
        yield
        return
    if _LIMITER.controller is None:
        _LIMITER.controller = ThreadpoolController()
    with _LIMITER.controller.limit(limits=1, user_api="blas"):
        _LIMITER.depth += 1
        try:
            yield
        finally:
            _LIMITER.depth -= 1
