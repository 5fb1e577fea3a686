"""The messages sent to the model: system prompt, branch history, page images as data URIs and text layers."""

from chat.documents import Turn
from chat.llm import ResolvedModel
from chat.prompt import image_mime, messages_build

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8


def _page(index, text):
    return {"index": index, "filename": "report.pdf", "page_number": index + 1, "_text": text,
            "_data_uri": f"data:image/png;base64,PAGE{index}"}


def test_pages_go_as_image_parts_with_their_text_layer_after_the_history():
    model = ResolvedModel(model_name="m", model_url="http://x/v1", system_prompt="Be exact.")
    history = [Turn(message_id="1", user_message="Q1", ai_message="A1"),
               Turn(message_id="2", user_message="Q-failed", ai_message="", status="failed")]
    messages = messages_build(model=model, history=history, question="What grew?",
                         pages=[_page(1, "Revenue grew 12%."), _page(2, "")])
    assert messages[0] == {"role": "system", "content": "Be exact."}
    assert messages[1:3] == [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}]
    content = messages[3]["content"]
    assert messages[3]["role"] == "user"
    images = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    assert images == ["data:image/png;base64,PAGE1", "data:image/png;base64,PAGE2"]
    texts = [part["text"] for part in content if part["type"] == "text"]
    assert any("[1] report.pdf, page 2" in t and "Revenue grew 12%." in t for t in texts)
    assert texts[-1] == "Question: What grew?"


def test_default_system_prompt_and_plain_question_without_pages(settings):
    settings.CHAT_DEFAULT_SYSTEM_PROMPT = "Default prompt."
    messages = messages_build(model=ResolvedModel(model_name="m", model_url="http://x/v1"), history=[],
                         question="Hi", pages=[])
    assert messages == [{"role": "system", "content": "Default prompt."}, {"role": "user", "content": "Hi"}]


def test_history_is_capped(settings):
    settings.CHAT_HISTORY_TURNS = 2
    history = [Turn(message_id=str(i), user_message=f"Q{i}", ai_message=f"A{i}") for i in range(5)]
    messages = messages_build(model=ResolvedModel(model_name="m", model_url="http://x/v1", system_prompt="s"),
                         history=history, question="Q", pages=[])
    assert [m["content"] for m in messages[1:]] == ["Q3", "A3", "Q4", "A4", "Q"]


def test_image_mime_by_content():
    assert image_mime(PNG) == "image/png"
    assert image_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
