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


def convex(*, dense: dict[str, float], lexical: dict[str, float], lexical_weight: float) -> dict[str, float]:
    """{page key: score in [0, 1]}: a convex combination of each side's min-max normalised scores (a page a side
    did not propose scores 0 there). Unlike RRF it keeps how far ahead a page is on a side, which matters when one
    side is much stronger than the other (Bruch et al., "An Analysis of Fusion Functions for Hybrid Retrieval",
    2023). Scaling BM25 from 0 instead of from the list's last score was measured too and did worse at equal
    weights (embeddings/README.md)."""
    def normalised(scores: dict[str, float]) -> dict[str, float]:
        if not scores:
            return {}
        low, high = min(scores.values()), max(scores.values())
        return {key: (value - low) / (high - low) if high > low else 1.0 for key, value in scores.items()}

    d, lex = normalised(dense), normalised(lexical)
    return {key: (1 - lexical_weight) * d.get(key, 0.0) + lexical_weight * lex.get(key, 0.0)
            for key in {*d, *lex}}
