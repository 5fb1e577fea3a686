"""The engine driven directly (no worker): every node type, limits, escapes, pauses."""

import pytest

from tests.workflows_helpers import chain, node
from workflows import engine, selectors, services
from workflows.documents import WorkflowRun


def run_graph(user, nodes, edges, *, inputs=None, breakpoints=None, model=None, global_variables=None):
    wf = services.workflow_create(user=user, workflow_name="t", nodes=nodes, edges=edges,
                                  global_variables=global_variables or {})
    run = services.run_create(user=user, wf=wf, inputs=inputs or {}, breakpoints=breakpoints or [])
    engine.run_execute(run_id=run.run_id, resolve_model=(lambda _u, _m: model) if model else None)
    return WorkflowRun.objects.get(run_id=run.run_id)


def events(run_id):
    from workflows.events import events_read

    return [(name, data) for _i, name, data in events_read(run_id=run_id)]


def test_variables_code_condition_and_end_outputs(user):
    nodes = [node("start", "start"), node("v", "variable", assignments={"n": "x * 2", "name": "upper('ab')"}),
             node("c", "code", code="def main(i):\n    print('side')\n    return i['n'] + 1"),
             node("cond", "condition", expression="c > 10 and name == 'AB'"),
             node("big", "variable", assignments={"verdict": "'big'"}),
             node("small", "variable", assignments={"verdict": "'small'"}),
             node("end", "end", outputs={"verdict": "verdict", "value": "c"})]
    edges = [{"source": "start", "target": "v"}, {"source": "v", "target": "c"}, {"source": "c", "target": "cond"},
             {"source": "cond", "target": "big", "label": "true"},
             {"source": "cond", "target": "small", "label": "false"},
             {"source": "big", "target": "end"}, {"source": "small", "target": "end"}]
    run = run_graph(user, nodes, edges, inputs={"x": 5})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"verdict": "big", "value": 11}
    assert run.completed_nodes == ["start", "v", "c", "cond", "big", "end"]
    names = [n for n, _ in events(run.run_id)]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert ("node_output", {"node_id": "c", "text": "side\n"}) in events(run.run_id)

    run = run_graph(user, nodes, edges, inputs={"x": 1})
    assert run.outputs["verdict"] == "small"


def test_loop_over_items_and_count(user):
    nodes = [node("start", "start"), node("init", "variable", assignments={"acc": "[]"}),
             node("loop", "loop", items="words", item_variable="w", max_iterations=10),
             node("body", "variable", assignments={"acc": "acc + [upper(w) + str(index)]"}),
             node("end", "end", outputs={"acc": "acc"})]
    edges = [{"source": "start", "target": "init"}, {"source": "init", "target": "loop"},
             {"source": "loop", "target": "body", "label": "body"}, {"source": "body", "target": "loop"},
             {"source": "loop", "target": "end", "label": "done"}]
    run = run_graph(user, nodes, edges, inputs={"words": ["a", "b", "c"]})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"acc": ["A0", "B1", "C2"]}

    run = run_graph(user, nodes, edges, inputs={"words": list("abcdefghijklmnop")})
    assert run.status == "failed" and run.error["node_id"] == "loop"
    assert "max_iterations" in run.error["message"]

    nodes[2] = node("loop", "loop", count=4, item_variable="w")
    nodes[3] = node("body", "variable", assignments={"acc": "acc + [w * w]"})
    run = run_graph(user, nodes, edges)
    assert run.outputs == {"acc": [0, 1, 4, 9]}


def test_step_limit_stops_a_long_loop(user, settings):
    settings.WORKFLOW_MAX_STEPS = 20
    nodes = [node("start", "start"), node("loop", "loop", count=100, max_iterations=100),
             node("body", "variable", assignments={"x": "index"}), node("end", "end")]
    edges = [{"source": "start", "target": "loop"}, {"source": "loop", "target": "body", "label": "body"},
             {"source": "body", "target": "loop"}, {"source": "loop", "target": "end", "label": "done"}]
    run = run_graph(user, nodes, edges)
    assert run.status == "failed" and "20 steps" in run.error["message"]


def test_output_size_limit(user, settings):
    settings.WORKFLOW_MAX_OUTPUT_BYTES = 10_000
    nodes, edges = chain(node("start", "start"), node("c", "code", code="result = 'x' * 50000"), node("end", "end"))
    run = run_graph(user, nodes, edges)
    assert run.status == "failed" and run.error["node_id"] == "c" and "exceed" in run.error["message"]


def test_llm_node_streams_tokens_into_events(user, model, llm_server):
    nodes, edges = chain(node("start", "start"),
                         node("llm", "llm", prompt="Summarise {{ doc.title }} please", system_prompt="Be brief."),
                         node("end", "end", outputs={"answer": "llm"}))
    run = run_graph(user, nodes, edges, inputs={"doc": {"title": "Penguins"}}, model=model)
    assert run.status == "succeeded", run.error
    assert run.outputs["answer"].split() == ["Echo:", "Summarise", "Penguins", "please"]
    sent = llm_server.requests[0]
    assert sent["stream"] is True and sent["messages"][0] == {"role": "system", "content": "Be brief."}
    tokens = [d["text"] for n, d in events(run.run_id) if n == "node_output"]
    assert len(tokens) == 4 and "".join(tokens) == run.outputs["answer"]


def test_llm_endpoint_failure_is_a_node_error(user):
    from chat.llm import ResolvedModel
    from tests.fake_llm import refused_url

    dead = ResolvedModel(model_name="m", model_url=refused_url())  # allowlisted by the test run, nobody listens
    nodes, edges = chain(node("start", "start"), node("llm", "llm", prompt="hi"), node("end", "end"))
    run = run_graph(user, nodes, edges, model=dead)
    assert run.status == "failed" and run.error["node_id"] == "llm"
    assert "connect" in run.error["message"].lower()


def test_llm_node_to_a_loopback_endpoint_is_refused(user, llm_server):
    from chat.llm import ResolvedModel

    # The fake's own port, but named "localhost": not the allowlisted URL, and it resolves to loopback.
    model = ResolvedModel(model_name="m", model_url=f"http://localhost:{llm_server.port}/v1")
    nodes, edges = chain(node("start", "start"), node("llm", "llm", prompt="hi"), node("end", "end"))
    run = run_graph(user, nodes, edges, model=model)
    assert run.status == "failed" and run.error["node_id"] == "llm"
    assert "loopback address, which is not allowed" in run.error["message"]
    assert llm_server.requests == []


def test_retrieval_node_and_llm_with_knowledge_base(user, model, llm_server):
    from embeddings.embedders import get_embedder
    from embeddings.services import vectors_replace_file
    from knowledge.documents import File, PageImage
    from knowledge.services import kb_version_bump, knowledge_base_create

    kb = knowledge_base_create(user=user, name="KB")
    texts = ["Emperor penguins huddle through the polar winter", "Quarterly revenue of the spice trade"]
    pages = [PageImage(images_id=f"img{i}", page_number=i + 1, minio_filename=f"p{i}", text=t, has_text=True,
                       width=10, height=10) for i, t in enumerate(texts)]
    File(file_id="f1", knowledge_db_id=kb.knowledge_base_id, username=user.username, filename="a.pdf",
         minio_filename="o/a.pdf", images=pages, status="completed").save()
    vectors = get_embedder().embed_images([None, None], texts=texts)
    vectors_replace_file(knowledge_base_id=kb.knowledge_base_id, username=user.username, file_id="f1",
                         pages=[(f"img{i}", i + 1, v) for i, v in enumerate(vectors)])
    kb_version_bump(knowledge_base_id=kb.knowledge_base_id, embedder=f"{get_embedder().name}:{get_embedder().dim}")

    nodes, edges = chain(node("start", "start"),
                         node("r", "retrieval", query="{{ q }}", knowledge_base_ids=[kb.knowledge_base_id], top_k=1),
                         node("llm", "llm", prompt="{{ q }}", knowledge_base_ids=[kb.knowledge_base_id], top_k=1),
                         node("end", "end", outputs={"page": "r[0].page_number", "text": "r[0].text"}))
    run = run_graph(user, nodes, edges, inputs={"q": "penguins in winter"}, model=model)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"page": 1, "text": texts[0]}
    assert "Emperor penguins" in llm_server.requests[0]["messages"][0]["content"]


def test_human_input_and_breakpoint_pause_and_resume(user):
    nodes, edges = chain(node("start", "start"), node("ask", "human_input", prompt="Name for {{ x }}?",
                                                      variable="name"),
                         node("greet", "variable", assignments={"greeting": "'hi ' + name"}),
                         node("end", "end", outputs={"greeting": "greeting"}))
    run = run_graph(user, nodes, edges, inputs={"x": 1}, breakpoints=["greet"])
    assert run.status == "waiting_input" and run.pending_input["prompt"] == "Name for 1?"
    with pytest.raises(Exception, match="not paused"):
        services.run_input(user=user, run_id=run.run_id, action="continue")
    services.run_input(user=user, run_id=run.run_id, action="answer", value="Ada")  # enqueue waits for commit
    engine.run_execute(run_id=run.run_id)
    run.reload()
    assert run.status == "paused" and run.current_node == "greet"
    services.run_input(user=user, run_id=run.run_id, action="continue")
    engine.run_execute(run_id=run.run_id)
    run.reload()
    assert run.status == "succeeded" and run.outputs == {"greeting": "hi Ada"}


def test_cancel_a_paused_run(user):
    nodes, edges = chain(node("start", "start"), node("ask", "human_input", variable="a"), node("end", "end"))
    run = run_graph(user, nodes, edges)
    services.run_cancel(user=user, run_id=run.run_id)
    run.reload()
    assert run.status == "cancelled"
    assert engine.run_execute(run_id=run.run_id) is None  # nothing left to claim


def test_stuck_run_is_resumed_then_failed_clean(user, settings):
    settings.WORKFLOW_MAX_RESUMES = 1
    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"a": "1"}), node("end", "end"))
    wf = services.workflow_create(user=user, workflow_name="s", nodes=nodes, edges=edges)
    run = services.run_create(user=user, wf=wf, inputs={}, breakpoints=[])
    from datetime import timedelta

    old = engine.now() - timedelta(hours=1)
    WorkflowRun.objects(run_id=run.run_id).update_one(set__status="running", set__heartbeat_at=old)
    assert services.runs_check_stuck() == {"resumed": 1, "failed": 0}  # eager task ran it to the end
    run.reload()
    assert run.status == "succeeded" and run.resumes == 1

    run2 = services.run_create(user=user, wf=wf, inputs={}, breakpoints=[])
    WorkflowRun.objects(run_id=run2.run_id).update_one(set__status="running", set__heartbeat_at=old, set__resumes=1)
    assert services.runs_check_stuck() == {"resumed": 0, "failed": 1}
    run2.reload()
    assert run2.status == "failed" and "worker" in run2.error["message"]


def test_custom_node_is_saved_and_reused(user):
    services.custom_node_save(user=user, name="double", node_type="variable", data={"assignments": {"y": "x * 2"}})
    nodes, edges = chain(node("start", "start"), node("d", "custom", name="double"),
                         node("end", "end", outputs={"y": "y"}))
    run = run_graph(user, nodes, edges, inputs={"x": 21})
    assert run.status == "succeeded" and run.outputs == {"y": 42}
    assert "double" in selectors.custom_nodes_get(user=user)


@pytest.mark.parametrize(("expression", "message"), [
    ("x.__class__", "not allowed"),
    ("name.upper()", "not allowed"),
    ("__import__('os')", "not allowed"),
    ("open('/etc/passwd')", "not allowed"),
    ("(lambda: 1)()", "not allowed"),
    ("[i for i in range(10**9)]", "not allowed"),
    ("'a' * 10**9", "too large"),
])
def test_expression_escapes_are_rejected(user, expression, message):
    from layra.errors import ValidationError
    from workflows import expressions

    with pytest.raises(ValidationError, match=message):
        expressions.evaluate(expression, {"x": 1, "name": "n"})
    nodes, edges = chain(node("start", "start"), node("c", "condition", expression=expression), node("end", "end"))
    edges[-1]["label"] = "true"
    if "10**9" in expression and "*" in expression and "for" not in expression:
        run = run_graph(user, nodes, edges)  # statically fine, fails when evaluated
        assert run.status == "failed" and run.error["node_id"] == "c" and message in run.error["message"]
    else:
        with pytest.raises(ValidationError, match="Node 'c'"):
            services.workflow_create(user=user, workflow_name="x", nodes=nodes, edges=edges)


def test_attribute_access_on_a_non_dict_fails_at_run_time(user):
    nodes, edges = chain(node("start", "start"), node("v", "variable", assignments={"y": "name.real"}),
                         node("end", "end"))
    run = run_graph(user, nodes, edges, inputs={"name": 3})
    assert run.status == "failed" and run.error["node_id"] == "v" and "only dict keys" in run.error["message"]
