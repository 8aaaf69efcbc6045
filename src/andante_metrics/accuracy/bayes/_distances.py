"""Chunked Euclidean distances, leave-one-out nearest neighbours and the minimum spanning tree.

Every routine works on row blocks of the ``(N, N)`` distance matrix, so the memory in use is
about ``chunk_size * N`` numbers whatever ``N`` is, and every block is computed on the device of
the features.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

# Default block budget: 2**24 distances (64 MiB in float32) per block of rows.
_BLOCK_ELEMENTS = 2**24
# Extra float32 candidates kept per row before the neighbours are re-ranked by exact float64
# distances, so rounding in the matrix-product form of the distance cannot swap near ties.
_RERANK_MARGIN = 8


def default_chunk_size(num_samples: int) -> int:
    """Return the number of query rows per block that keeps a block near 2**24 distances."""
    return max(1, _BLOCK_ELEMENTS // max(1, num_samples))


def _squared_distances(block: torch.Tensor, points: torch.Tensor,
                       points_sq: torch.Tensor) -> torch.Tensor:
    """Return ``|block_i - points_j|^2`` from ``|a|^2 + |b|^2 - 2 a.b``, clamped at 0."""
    block_sq = block.pow(2).sum(dim=1, keepdim=True)
    dist = torch.addmm(points_sq.unsqueeze(0), block, points.T, alpha=-2.0)
    return dist.add_(block_sq).clamp_(min=0.0)


def _exact_squared(block: torch.Tensor, points: torch.Tensor,
                   candidates: torch.Tensor) -> torch.Tensor:
    """Return float64 ``|block_i - points_c|^2`` for each row's ``(rows, m)`` candidate indices."""
    diff = block.double().unsqueeze(1) - points[candidates].double()
    return diff.pow(2).sum(dim=2)


def leave_one_out_neighbors(
    features: torch.Tensor,
    k: int,
    *,
    chunk_size: int | None = None,
    backend: str = "torch",
    progress: bool = False,
) -> torch.Tensor:
    """Return the indices of the ``k`` nearest other samples of every sample, nearest first.

    A sample is never its own neighbour, but an exact duplicate at another index is. Distances
    are Euclidean. The torch backend ranks candidates with the float32 matrix-product form and
    re-ranks the best ``k + 8`` of each row with exact float64 differences. Equal distances go to
    the smaller index.

    Args:
        features: ``(N, D)`` float tensor, ``N > k``.
        k: number of neighbours.
        chunk_size: query rows per block (memory is about ``chunk_size * N`` floats); ``None``
            picks about 2**24 distances per block.
        backend: ``"torch"`` (any device) or ``"faiss"`` (CPU, needs the faiss package).
        progress: show a progress bar over the blocks.

    Returns:
        ``(N, k)`` int64 indices on the device of ``features``.
    """
    if backend == "faiss":
        return _faiss_neighbors(features, k)
    num = features.shape[0]
    points = features.float()
    points_sq = points.pow(2).sum(dim=1)
    rows_per_block = chunk_size or default_chunk_size(num)
    width = min(num - 1, k + _RERANK_MARGIN)
    out = torch.empty(num, k, dtype=torch.long, device=features.device)
    starts = range(0, num, rows_per_block)
    for start in tqdm(starts, desc="k-NN blocks", disable=not progress, leave=False):
        block = points[start : start + rows_per_block]
        rows = torch.arange(block.shape[0], device=features.device)
        dist = _squared_distances(block, points, points_sq)
        dist[rows, rows + start] = float("inf")
        candidates = dist.topk(width, dim=1, largest=False).indices
        # Sort the candidates by index first, then stably by exact distance: equal distances
        # keep the smaller index first, whatever order topk returned them in.
        candidates = candidates.sort(dim=1).values
        exact = _exact_squared(block, points, candidates)
        order = exact.sort(dim=1, stable=True).indices[:, :k]
        out[start : start + block.shape[0]] = candidates.gather(1, order)
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
    at most ``log2 N`` rounds of chunked nearest-neighbour search run. Edges are ordered by
    (length, smaller index, larger index), a strict total order, so the tree is unique and the
    rounds never close a cycle. A zero-length edge between duplicate points is an ordinary edge,
    so duplicates never disconnect the tree (``scipy.sparse.csgraph.minimum_spanning_tree`` reads
    a zero in a dense matrix as a missing edge instead).

    Args:
        features: ``(N, D)`` float tensor, ``N >= 1``.
        chunk_size: query rows per block, as in :func:`leave_one_out_neighbors`.
        progress: show a progress bar over the rounds.

    Returns:
        ``(N - 1, 2)`` int64 CPU tensor of edges ``(i, j)`` with ``i < j``.
    """
    num = features.shape[0]
    points = features.float()
    points_sq = points.pow(2).sum(dim=1)
    rows_per_block = chunk_size or default_chunk_size(num)
    parent = np.arange(num)
    edges: list[tuple[int, int]] = []
    bar = tqdm(total=num - 1, desc="MST edges", disable=not progress, leave=False)
    while len(edges) < num - 1:
        component = torch.from_numpy(_find_roots(parent).copy()).to(features.device)
        best_dist = torch.empty(num, dtype=points.dtype, device=features.device)
        best_index = torch.empty(num, dtype=torch.long, device=features.device)
        for start in range(0, num, rows_per_block):
            block = points[start : start + rows_per_block]
            dist = _squared_distances(block, points, points_sq)
            same = component[start : start + block.shape[0]].unsqueeze(1) == component
            dist.masked_fill_(same, float("inf"))
            # argmin returns the first minimum, so ties go to the smaller index.
            nearest = dist.argmin(dim=1)
            best_index[start : start + block.shape[0]] = nearest
            best_dist[start : start + block.shape[0]] = dist.gather(1, nearest[:, None])[:, 0]
        joined = _join_components(
            component.cpu().numpy(), best_dist.cpu().numpy(), best_index.cpu().numpy(), parent
        )
        edges.extend(joined)
        bar.update(len(joined))
    bar.close()
    return torch.tensor(edges, dtype=torch.long).reshape(-1, 2)


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
