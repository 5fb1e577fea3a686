import pytest

PASSWORD = "correct-horse-battery"


@pytest.fixture
def login(anon_client):
    """POST /auth/login and return the response."""

    def _login(username, password=PASSWORD, client=None, **extra):
        return (client or anon_client).post("/api/v1/auth/login", {"username": username, "password": password},
                                            format="json", **extra)

    return _login


@pytest.fixture
def tokens(login, user):
    response = login(user.username)
    assert response.status_code == 200, response.content
    return response.json()


def bearer(client, access):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client
