"""Expression results are capped (integer bits, string and list sizes), refused before the work is done."""

import time

import pytest

from tests.workflows_helpers import node
from workflows import engine, expressions, services
from workflows.documents import WorkflowRun
from workflows.expression_caps import MAX_INT_BITS, MAX_ITEMS, MAX_STR

BIG = "s" * 60_000


def evaluate(expression: str):
    return expressions.evaluate(expression, {"s": BIG, "words": ["w"] * 10_000, "n": 7})


@pytest.mark.parametrize(("expression", "message"), [
    ("((9**999)**999)**3", "Integer result is too large"),
    ("(9**999)**999", "Integer result is too large"),
    ("2 ** 4096", "Integer result is too large"),
    ("(2 ** 4000) * (2 ** 4000)", "Integer result is too large"),
    ("(7 ** 999) * (7 ** 999) * (7 ** 999)", "Integer result is too large"),
    ("-(2 ** 4095) - (2 ** 4095)", "Integer result is too large"),
    ("int('9' * 4000)", "Integer result is too large"),
    ("'a' * 100001", "too large"),
    ("s + s", "String result is too large"),
    ("[0] * 100001", "Repetition result is too large"),
    ("list(range(10000)) * 11", "Repetition result is too large"),
    ("[s] * 100", "Repetition result is too large"),
    ("[words, words, words] * 30", "Repetition result is too large"),
    ("list(s + 'x' * 50000)", "String result is too large"),
    ("'%0100000000d' % 1", "formatting with % is not allowed"),
])
def test_oversized_results_are_refused_quickly(expression, message):
    started = time.perf_counter()
    with pytest.raises(expressions.ExpressionError, match=message):
        evaluate(expression)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(("expression", "check"), [
    ("2 ** 4095", lambda v: v.bit_length() == MAX_INT_BITS),
    ("(2 ** 2000) * (2 ** 2000)", lambda v: v.bit_length() == 4001),
    ("9 ** 999", lambda v: v % 10 == 9),
    ("'a' * 100000", lambda v: len(v) == MAX_STR),
    ("[0] * 100000", lambda v: len(v) == MAX_ITEMS),
    ("len(s + 'x' * 40000)", lambda v: v == MAX_STR),
    ("len(words)", lambda v: v == 10_000),
    ("[s, s, s]", lambda v: len(v) == 3),
    ("2.5 ** 3", lambda v: v == 15.625),
    ("-n * 3", lambda v: v == -21),
])
def test_results_under_the_caps_are_computed(expression, check):
    assert check(evaluate(expression))


def test_a_huge_power_in_a_condition_fails_the_node_fast(user):
    nodes = [node("start", "start"), node("c", "condition", expression="((9**999)**999)**3 > 1"),
             node("yes", "end"), node("no", "end")]
    edges = [{"source": "start", "target": "c"}, {"source": "c", "target": "yes", "label": "true"},
             {"source": "c", "target": "no", "label": "false"}]
    wf = services.workflow_create(user=user, workflow_name="t", nodes=nodes, edges=edges, global_variables={})
    run = services.run_create(user=user, wf=wf, inputs={}, breakpoints=[])
    started = time.perf_counter()
    engine.run_execute(run_id=run.run_id)
    assert time.perf_counter() - started < 2
    run = WorkflowRun.objects.get(run_id=run.run_id)
    assert run.status == "failed" and run.error["node_id"] == "c"
    assert "Integer result is too large" in run.error["message"], run.error
