"""Phone numbers, in one place: read as typed at a desk in the practice's country, stored as
Provet stores them (E.164), shown as that country writes them, and searched for however they
were typed.

    e164("040 671 6444", "FI")        -> "+358406716444"
    national("+358406716444", "FI")   -> "040 671 6444"
    search_digits("+358 40 6716444")  -> {"+358406716444", "406716444"}
"""

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Numbers a text message can reach. Where a country's numbering can't tell a mobile number
# from a landline, phonenumbers says "fixed line or mobile", and PayLinks gives it the benefit.
SMS_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}

# What people put between a phone number's digits.
PUNCTUATION = (" ", "-", "(", ")", ".", "/", "\u00a0")


def e164(raw: str, country: str) -> str:
    """A phone number as Provet stores it (+358401234567), read in the practice's country."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("This is not a valid phone number. Write it like %(example)s.")
            % {"example": mobile_example(country)}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def can_take_sms(raw: str, country: str) -> bool:
    """Whether a text message can reach this number: a valid mobile number."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in SMS_TYPES


def mobile_example(country: str) -> str:
    """A mobile number of the country, as its people write it internationally."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "+358 40 1234567"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def national(value: str | None, country: str) -> str:
    """A phone number in the practice country's national format (international for a foreign
    number); as it was given when it doesn't parse."""
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, country or None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(parsed):
        return value
    if parsed.country_code != phonenumbers.country_code_for_region(country):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    if country == "FI":
        # libphonenumber leaves a Finnish subscriber number whole (040 6716444); Finns write it
        # in groups, the last of four digits (040 671 6444).
        prefix, _, rest = national.partition(" ")
        if rest.isdigit() and len(rest) >= 7:
            national = f"{prefix} {rest[:-4]} {rest[-4:]}"
    return national


def search_digits(text: str, country: str) -> set[str]:
    """What to look for in stored numbers stripped of their punctuation, when someone searches
    for `text`: "040 671 6444", "0406716444" and "+358 40 6716444" are one Finnish number.

    A whole number is looked for by its national significant number (406716444), which every
    way of writing it contains; part of a number as typed. Nothing when `text` has no digit."""
    typed = "".join(c for c in text if c not in PUNCTUATION)
    if not typed or not any(c.isdigit() for c in typed):
        return set()
    wanted = {typed}
    try:
        number = phonenumbers.parse(text, country or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        wanted.add(phonenumbers.national_significant_number(number))
    return wanted
