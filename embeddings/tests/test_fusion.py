import pytest

from embeddings.fusion import FusionWeights, rrf


def test_a_page_first_on_both_sides_scores_one_and_order_follows_ranks():
    scores = rrf(dense=["a", "b", "c"], lexical=["a", "c", "d"], weights=FusionWeights())
    assert scores["a"] == pytest.approx(1.0)
    assert scores["c"] > scores["b"]  # 3rd + 2nd beats 2nd alone
    assert scores["b"] > scores["d"] > 0  # a dense 2nd beats a lexical 3rd at equal weights
    assert set(scores) == {"a", "b", "c", "d"}


def test_weights_move_the_balance():
    lexical_heavy = rrf(dense=["a", "b"], lexical=["b", "a"], weights=FusionWeights(dense=1, lexical=3))
    assert lexical_heavy["b"] > lexical_heavy["a"]
    dense_heavy = rrf(dense=["a", "b"], lexical=["b", "a"], weights=FusionWeights(dense=3, lexical=1))
    assert dense_heavy["a"] > dense_heavy["b"]
    assert max(dense_heavy.values()) <= 1.0


def test_one_sided_pages_keep_a_score():
    scores = rrf(dense=["x"], lexical=[], weights=FusionWeights())
    assert 0 < scores["x"] < 1


def test_convex_keeps_the_margin_a_strong_side_has():
    from embeddings.fusion import convex

    dense = {"a": 10.0, "b": 9.9, "c": 2.0}
    lexical = {"c": 30.0, "b": 29.0, "d": 1.0}
    fused = convex(dense=dense, lexical=lexical, lexical_weight=0.5)
    assert max(fused.values()) <= 1.0 and min(fused.values()) >= 0.0
    assert fused["b"] > fused["a"] and fused["b"] > fused["c"]  # near the top of both beats first on one
    assert fused["d"] == 0.0  # last on its only side
    assert fused["a"] == pytest.approx(0.5)  # first on its only side
    only_lexical = convex(dense=dense, lexical=lexical, lexical_weight=1.0)
    assert max(only_lexical, key=only_lexical.get) == "c"
    assert convex(dense={"x": 3.0}, lexical={}, lexical_weight=0.5) == {"x": 0.5}
