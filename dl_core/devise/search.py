"""Cosine nearest neighbours by matrix multiply and top-k, in bounded memory.

Lesson 11 searches with nmslib (an approximate index); for 100k words or a few tens of thousands of images an exact
search is fast enough on a CPU: one (Q, d) x (d, N) product per block. What would not be fine is the whole (Q, N)
score matrix at once (10k image queries x 100k words is 4 GB of float32), so the keys are scanned in chunks, the
queries in blocks, and a running top-k is kept: memory is O(block x chunk + Q x k) whatever Q and N are.

The keys must be unit rows (WordVectors keeps them so; image embeddings come from `DeviseHead.embed`): they are used
as they are, since normalising 100k rows on every search would cost more than the search. The queries are
normalised here, so the scores are cosines.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

MAX_SCORES = 1 << 22  # score-matrix elements held at once per block (16 MB of float32)
MAX_QUERY_BLOCK = 1024


def nearest(queries: torch.Tensor, keys: torch.Tensor, k: int, exclude: Sequence[Iterable[int]] | None = None,
            mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
            max_scores: int = MAX_SCORES) -> tuple[torch.Tensor, torch.Tensor]:
    """The k keys most similar (by cosine) to each query, best first.

    queries (Q, d); keys (N, d), unit rows; k is clamped to the number of candidates.
    exclude: for each query, key indices it may not return (e.g. the words of `king - man + woman` itself).
    mask: (N,) bool, True for the keys that may be returned at all (e.g. only ImageNet's class words).
    bias: (N,) float added to every query's cosine with that key before ranking (and in the scores returned), e.g.
    the seen-class penalty of a calibrated DeViSE head.
    max_scores: how many query-key scores to hold at once (tests make it small to cross chunk boundaries).
    Returns scores (Q, k) and indices (Q, k) into keys. When `exclude` leaves a query fewer than k candidates,
    its last slots hold score -inf and index -1.
    """
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"need queries (Q, d) and keys (N, d), got {tuple(queries.shape)} and {tuple(keys.shape)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    n_queries, n_keys = len(queries), len(keys)
    if mask is not None:
        if mask.shape != (n_keys,) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape ({n_keys},), got {mask.dtype} {tuple(mask.shape)}")
        mask = mask.to(keys.device)
    if bias is not None:
        if bias.shape != (n_keys,):
            raise ValueError(f"bias must have shape ({n_keys},), got {tuple(bias.shape)}")
        bias = bias.to(keys)
    if exclude is not None and len(exclude) != n_queries:
        raise ValueError(f"exclude needs one list of key indices per query: {len(exclude)} for {n_queries} queries")
    k = min(k, n_keys if mask is None else int(mask.sum()))
    if k == 0 or n_queries == 0:  # nothing may be returned (an all-False mask), or nothing was asked
        empty = torch.empty(n_queries, 0, dtype=keys.dtype, device=keys.device)
        return empty, empty.long()

    queries = F.normalize(queries.to(keys), dim=1)
    # The excluded (query, key) pairs as two index tensors, so each chunk can knock its own out in one assignment.
    excluded_query, excluded_key = _pairs(exclude, n_keys, keys.device) if exclude is not None else (None, None)
    block = min(n_queries, MAX_QUERY_BLOCK, max(1, max_scores // k))
    chunk = max(k, max_scores // block)  # at least k keys per chunk, so a chunk alone can fill the top k
    all_scores, all_indices = [], []
    for q_start in range(0, n_queries, block):
        q_end = min(q_start + block, n_queries)
        best_scores = torch.full((q_end - q_start, 0), float("-inf"), dtype=keys.dtype, device=keys.device)
        best_indices = torch.empty((q_end - q_start, 0), dtype=torch.long, device=keys.device)
        for k_start in range(0, n_keys, chunk):
            k_end = min(k_start + chunk, n_keys)
            scores = queries[q_start:q_end] @ keys[k_start:k_end].T  # (block, chunk) cosines
            if bias is not None:
                scores += bias[k_start:k_end]
            if mask is not None:
                scores.masked_fill_(~mask[k_start:k_end], float("-inf"))
            if excluded_query is not None:
                inside = ((excluded_query >= q_start) & (excluded_query < q_end)
                          & (excluded_key >= k_start) & (excluded_key < k_end))
                scores[excluded_query[inside] - q_start, excluded_key[inside] - k_start] = float("-inf")
            top_scores, top_indices = scores.topk(min(k, k_end - k_start), dim=1)  # (block, <=k)
            # Merge with the best so far: 2k candidates per query, of which the k best survive.
            merged_scores = torch.cat([best_scores, top_scores], dim=1)
            merged_indices = torch.cat([best_indices, top_indices + k_start], dim=1)
            best_scores, order = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
            best_indices = merged_indices.gather(1, order)
        all_scores.append(best_scores)
        all_indices.append(best_indices)
    scores, indices = torch.cat(all_scores), torch.cat(all_indices)
    indices[scores == float("-inf")] = -1  # a masked or excluded key is never an answer
    return scores, indices


def _pairs(exclude: Sequence[Iterable[int]], n_keys: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[[3, 5], [], [1]] -> query indices [0, 0, 2] and key indices [3, 5, 1]."""
    query_rows, key_rows = [], []
    for query, keys in enumerate(exclude):
        for key in keys:
            if not 0 <= key < n_keys:
                raise ValueError(f"exclude[{query}] names key {key}, outside 0..{n_keys - 1}")
            query_rows.append(query)
            key_rows.append(int(key))
    return (torch.tensor(query_rows, dtype=torch.long, device=device),
            torch.tensor(key_rows, dtype=torch.long, device=device))
