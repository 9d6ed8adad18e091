"""How many micro-tiles one work-item of the packed GEMM kernels takes, per launch
(``sgemm_packed_out``, ``conv_implicit``).

The tile parameters MBLK x NBLK (``tile_params``) size a work-item for big products: its
B micro-panels are reused by MBLK row panels, its A panels by NBLK column panels. On a
small grid that leaves PoCL's workers (one per core) idle: Inception's 1x1 480 -> 16 at
14x14 is 4 work-items for 2 threads, EfficientNet's 1x1 1152 -> 192 at 7x7 also 4. The blocks are
loop bounds, not compiled in, so each launch halves them (columns first: the B panel
reuse across rows matters more) until the grid keeps every worker busy. The sums are the
same whatever the blocks (each output's K order is fixed), so results stay bitwise.
"""

from __future__ import annotations

# Work-items per compute unit wanted: PoCL hands work-groups to its workers in turn, so
# with a few per worker the last, partial blocks even out.
ITEMS_PER_UNIT = 4


def blocks(m: int, n: int, batch: int, mr: int, mblk: int, nblk: int,
           want: int) -> tuple[int, int]:
    """(mblk, nblk) for an m x n product (``batch`` of them in the grid) with micro-tiles
    of ``mr`` x 16: at most the tuned ``mblk`` x ``nblk``, halved while the grid has fewer
    than ``want`` work-items (``ITEMS_PER_UNIT`` per compute unit)."""
    row_panels, col_panels = -(-m // mr), -(-n // 16)
    while -(-row_panels // mblk) * -(-col_panels // nblk) * batch < want:
        if _splits(col_panels, nblk):
            nblk //= 2
        elif _splits(row_panels, mblk):
            mblk //= 2
        else:
            break
    return mblk, nblk


def _splits(panels: int, blk: int) -> bool:
    """Whether halving ``blk`` gives ``panels`` more blocks."""
    return blk > 1 and -(-panels // (blk // 2)) > -(-panels // blk)

def grid(m: int, n: int, mr: int, mblk: int, nblk: int) -> tuple[int, int]:
    """(row blocks, column blocks) of the launch for ``blocks``' choice."""
    return -(-m // (mr * mblk)), -(-n // (16 * nblk))
