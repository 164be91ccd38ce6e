from sandbox import clock, control


def test_it_answers_429_with_retry_after_past_the_limit(sandbox_api):
    control.set_rate_limits(4, {"GET /department/": 2})
    assert sandbox_api.get("department/").status_code == 200
    assert sandbox_api.get("department/").status_code == 200
    refused = sandbox_api.get("department/")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert "detail" in refused.json()


def test_retry_after_counts_down_to_when_the_oldest_call_leaves_the_window(sandbox_api):
    control.set_rate_limits(4, {"GET /department/": 2})
    sandbox_api.get("department/")
    clock.advance(20)
    sandbox_api.get("department/")
    assert sandbox_api.get("department/")["Retry-After"] == "40"
    clock.advance(40)
    assert sandbox_api.get("department/").status_code == 200


def test_each_endpoint_and_method_has_its_own_window(sandbox_api, northvale):
    control.set_rate_limits(4, {"GET /department/": 1})
    sandbox_api.get("department/")
    assert sandbox_api.get("department/").status_code == 429
    assert sandbox_api.get(f"department/{northvale['department_ids'][0]}/").status_code == 200
    assert sandbox_api.get("client/").status_code == 200


def test_a_big_page_costs_page_size_over_fifty_requests(sandbox_api):
    # GET /invoice/ allows 60 a minute; a page of 1000 counts as 20.
    for _ in range(3):
        assert sandbox_api.get("invoice/", page_size=1000).status_code == 200
    assert sandbox_api.get("invoice/", page_size=1000).status_code == 429
    assert sandbox_api.get("invoice/", page_size=50).status_code == 429


def test_the_reference_table_holds_without_overrides(sandbox_api):
    for _ in range(60):
        assert sandbox_api.get("invoice/", page_size=1).status_code == 200
    assert sandbox_api.get("invoice/", page_size=1).status_code == 429


def test_installations_are_limited_separately(sandbox_api, client, sandbox_installations):
    control.set_rate_limits(4, {"GET /user/": 1})
    sandbox_api.get("user/")
    assert sandbox_api.get("user/").status_code == 429
    control.set_rate_limits(7, {"GET /user/": 1})
    riverside = sandbox_installations[1]
    token = client.post(
        "/sandbox/7/oauth2/token/",
        {
            "grant_type": "client_credentials",
            "client_id": riverside["client_id"],
            "client_secret": riverside["client_secret"],
        },
    ).json()["access_token"]
    answer = client.get("/sandbox/7/api/0.1/user/", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
