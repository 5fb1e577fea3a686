import json


def sse_events(response) -> list[tuple[str, dict]]:
    """Read a whole SSE response into (event, data) pairs."""
    body = b"".join(response.streaming_content).decode()
    return parse_sse(body)


def parse_sse(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if name:
            events.append((name, data))
    return events


def make_model(client, url: str, **overrides) -> dict:
    body = {"model_name": "vision-model", "model_url": url, "api_key": "sk-test-000000000000abcd",
            "temperature": 0.3, "top_P": 0.8, "max_length": 256, "top_K": 3, "system_prompt": "You are LAYRA.",
            "select": True}
    body.update(overrides)
    response = client.post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def make_conversation(client, name: str = "Chat") -> str:
    response = client.post("/api/v1/conversations/", {"conversation_name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["conversation_id"]


def ask(client, conversation_id: str, question: str, **extra):
    return client.post(f"/api/v1/conversations/{conversation_id}/messages", {"question": question, **extra},
                       format="json")


def ask_json(client, conversation_id: str, question: str, **extra):
    return client.post(f"/api/v1/conversations/{conversation_id}/messages?stream=false",
                       {"question": question, **extra}, format="json")
