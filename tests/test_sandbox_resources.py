from sandbox.models import Client, Invoice, PhoneNumber


def test_related_objects_are_absolute_urls_of_the_request_host(sandbox_api):
    invoice = sandbox_api.get("invoice/").json()["results"][0]
    assert invoice["url"] == sandbox_api.url("invoice", invoice["id"])
    assert invoice["department"].startswith("http://testserver/sandbox/4/api/0.1/department/")
    assert invoice["client"].startswith("http://testserver/sandbox/4/api/0.1/client/")


def test_invoice_amounts_are_decimal_strings(sandbox_api):
    invoice = sandbox_api.get("invoice/").json()["results"][0]
    for name in ("total", "total_vat", "total_with_vat", "due_sum"):
        assert isinstance(invoice[name], str)
        assert len(invoice[name].split(".")[1]) == 2


def test_it_embeds_a_related_object_with_expose(sandbox_api):
    invoice = sandbox_api.get("invoice/", expose_client="").json()["results"][0]
    assert isinstance(invoice["client"], dict)
    assert {"firstname", "lastname", "email", "phone_numbers"} <= set(invoice["client"])


def test_a_client_lists_its_phone_numbers_as_urls(sandbox_api):
    client = Client.objects.filter(phone_numbers__isnull=False).first()
    body = sandbox_api.get(f"client/{client.pk}/").json()
    number = PhoneNumber.objects.filter(client=client).order_by("id").first()
    assert sandbox_api.url("phonenumber", number.pk) in body["phone_numbers"]
    phone = sandbox_api.get(f"phonenumber/{number.pk}/").json()
    assert phone["phone_number"].startswith("+358")
    assert phone["client"] == sandbox_api.url("client", client.pk)


def test_an_unknown_id_is_not_found(sandbox_api):
    answer = sandbox_api.get("invoice/999999/")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not found."}


def test_another_installations_rows_are_not_found(sandbox_api):
    theirs = Invoice.objects.filter(installation__provet_id=7).first()
    assert sandbox_api.get(f"invoice/{theirs.pk}/").status_code == 404


def test_a_path_without_trailing_slash_moves_permanently(sandbox_api):
    answer = sandbox_api.client.get(
        "/sandbox/4/api/0.1/invoice?page=2", headers=sandbox_api.headers
    )
    assert answer.status_code == 301
    assert answer["Location"] == "http://testserver/sandbox/4/api/0.1/invoice/?page=2"


def test_a_post_without_trailing_slash_moves_permanently_too(sandbox_api):
    answer = sandbox_api.client.post(
        "/sandbox/4/api/0.1/postransaction", "{}", content_type="application/json"
    )
    assert answer.status_code == 301
    assert answer["Location"].endswith("/sandbox/4/api/0.1/postransaction/")


def test_the_api_does_not_create_invoices(sandbox_api):
    answer = sandbox_api.post("invoice/", {})
    assert answer.status_code == 405
