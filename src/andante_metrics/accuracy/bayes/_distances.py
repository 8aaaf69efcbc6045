"""Blocked Euclidean distances, leave-one-out nearest neighbours and the minimum spanning tree.

Every routine works on square tiles of the ``(N, N)`` distance matrix, so the memory in use is
about ``chunk_size**2`` numbers whatever ``N`` is, and every tile is computed on the device of
the features.

NOTE: the tests run these routines on the CPU only; the CUDA path has not been run yet.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

# Default tile side: 4096 x 4096 float32 distances, 64 MiB.
DEFAULT_CHUNK_SIZE = 4096
# Extra candidates kept per row before the neighbours are re-ranked by distances from
# coordinate differences, so rounding in the matrix-product form cannot swap near ties.
_RERANK_MARGIN = 4


def _tile_distances(rows: torch.Tensor, rows_sq: torch.Tensor, cols: torch.Tensor,
                    cols_sq: torch.Tensor) -> torch.Tensor:
    """Return squared distances ``|r_i - c_j|^2`` from ``|r|^2 + |c|^2 - 2 r.c``."""
    dist = torch.addmm(cols_sq.unsqueeze(0), rows, cols.T, alpha=-2.0)
    return dist.add_(rows_sq.unsqueeze(1))


def _direct_distances(block: torch.Tensor, points: torch.Tensor,
                      candidates: torch.Tensor) -> torch.Tensor:
    """Return float64 ``|block_i - points_c|`` for each row's ``(rows, m)`` candidate indices.

    The distances come from coordinate differences, which do not suffer the cancellation of
    the matrix-product form for close points, and float64 separates near ties that float32
    rounding would merge.
    """
    return torch.cdist(
        block.double().unsqueeze(1), points[candidates].double(),
        compute_mode="donot_use_mm_for_euclid_dist",
    ).squeeze(1)


class _RunningNearest:
    """The ``width`` smallest distances seen so far for every row, with their column indices."""

    def __init__(self, num: int, width: int, device: torch.device) -> None:
        self.width = width
        self.values = torch.full((num, width), float("inf"), device=device)
        self.indices = torch.zeros((num, width), dtype=torch.long, device=device)

    def merge(self, first_row: int, dist: torch.Tensor, first_col: int) -> None:
        """Merge the rows of a tile whose top-left entry is ``(first_row, first_col)``."""
        top = dist.topk(min(self.width, dist.shape[1]), dim=1, largest=False)
        rows = slice(first_row, first_row + dist.shape[0])
        values = torch.cat([self.values[rows], top.values], dim=1)
        indices = torch.cat([self.indices[rows], top.indices + first_col], dim=1)
        best = values.topk(self.width, dim=1, largest=False).indices
        self.values[rows] = values.gather(1, best)
        self.indices[rows] = indices.gather(1, best)


def leave_one_out_neighbors(
    features: torch.Tensor,
    k: int,
    *,
    chunk_size: int | None = None,
    backend: str = "torch",
    progress: bool = False,
) -> torch.Tensor:
    r"""Return the indices of the ``k`` nearest other samples of every sample, nearest first.

    A sample is never its own neighbour, but an exact duplicate at another index is. Distances
    are Euclidean on the float32 features. The torch backend computes each tile above the
    diagonal once and uses it for its rows and, transposed, for its columns, which halves the
    matrix products. It ranks candidates with the matrix-product form
    :math:`|a|^2 + |b|^2 - 2 a \cdot b` and re-ranks the best ``k + 4`` of each row with float64
    distances from coordinate differences. Equal distances go to the smaller index.

    Args:
        features: ``(N, D)`` float tensor, ``N > k``.
        k: number of neighbours.
        chunk_size: side of the square tiles of distances (memory about ``chunk_size**2``
            floats plus ``N * (k + 4)`` kept candidates); ``None`` means 4096.
        backend: ``"torch"`` (any device) or ``"faiss"`` (CPU, needs the faiss package).
        progress: show a progress bar over the tile rows.

    Returns:
        ``(N, k)`` int64 indices on the device of ``features``.
    """
    if backend == "faiss":
        return _faiss_neighbors(features, k)
    num = features.shape[0]
    points = features.float()
    points_sq = points.pow(2).sum(dim=1)
    side = chunk_size or DEFAULT_CHUNK_SIZE
    nearest = _RunningNearest(num, min(num - 1, k + _RERANK_MARGIN), features.device)
    starts = range(0, num, side)
    for row_start in tqdm(starts, desc="k-NN tiles", disable=not progress, leave=False):
        rows = points[row_start : row_start + side]
        for col_start in range(row_start, num, side):
            cols = points[col_start : col_start + side]
            dist = _tile_distances(rows, points_sq[row_start : row_start + side], cols,
                                   points_sq[col_start : col_start + side])
            if col_start == row_start:
                dist.fill_diagonal_(float("inf"))
            nearest.merge(row_start, dist, col_start)
            if col_start != row_start:
                nearest.merge(col_start, dist.T.contiguous(), row_start)

    out = torch.empty(num, k, dtype=torch.long, device=features.device)
    for start in starts:
        # Sort the candidates by index first, then stably by direct distance: equal distances
        # keep the smaller index first, whatever order topk returned them in.
        candidates = nearest.indices[start : start + side].sort(dim=1).values
        direct = _direct_distances(points[start : start + side], points, candidates)
        order = direct.sort(dim=1, stable=True).indices[:, :k]
        out[start : start + side] = candidates.gather(1, order)
    return out


def _faiss_neighbors(features: torch.Tensor, k: int) -> torch.Tensor:
    """Return leave-one-out neighbours from a FAISS exact (flat L2) index on the CPU."""
    import faiss  # optional dependency, checked by the caller

    data = np.ascontiguousarray(features.detach().float().cpu().numpy())
    index = faiss.IndexFlatL2(data.shape[1])
    index.add(data)
    _, found = index.search(data, k + 1)
    own = found == np.arange(len(data))[:, None]
    # A row whose own index was pushed out by duplicates at distance 0 drops its last hit.
    own[~own.any(axis=1), -1] = True
    kept = found[~own].reshape(len(data), k)
    return torch.from_numpy(kept.astype(np.int64)).to(features.device)


def _find_roots(parent: np.ndarray) -> np.ndarray:
    """Return the root of every node of a union-find forest, compressing the paths in place."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent[:] = grand


def minimum_spanning_tree(
    features: torch.Tensor, *, chunk_size: int | None = None, progress: bool = False
) -> torch.Tensor:
    """Return the edges of the Euclidean minimum spanning tree of the rows of ``features``.

    Borůvka's algorithm: each round joins every component to its nearest other component, so
    at most ``log2 N`` rounds of tiled nearest-neighbour search run. Edges are ordered by
    (squared float32 length, smaller index, larger index), so equal lengths are broken the same
    way in every round, and a union-find check skips any edge that would close a cycle, so
    rounding in the lengths cannot break the tree. A zero-length edge between duplicate points
    is an ordinary edge, so duplicates join the tree at length 0
    (``scipy.sparse.csgraph.minimum_spanning_tree`` reads a zero in a dense matrix as a missing
    edge and has to use longer edges instead).

    Args:
        features: ``(N, D)`` float tensor, ``N >= 1``.
        chunk_size: side of the square tiles of distances, as in
            :func:`leave_one_out_neighbors`.
        progress: show a progress bar over the edges found.

    Returns:
        ``(N - 1, 2)`` int64 CPU tensor of edges ``(i, j)`` with ``i < j``.
    """
    num = features.shape[0]
    points = features.float()
    points_sq = points.pow(2).sum(dim=1)
    side = chunk_size or DEFAULT_CHUNK_SIZE
    # With one tile, its distances are computed once and reused by every round.
    single_tile = None
    if num <= side:
        single_tile = _tile_distances(points, points_sq, points, points_sq).clamp_(min=0.0)
    parent = np.arange(num)
    edges: list[tuple[int, int]] = []
    bar = tqdm(total=num - 1, desc="MST edges", disable=not progress, leave=False)
    while len(edges) < num - 1:
        component = torch.from_numpy(_find_roots(parent).copy()).to(features.device)
        best_dist, best_index = _nearest_other_component(points, points_sq, component, side,
                                                         single_tile)
        joined = _join_components(
            component.cpu().numpy(), best_dist.cpu().numpy(), best_index.cpu().numpy(), parent
        )
        edges.extend(joined)
        bar.update(len(joined))
    bar.close()
    return torch.tensor(edges, dtype=torch.long).reshape(-1, 2)


def _nearest_other_component(points: torch.Tensor, points_sq: torch.Tensor,
                             component: torch.Tensor, side: int,
                             single_tile: torch.Tensor | None = None,
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return, per point, the squared distance and index of its nearest point in another component.

    Ties go to the smaller index: ``argmin`` returns the first minimum within a tile, and a
    later tile (larger indices) replaces the running best only when strictly nearer.
    """
    num = len(points)
    best_dist = torch.full((num,), float("inf"), device=points.device)
    best_index = torch.zeros(num, dtype=torch.long, device=points.device)
    for row_start in range(0, num, side):
        row_end = min(num, row_start + side)
        for col_start in range(0, num, side):
            col_end = min(num, col_start + side)
            same = component[row_start:row_end, None] == component[None, col_start:col_end]
            if single_tile is not None:
                dist = single_tile.masked_fill(same, float("inf"))
            else:
                dist = _tile_distances(points[row_start:row_end], points_sq[row_start:row_end],
                                       points[col_start:col_end], points_sq[col_start:col_end])
                dist.clamp_(min=0.0).masked_fill_(same, float("inf"))
            tile_min, tile_arg = dist.min(dim=1)
            nearer = tile_min < best_dist[row_start:row_end]
            best_dist[row_start:row_end] = torch.where(nearer, tile_min,
                                                       best_dist[row_start:row_end])
            best_index[row_start:row_end] = torch.where(nearer, tile_arg + col_start,
                                                        best_index[row_start:row_end])
    return best_dist, best_index


def _join_components(component: np.ndarray, dist: np.ndarray, nearest: np.ndarray,
                     parent: np.ndarray) -> list[tuple[int, int]]:
    """Add the shortest outgoing edge of every component to the union-find forest ``parent``."""
    source = np.arange(len(component))
    low, high = np.minimum(source, nearest), np.maximum(source, nearest)
    # Primary key last: per component, the shortest edge, ties to the smaller index pair.
    order = np.lexsort((high, low, dist, component))
    first = np.ones(len(order), dtype=bool)
    first[1:] = component[order][1:] != component[order][:-1]
    chosen = order[first]
    chosen = chosen[np.lexsort((high[chosen], low[chosen], dist[chosen]))]
    joined = []
    for edge in chosen:
        a, b = int(low[edge]), int(high[edge])
        root_a, root_b = _root(parent, a), _root(parent, b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
            joined.append((a, b))
    return joined


def _root(parent: np.ndarray, node: int) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node
