"""Rank fusion of the dense (MaxSim) and lexical (BM25) result lists.

Weighted reciprocal rank fusion: a page at rank r (1-based) of a list with weight w earns w / (k + r). Ranks,
not raw scores, because MaxSim sums and BM25 scores live on unrelated scales that change with the query's
length. The fused score is divided by its maximum (first in every list), so it lies in (0, 1] and a
`score_threshold` means the same thing for every query.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class FusionWeights:
    dense: float = 1.0
    lexical: float = 1.0
    k: float = 60.0


def rrf(*, dense: list[str], lexical: list[str], weights: FusionWeights) -> dict[str, float]:
    """{page key: fused score in (0, 1]} for every page of either list (each list best first)."""
    scores: dict[str, float] = {}
    for keys, weight in ((dense, weights.dense), (lexical, weights.lexical)):
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (weights.k + rank)
    best = (weights.dense + weights.lexical) / (weights.k + 1)
    return {key: score / best for key, score in scores.items()} if best > 0 else scores
