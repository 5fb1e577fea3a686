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


def text_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (has a text layer)."""
    objects: list[bytes] = []
    n = len(pages)
    font_num = 3 + 2 * n
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    for i, text in enumerate(pages):
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 18 Tf 40 700 Td ({safe}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font_num} 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
