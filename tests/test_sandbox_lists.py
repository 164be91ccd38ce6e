from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.models import Invoice


def test_a_list_pages_by_fifty_with_absolute_links(sandbox_api):
    body = sandbox_api.get("invoice/").json()
    assert body["count"] == 220
    assert body["num_pages"] == 5
    assert len(body["results"]) == 50
    assert body["previous"] is None
    assert body["next"] == "http://testserver/sandbox/4/api/0.1/invoice/?page=2"


def test_the_last_page_links_back_and_not_forward(sandbox_api):
    body = sandbox_api.get("invoice/", page=5).json()
    assert len(body["results"]) == 20
    assert body["next"] is None
    assert parse_qs(urlsplit(body["previous"]).query)["page"] == ["4"]


def test_page_size_is_capped_at_a_thousand(sandbox_api):
    body = sandbox_api.get("invoice/", page_size=5000).json()
    assert len(body["results"]) == 220
    assert body["num_pages"] == 1


def test_a_page_past_the_end_is_not_found(sandbox_api):
    answer = sandbox_api.get("invoice/", page=99)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Invalid page."}


def test_it_filters_invoices_by_status(sandbox_api):
    body = sandbox_api.get("invoice/", status__is=3, page_size=1000).json()
    expected = Invoice.objects.filter(installation__provet_id=4, status=3).count()
    assert body["count"] == expected
    assert {row["status"] for row in body["results"]} == {3}


def test_it_filters_invoices_by_number(sandbox_api):
    invoice = Invoice.objects.filter(installation__provet_id=4, invoice_number__isnull=False)[3]
    body = sandbox_api.get("invoice/", invoice_number__is=invoice.invoice_number).json()
    assert [row["id"] for row in body["results"]] == [invoice.pk]


def test_it_filters_invoices_by_a_date_range(sandbox_api):
    first = Invoice.objects.filter(installation__provet_id=4).order_by("invoice_date")[100]
    day = first.invoice_date.isoformat()
    body = sandbox_api.get("invoice/", invoice_date__gte=day, invoice_date__lte=day).json()
    assert body["count"] >= 1
    assert {row["invoice_date"] for row in body["results"]} == {day}


def test_it_filters_by_modified_in_provets_datetime_format(sandbox_api):
    newest = Invoice.objects.filter(installation__provet_id=4).order_by("-modified").first()
    since = newest.modified.astimezone().strftime("%Y-%m-%d %H:%M%z")
    since = since[:-2] + ":" + since[-2:]
    body = sandbox_api.get("invoice/", modified__gte=since).json()
    assert newest.pk in [row["id"] for row in body["results"]]


def test_it_explains_an_unencoded_plus_in_a_datetime(sandbox_api):
    answer = sandbox_api.client.get(
        "/sandbox/4/api/0.1/invoice/?modified__gte=2024-01-01 10:00+00:00",
        headers=sandbox_api.headers,
    )
    assert answer.status_code == 400
    assert "modified__gte" in answer.json()


def test_it_filters_by_client_and_follows_relations(sandbox_api):
    invoice = Invoice.objects.filter(installation__provet_id=4).select_related("client")[0]
    by_id = sandbox_api.get("invoice/", client__is=invoice.client_id).json()
    dotted = sandbox_api.get("invoice/", **{"client.id__is": invoice.client_id}).json()
    assert by_id["count"] == dotted["count"] >= 1
    assert {row["client"] for row in by_id["results"]} == {
        sandbox_api.url("client", invoice.client_id)
    }


def test_it_follows_a_relation_to_a_text_field(sandbox_api):
    body = sandbox_api.get("invoice/", **{"client.lastname__icontains": "smi"}).json()
    assert body["count"] >= 1
    for row in body["results"]:
        client = sandbox_api.get(f"client/{row['client'].rstrip('/').split('/')[-1]}/").json()
        assert "smi" in client["lastname"].lower()


def test_it_finds_clients_by_name_and_phone(sandbox_api):
    smiths = sandbox_api.get("client/", lastname__icontains="SMI").json()
    assert smiths["count"] >= 1
    assert all("smi" in row["lastname"].lower() for row in smiths["results"])
    by_phone = sandbox_api.get("client/", phonenumbers__icontains="358400000404").json()
    assert by_phone["count"] == 1


def test_it_lists_the_phone_numbers_of_a_client(sandbox_api):
    client = sandbox_api.get("client/", phonenumbers__icontains="+358").json()["results"][0]
    numbers = sandbox_api.get("phonenumber/", client__is=client["id"]).json()
    assert {row["url"] for row in numbers["results"]} == set(client["phone_numbers"])


def test_filters_combine_with_or_when_asked(sandbox_api):
    drafts = sandbox_api.get("invoice/", status__is=0).json()["count"]
    voided = sandbox_api.get("invoice/", status__is=99).json()["count"]
    both = sandbox_api.get("invoice/", status__is=0, credit_note__is="true").json()["count"]
    either = sandbox_api.client.get(
        "/sandbox/4/api/0.1/invoice/?status__is=0&status__is=99&filter_type=or",
        headers=sandbox_api.headers,
    ).json()["count"]
    assert both == 0
    assert either == drafts + voided


def test_in_and_is_not_and_is_null(sandbox_api):
    ids = list(Invoice.objects.filter(installation__provet_id=4).values_list("id", flat=True)[:3])
    chosen = sandbox_api.get("invoice/", id__in=f"[{','.join(map(str, ids))}]").json()
    assert sorted(row["id"] for row in chosen["results"]) == sorted(ids)
    drafts = sandbox_api.get("invoice/", invoice_number__is_null="true").json()
    assert all(row["invoice_number"] is None for row in drafts["results"])
    not_final = sandbox_api.get("invoice/", status__is_not=3, page_size=1000).json()
    assert all(row["status"] != 3 for row in not_final["results"])


@pytest.mark.parametrize("param", ["colour__is", "status__like", "client.colour__is"])
def test_it_refuses_an_unknown_filter(sandbox_api, param):
    answer = sandbox_api.get("invoice/", **{param: "1"})
    assert answer.status_code == 400
    assert param in answer.json()


def test_postransactions_filter_only_by_id_and_modified(sandbox_api, payable_invoice):
    made = [
        sandbox_api.post("postransaction/", sandbox_api.link_payload(payable_invoice.pk)).json()
        for _ in range(3)
    ]
    wanted = [made[0]["id"], made[2]["id"]]
    body = sandbox_api.get("postransaction/", id__in=f"[{wanted[0]},{wanted[1]}]").json()
    assert [row["id"] for row in body["results"]] == wanted
    assert (
        sandbox_api.get("postransaction/", modified__gte="2000-01-01 00:00+00:00").json()["count"]
        == 3
    )
    assert sandbox_api.get("postransaction/", amount__gte=1).status_code == 400
