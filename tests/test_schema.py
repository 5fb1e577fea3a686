import pytest
from django.core.management import call_command


def test_openapi_schema_builds_without_warnings(tmp_path, capsys):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    assert out.read_text().startswith("openapi:")


@pytest.mark.django_db
def test_swagger_ui_renders(anon_client):
    response = anon_client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
