"""The workflows pages in a real Chromium against the live test server and a Celery worker (runs go through the
broker, as in production): import a workflow from a JSON file, see its graph, run it with an input, watch it
stop at a human-input step, answer it and see it finish with its outputs, cancel a second run while it waits,
export it and delete it. Screenshots are saved as artefacts."""

import json
from pathlib import Path

from tests.factories import UserFactory
from tests.web_app_helpers import assert_clean, needs_browser, shot, sign_in

pytestmark = needs_browser

WORKFLOW = {
    "format": "layra-workflow/1",
    "workflow_name": "Colour survey",
    "nodes": [
        {"id": "start", "type": "start", "data": {"inputs": [{"name": "salutation", "default": "Hello"}]}},
        {"id": "ask", "type": "human_input",
         "data": {"prompt": "{{ salutation }} {{ name }}! What is your favourite colour?", "variable": "colour"}},
        {"id": "check", "type": "condition", "data": {"expression": "colour == 'green'"}},
        {"id": "same", "type": "variable", "data": {"assignments": {"verdict": "'Same as mine, ' + name + '.'"}}},
        {"id": "other", "type": "variable", "data": {"assignments": {"verdict": "'I like ' + colour + ' too.'"}}},
        {"id": "end", "type": "end", "data": {"outputs": {"verdict": "verdict"}}},
    ],
    "edges": [
        {"source": "start", "target": "ask"}, {"source": "ask", "target": "check"},
        {"source": "check", "target": "same", "label": "true"},
        {"source": "check", "target": "other", "label": "false"},
        {"source": "same", "target": "end"}, {"source": "other", "target": "end"},
    ],
    "global_variables": {"name": "friend"},
}


def test_run_a_workflow_answer_its_question_and_cancel_a_run(live_server, browser_page, celery_worker):
    from playwright.sync_api import expect

    page = browser_page
    user = UserFactory()
    sign_in(page, live_server.url, user.username)

    # Empty state, then import the exported JSON file; its page shows the graph and a run form.
    page.get_by_role("link", name="Workflows", exact=True).click()
    expect(page.get_by_text("No workflow yet")).to_be_visible()
    page.get_by_label("Workflow file to import").set_input_files(
        {"name": "broken.json", "mimeType": "application/json", "buffer": b"{not json"})
    expect(page.get_by_role("alert")).to_contain_text("broken.json is not a workflow export")
    page.get_by_label("Workflow file to import").set_input_files(  # the API's validation error, in words
        {"name": "empty.json", "mimeType": "application/json", "buffer": b'{"workflow_name": "x", "nodes": []}'})
    expect(page.get_by_role("alert")).to_contain_text("A workflow needs at least one node.")
    page.get_by_label("Workflow file to import").set_input_files(
        {"name": "survey.json", "mimeType": "application/json", "buffer": json.dumps(WORKFLOW).encode()})
    expect(page.get_by_role("heading", name="Colour survey")).to_be_visible()
    graph = page.get_by_role("img", name="Graph of Colour survey: 6 steps, 6 connections.")
    expect(graph).to_be_visible()
    expect(graph.locator("text.edge-label")).to_have_text(["true", "false"])
    expect(page.get_by_text("No run yet")).to_be_visible()
    expect(page.get_by_label("name", exact=True)).to_have_value("friend")  # a global variable's saved value
    expect(page.get_by_label("salutation", exact=True)).to_have_value("Hello")  # the start node's input
    shot(page, "workflow")

    # Run with an input: the run stops at the human-input step and asks its question.
    page.get_by_label("name", exact=True).fill("Ada")
    page.get_by_role("button", name="Run workflow").click()
    status = page.locator(".run-status strong")
    expect(status).to_have_text("Waiting for your answer", timeout=60_000)  # a worker runs it
    answer = page.get_by_label("Hello Ada! What is your favourite colour?")
    expect(answer).to_be_visible()
    steps = page.locator(".run-steps")
    expect(steps.locator('li[data-node="start"] .step-state')).to_have_text("done")
    expect(steps.locator('li[data-node="ask"] .step-state')).to_have_text("waiting for you")
    expect(steps.locator('li[data-node="end"] .step-state')).to_have_text("not started")
    expect(page.locator('.graph g[data-node="ask"]')).to_have_class("node node-human_input state-waiting")
    shot(page, "workflow-run-waiting")

    # The answer resumes the run; the events show each step, the taken branch, and the outputs.
    answer.fill("green")
    answer.press("Enter")  # the keyboard sends it, as in chat
    expect(status).to_have_text("Finished", timeout=60_000)
    expect(page.locator(".outputs")).to_contain_text("Same as mine, Ada.")
    for node, state in (("ask", "done"), ("check", "done"), ("same", "done"), ("other", "not started"),
                        ("end", "done")):
        expect(steps.locator(f'li[data-node="{node}"] .step-state')).to_have_text(state)
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("Run finished.")
    shot(page, "workflow-run")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator(".outputs")).to_be_in_viewport()
    shot(page, "workflow-run-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # A second run, cancelled while it waits for its answer.
    page.get_by_role("link", name="← Colour survey").click()
    expect(page.locator(".run-succeeded")).to_have_text("Finished")
    page.get_by_role("button", name="Run workflow").click()
    expect(status).to_have_text("Waiting for your answer", timeout=60_000)  # a worker runs it
    page.get_by_role("button", name="Cancel run").click()
    expect(status).to_have_text("Cancelled", timeout=60_000)
    expect(page.get_by_label("Hello friend! What is your favourite colour?")).to_have_count(0)
    expect(steps.locator('li[data-node="ask"] .step-state')).to_have_text("stopped")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)

    # The runs list keeps both; export gives the portable JSON back.
    page.get_by_role("link", name="← Colour survey").click()
    expect(page.locator(".run-cancelled")).to_have_text("Cancelled")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
    assert download.value.suggested_filename == "Colour-survey.json"
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["workflow_name"] == "Colour survey" and exported["edges"] == WORKFLOW["edges"]

    # Phone width: the graph fits the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    box = graph.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "workflow-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # Delete from the list, after a confirmation.
    page.get_by_role("link", name="Workflows", exact=True).click()
    page.get_by_role("button", name="Delete Colour survey").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No workflow yet")).to_be_visible()

    # The example a first-time user can start from is a valid workflow with a human-input step.
    page.get_by_role("button", name="Add an example workflow").click()
    expect(page.get_by_role("heading", name="Example: greet someone")).to_be_visible()
    expect(page.get_by_role("img", name="Graph of Example: greet someone: 4 steps, 3 connections.")).to_be_visible()
    page.get_by_role("link", name="← Workflows").click()
    expect(page.get_by_role("link", name="Example: greet someone")).to_be_visible()
    shot(page, "workflows")

    assert_clean(page)
