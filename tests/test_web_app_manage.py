"""Managing things in the web app, in a real Chromium against the live test server and a real Celery worker:
rename a knowledge base, watch an upload's live progress (its queued state first, while the worker has not
started), delete the knowledge base after a confirmation, restore it from the trash, then delete it for good;
create an API key (shown once), use it and revoke it; change the password and sign in with the new one, delete
the account."""

from chat.tests.helpers import text_pdf
from tests.factories import UserFactory
from tests.web_app_helpers import assert_clean, needs_browser, shot, sign_in

pytestmark = needs_browser

# Records every text the progress cells show, from the moment it is installed (the states may pass quickly).
RECORD_PROGRESS = """() => {
  window.progressSeen = [];
  const note = () => document.querySelectorAll('tr .progress span').forEach((el) => {
    if (window.progressSeen.at(-1) !== el.textContent) window.progressSeen.push(el.textContent);
  });
  note();
  new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def test_knowledge_base_rename_progress_delete_api_keys_and_password(live_server, browser_page, idle_worker):
    from playwright.sync_api import expect

    page = browser_page
    user = UserFactory()
    sign_in(page, live_server.url, user.username)

    # A knowledge base, renamed.
    page.get_by_label("New knowledge base").fill("Drafts")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Drafts")).to_be_visible()
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("Drafts 2026")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Drafts 2026")).to_be_visible()

    # An upload while no worker runs: the file waits, its progress bar and state are shown live.
    page.evaluate(RECORD_PROGRESS)
    page.get_by_label("Files to upload").set_input_files({
        "name": "draft.pdf", "mimeType": "application/pdf",
        "buffer": text_pdf([f"Draft page {n}: terms and conditions." for n in range(1, 5)])})
    row = page.locator('tr[data-file="draft.pdf"]')
    expect(row.get_by_role("progressbar")).to_be_visible()
    expect(row.locator(".progress span")).to_have_text("Waiting for a worker")
    expect(row.get_by_text("Queued", exact=True)).to_be_visible()
    shot(page, "upload-progress")

    # The worker starts: the same row follows the task to its end, then shows the page count.
    idle_worker.start()
    expect(row.get_by_text("Ready")).to_be_visible(timeout=120_000)
    expect(row.locator("td").nth(1)).to_have_text("4")
    expect(row.get_by_role("progressbar")).to_have_count(0)
    seen = page.evaluate("window.progressSeen")
    print("progress states seen:", seen)  # noqa: T201 - how many states a run saw, for the record
    assert seen and seen[0] == "Waiting for a worker", seen

    # Delete from the list: cancelling the confirmation keeps it; confirming deletes it.
    page.get_by_role("link", name="← Knowledge bases").click()
    card = page.locator(".card.kb")
    expect(card).to_contain_text("Drafts 2026")
    expect(card).to_contain_text("1 file · 4 pages")
    page.get_by_role("button", name="Delete Drafts 2026").click()
    dialog = page.get_by_role("dialog", name="Delete knowledge base")
    expect(dialog).to_contain_text("Move “Drafts 2026” and its 1 file to the trash?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(card).to_have_count(1)
    page.get_by_role("button", name="Delete Drafts 2026").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No knowledge base yet")).to_be_visible()

    # The trash: restored, the knowledge base comes back with its file; deleted for good, it is gone.
    page.get_by_role("link", name="Trash").click()
    trash = page.get_by_role("list", name="Deleted items")
    expect(trash.locator("li")).to_have_count(1)
    expect(trash).to_contain_text("Knowledge base Drafts 2026")
    shot(page, "trash")
    page.get_by_role("button", name="Restore Drafts 2026").click()
    expect(page.get_by_role("status")).to_contain_text("“Drafts 2026” restored")
    expect(page.get_by_text("The trash is empty.")).to_be_visible()
    page.get_by_role("link", name="Knowledge bases", exact=True).click()
    expect(card).to_contain_text("1 file · 4 pages")
    page.get_by_role("button", name="Delete Drafts 2026").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No knowledge base yet")).to_be_visible()
    page.get_by_role("link", name="Trash").click()
    page.get_by_role("button", name="Delete Drafts 2026 for good").click()
    page.get_by_role("dialog", name="Delete for good").get_by_role("button", name="Delete for good").click()
    expect(page.get_by_role("status")).to_contain_text("“Drafts 2026” deleted for good")
    expect(page.get_by_text("The trash is empty.")).to_be_visible()

    # API keys: created and shown once, it works; revoked, it no longer does.
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_text("No API key.")).to_be_visible()
    page.get_by_label("Key name").fill("Nightly import")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("code.secret")
    expect(secret).to_be_visible()
    key = secret.text_content().strip()
    keys = page.locator("#keys-title + p + form ~ ul")
    expect(keys.locator("li")).to_have_count(1)
    expect(keys).to_contain_text("Nightly import")
    assert key not in keys.text_content()  # the list shows it masked
    me = f"{live_server.url}/api/v1/auth/me"
    assert page.request.get(me, headers={"X-API-Key": key}).json()["username"] == user.username
    page.get_by_role("button", name="I have saved it").click()
    expect(secret).to_have_count(0)
    shot(page, "account")
    page.get_by_role("button", name="Revoke Nightly import").click()
    page.get_by_role("dialog", name="Revoke API key").get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("No API key.")).to_be_visible()
    assert page.request.get(me, headers={"X-API-Key": key}).status == 401

    # Change the password: a typo in the repeat is said in words; then sign out and in with the new one.
    page.get_by_label("Current password").fill("correct-horse-battery")
    page.get_by_label("New password", exact=True).fill("a-new-long-passphrase-42")
    page.get_by_label("Repeat the new password").fill("a-new-long-passphrase-24")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("The two new passwords differ.")
    page.get_by_label("Repeat the new password").fill("a-new-long-passphrase-42")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server.url, user.username, "a-new-long-passphrase-42")

    # Delete the account: a wrong password is said in words and keeps it; the right one ends the session, and
    # signing in again is refused.
    page.get_by_role("link", name="Account").click()
    form = page.locator("form", has=page.get_by_role("heading", name="Delete account"))
    form.get_by_label("Password").fill("not-my-password")
    form.get_by_label("Type “delete” to confirm").fill("delete")
    form.get_by_role("button", name="Delete my account").click()
    expect(form.get_by_role("alert")).to_contain_text("password")
    form.get_by_label("Password").fill("a-new-long-passphrase-42")
    form.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("a-new-long-passphrase-42")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    assert_clean(page)
