"""The web app in a real Chromium (the system's, driven by Playwright) against the live test server and the fake
LLM: sign in, create a knowledge base, upload two files, add and test a model, ask a question and see the
streamed answer with a citation whose page image opens, regenerate and switch branches, attach a file to the
conversation, stay signed in across a reload (the refresh cookie), search, rename and delete the conversation.
Screenshots of the main pages are saved as artefacts."""

import pytest

from chat.tests.helpers import text_pdf
from tests.factories import UserFactory
from tests.fake_llm import FakeLLM
from tests.web_app_helpers import assert_clean, needs_browser, shot

pytestmark = needs_browser

# Markdown is rendered and HTML in model output is not: the <img onerror> must never reach the page.
FIRST = "The warranty lasts **two years** [^1].\n\n<img src=x onerror=\"document.title='pwned'\">"
SECOND = "Regenerated: the warranty lasts *24 months*."


@pytest.fixture
def fake_llm():
    answers = iter([FIRST, SECOND, "A third answer."])

    def reply(body):  # the model test asks without streaming; chat turns stream
        return next(answers) if body.get("stream") else "pong"

    server = FakeLLM(reply=reply)
    yield server
    server.close()


def test_first_use_from_sign_in_to_a_cited_answer(live_server, browser_page, fake_llm):
    from playwright.sync_api import expect

    page = browser_page
    user = UserFactory()

    # Signed out: every path leads to the sign-in form.
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid")
    shot(page, "sign-in")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()

    # Knowledge bases: empty state, then create one and land on its page.
    expect(page.get_by_role("heading", name="Knowledge bases")).to_be_visible()
    expect(page.get_by_text("No knowledge base yet")).to_be_visible()
    page.get_by_label("New knowledge base").fill("Product manuals")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Product manuals")).to_be_visible()
    expect(page.get_by_text("No files yet")).to_be_visible()

    # Two files at once; both end ready with their page counts.
    page.get_by_label("Files to upload").set_input_files([
        {"name": "warranty.pdf", "mimeType": "application/pdf",
         "buffer": text_pdf(["The warranty lasts two years.", "Returns within 30 days."])},
        {"name": "setup.pdf", "mimeType": "application/pdf", "buffer": text_pdf(["Plug the device in first."])},
    ])
    for name, pages in (("warranty.pdf", "2"), ("setup.pdf", "1")):
        row = page.locator(f'tr[data-file="{name}"]')
        expect(row.get_by_text("Ready")).to_be_visible(timeout=120_000)
        expect(row.locator("td").nth(1)).to_have_text(pages)
    shot(page, "knowledge-base")

    # A file's pages as thumbnails (header-authenticated images shown from blob: URLs).
    page.get_by_role("button", name="Show the pages of warranty.pdf").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("img", name="Thumbnail of warranty.pdf, page 2")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # Models: add the OpenAI-compatible endpoint, test it; the first one becomes the default.
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_text("No model yet")).to_be_visible()
    page.get_by_label("Model name").fill("fake-vision-model")
    page.get_by_label("Base URL").fill(fake_llm.url)
    page.get_by_label("API key").fill("sk-test-000000000000abcd")
    page.get_by_role("button", name="Add model").click()
    expect(page.get_by_text("Default")).to_be_visible()
    page.get_by_role("button", name="Test fake-vision-model").click()
    expect(page.get_by_text("Works: answered in")).to_be_visible()
    shot(page, "models")

    # Chat: a new conversation over the knowledge base, a streamed answer with cited pages.
    page.get_by_role("link", name="Chat").click()
    page.get_by_label("Name (optional)").fill("Warranty questions")
    page.get_by_label("Product manuals").check()
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="Warranty questions")).to_be_visible()
    page.get_by_label("Your question").fill("How long is the warranty?")
    page.get_by_label("Your question").press("Enter")
    answer = page.locator(".bubble.ai").first
    expect(answer.locator("strong")).to_have_text("two years")
    expect(answer.locator(".markdown img")).to_have_count(0)  # the model's <img> is shown as text
    expect(answer).to_contain_text("<img src=x onerror=")
    assert page.title() == "LAYRA"
    citations = answer.locator(".citations .page-card")
    expect(citations.first).to_be_visible()
    assert citations.count() >= 1
    first = citations.first.get_by_role("button")
    label = first.get_attribute("aria-label")
    assert label.startswith("Open ") and ", page " in label
    first.click()
    large = page.get_by_role("dialog").locator("img.page-large")
    expect(large).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=large.element_handle())
    shot(page, "page-image")
    page.get_by_role("button", name="Close").click()
    shot(page, "chat")

    # Regenerate: a second branch; the switcher moves between them.
    page.get_by_role("button", name="Regenerate").click()
    expect(page.locator(".bubble.ai").first).to_contain_text("Regenerated")
    expect(page.get_by_text("2 / 2")).to_be_visible()
    page.get_by_role("button", name="Previous version").click()
    expect(page.get_by_text("1 / 2")).to_be_visible()
    expect(page.locator(".bubble.ai").first.locator("strong")).to_have_text("two years")

    # A file uploaded into the conversation (its temporary knowledge base) is listed with its state.
    page.get_by_label("Files for this conversation").set_input_files(
        {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": text_pdf(["Extended warranty: one more year."])})
    attached = page.get_by_role("region", name="Files in this conversation").locator('li[data-file="notes.pdf"]')
    expect(attached.get_by_text("Ready")).to_be_visible(timeout=120_000)
    page.get_by_role("link", name="Knowledge bases").click()  # a temporary knowledge base is not listed there
    expect(page.get_by_role("link", name="Product manuals")).to_be_visible()
    expect(page.locator(".card.kb")).to_have_count(1)
    page.go_back()

    # A reload keeps the session (silent refresh from the HttpOnly cookie) and the conversation.
    page.reload()
    expect(page.get_by_role("heading", name="Warranty questions")).to_be_visible()
    assert "layra_refresh" not in page.evaluate("document.cookie")

    # Search alone: results as cited pages with snippets.
    page.get_by_role("link", name="Search").click()
    # The knowledge bases to search in load first; Search waits for them (it is disabled until then).
    expect(page.get_by_role("checkbox", name="Product manuals")).to_be_checked()
    page.get_by_label("Search your pages").fill("warranty")
    page.get_by_label("Search your pages").press("Enter")
    expect(page.locator(".results .page-card").first).to_be_visible(timeout=60_000)
    shot(page, "search")

    # Phone width: the menu folds behind a button.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name="Chat").click()
    page.get_by_role("link", name="Warranty questions").click()
    expect(page.get_by_role("heading", name="Warranty questions")).to_be_visible()
    shot(page, "chat-phone")

    # Rename the conversation in a dialog, then delete it after a confirmation.
    page.get_by_role("button", name="Rename Warranty questions").click()
    page.get_by_role("dialog").get_by_label("New name").fill("Warranty, renamed")
    page.get_by_role("dialog").get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="Warranty, renamed")).to_be_visible()
    page.get_by_role("button", name="Delete Warranty, renamed").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No conversation yet.")).to_be_visible()

    # Sign out ends the session: a reload shows the sign-in form again.
    page.set_viewport_size({"width": 1280, "height": 860})
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    assert_clean(page)
