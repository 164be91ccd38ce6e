import base64

from sandbox import clock

TOKEN_URL = "/sandbox/4/oauth2/token/"


def basic(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def fetch_token(client, northvale) -> str:
    answer = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        headers=basic(northvale["client_id"], northvale["client_secret"]),
    )
    assert answer.status_code == 200
    return answer.json()["access_token"]


def test_it_issues_a_ten_hour_bearer_token_for_basic_client_credentials(client, northvale):
    answer = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials", "scope": "restapi"},
        headers=basic(northvale["client_id"], northvale["client_secret"]),
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 36000
    assert body["scope"] == "restapi"
    assert body["access_token"]


def test_it_takes_client_credentials_in_the_form_body_too(client, northvale):
    answer = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": northvale["client_id"],
            "client_secret": northvale["client_secret"],
        },
    )
    assert answer.status_code == 200


def test_it_refuses_a_wrong_secret_as_invalid_client(client, northvale):
    answer = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        headers=basic(northvale["client_id"], "guess"),
    )
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client"}


def test_it_refuses_another_grant_type(client, northvale):
    answer = client.post(
        TOKEN_URL,
        {"grant_type": "password"},
        headers=basic(northvale["client_id"], northvale["client_secret"]),
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "unsupported_grant_type"}


def test_a_bearer_token_opens_the_api(client, northvale):
    token = fetch_token(client, northvale)
    answer = client.get(
        "/sandbox/4/api/0.1/department/", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200


def test_a_bearer_token_expires_after_ten_hours_of_sandbox_time(client, northvale):
    token = fetch_token(client, northvale)
    clock.advance(36000)
    answer = client.get(
        "/sandbox/4/api/0.1/department/", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401
    assert "detail" in answer.json()


def test_a_token_of_another_installation_is_invalid(client, sandbox_installations):
    riverside = sandbox_installations[1]
    token = fetch_token_for(client, riverside)
    answer = client.get(
        "/sandbox/4/api/0.1/department/", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid token."}


def fetch_token_for(client, installation) -> str:
    answer = client.post(
        f"/sandbox/{installation['provet_id']}/oauth2/token/",
        {"grant_type": "client_credentials"},
        headers=basic(installation["client_id"], installation["client_secret"]),
    )
    return answer.json()["access_token"]


def test_the_legacy_token_opens_the_api(client, northvale):
    answer = client.get(
        "/sandbox/4/api/0.1/invoice/",
        headers={"Authorization": f"Token {northvale['legacy_token']}"},
    )
    assert answer.status_code == 200


def test_a_wrong_legacy_token_is_refused(client, northvale):
    answer = client.get(
        "/sandbox/4/api/0.1/invoice/", headers={"Authorization": "Token not-the-key"}
    )
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid token."}


def test_a_request_without_credentials_is_refused(client, northvale):
    answer = client.get("/sandbox/4/api/0.1/invoice/")
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Authentication credentials were not provided."}
