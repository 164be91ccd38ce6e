import datetime as dt

from clinics.provet.client import format_filter_value
from clinics.provet.errors import ProvetValidationError, flatten_field_errors
from clinics.provet.types import PosTransaction, id_from_url


def test_nested_field_errors_flatten_to_dotted_names():
    errors = {
        "amount": ["Ensure this value is greater than 0."],
        "payment_link_data": {"email": ["Enter a valid email address."]},
        "non_field_errors": ["Invoice is not finalized."],
    }
    assert flatten_field_errors(errors) == {
        "amount": ["Ensure this value is greater than 0."],
        "payment_link_data.email": ["Enter a valid email address."],
        "non_field_errors": ["Invoice is not finalized."],
    }


def test_a_validation_error_keeps_provet_s_field_map():
    error = ProvetValidationError("refused", field_errors={"phone": ["Bad number."]}, status=400)
    assert error.flat_errors() == {"phone": ["Bad number."]}
    assert error.permanent


def test_filter_values_use_provet_s_syntax():
    moment = dt.datetime(2026, 11, 23, 9, 5, tzinfo=dt.UTC)
    assert format_filter_value(moment) == "2026-11-23 09:05+00:00"
    assert format_filter_value([1, 2, 3]) == "[1,2,3]"
    assert format_filter_value(True) == "true"


def test_ids_are_read_from_absolute_urls():
    assert id_from_url("https://provetcloud.com/4/api/0.1/department/12/") == 12
    assert id_from_url(None) is None


def test_a_postransaction_answer_becomes_typed_values():
    # The 201 example of the Provet Pay guide, with its number-typed amount.
    transaction = PosTransaction.from_json(
        {
            "id": 114,
            "amount": 120.5,
            "created": "2024-03-21T16:50:10.268675+02:00",
            "invoice": None,
            "department": "https://provetcloud.com/4/api/0.1/department/1/",
            "payment_link": {
                "external_id": "1ded8e20-b7bd-4073-aff5-30767f0eef1f",
                "url": "https://pay.nordhealth.com/abc",
                "expiration_time": "2024-03-23T14:50:11Z",
                "payment_status": 1,
                "delivery_status": 1,
            },
        }
    )
    assert str(transaction.amount) == "120.5"
    assert transaction.department_id == 1
    assert transaction.payment_link is not None
    assert transaction.payment_link.expiration_time == dt.datetime(
        2024, 3, 23, 14, 50, 11, tzinfo=dt.UTC
    )
