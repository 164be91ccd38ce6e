from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_fernet_key,
    env_int,
    env_list,
    parse_database_url,
    parse_email_url,
)


def test_booleans_accept_the_usual_words(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False


def test_a_boolean_typo_stops_start_up(monkeypatch):
    monkeypatch.setenv("FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be true or false"):
        env_bool("FLAG", False)


def test_unset_values_fall_back_to_the_default(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env_bool("FLAG", True) is True
    assert env_int("FLAG", 7) == 7
    assert env_list("FLAG", ["a"]) == ["a"]


def test_numbers_are_checked(monkeypatch):
    monkeypatch.setenv("N", "twelve")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 1, minimum=1)


def test_lists_are_comma_separated_and_trimmed(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.com, b.example.com ,")
    assert env_list("HOSTS", []) == ["a.example.com", "b.example.com"]


def test_a_choice_outside_the_allowed_ones_is_refused(monkeypatch):
    monkeypatch.setenv("PAYLINKS_ENV", "prod")
    with pytest.raises(ImproperlyConfigured, match="development, production"):
        env_choice("PAYLINKS_ENV", "development", {"development", "production"})


def test_sqlite_urls_are_relative_to_the_project_unless_absolute():
    base = Path("/srv/paylinks")
    assert parse_database_url("sqlite:///db.sqlite3", base)["NAME"] == "/srv/paylinks/db.sqlite3"
    assert parse_database_url("sqlite:////var/db.sqlite3", base)["NAME"] == "/var/db.sqlite3"


def test_postgres_urls_give_every_part():
    config = parse_database_url(
        "postgres://pay:s%40cret@db.example.com:6543/paylinks?sslmode=require", Path("/")
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("paylinks", "pay", "s@cret")
    assert (config["HOST"], config["PORT"]) == ("db.example.com", "6543")
    assert config["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.parametrize(
    "url",
    ["mysql://x@y/z", "postgres://host/", "sqlite://", "sqlite://db.sqlite3", "postgres://h:x/db"],
)
def test_database_urls_that_cannot_work_are_refused(url):
    with pytest.raises(ImproperlyConfigured):
        parse_database_url(url, Path("/"))


def test_sqlite_makes_writers_wait_for_each_other_instead_of_failing():
    options = parse_database_url("sqlite:///db.sqlite3", Path("/srv"))["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 10
    assert "journal_mode=WAL" in options["init_command"]


@pytest.mark.django_db
def test_the_sqlite_database_runs_in_wal_mode():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("a SQLite setting")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_a_fernet_key_is_checked_when_set(monkeypatch):
    monkeypatch.setenv("KEY", "pcdkPjs5xvZyZmRdbSK-XsbUOgL6uB1ePdz8hIEbdOQ=")
    assert env_fernet_key("KEY") == "pcdkPjs5xvZyZmRdbSK-XsbUOgL6uB1ePdz8hIEbdOQ="
    monkeypatch.setenv("KEY", "hunter2")
    with pytest.raises(ImproperlyConfigured, match="KEY must be a Fernet key") as refused:
        env_fernet_key("KEY")
    assert "hunter2" not in str(refused.value)
    monkeypatch.delenv("KEY")
    assert env_fernet_key("KEY") == ""


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "ssl"),
    [
        ("smtp://localhost", "localhost", 25, False, False),
        ("smtp+tls://mail.example.com", "mail.example.com", 587, True, False),
        ("smtp+ssl://mail.example.com:2465", "mail.example.com", 2465, False, True),
    ],
)
def test_email_urls_say_how_to_reach_the_mail_server(url, host, port, tls, ssl):
    email = parse_email_url(url)
    assert email["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (email["HOST"], email["PORT"], email["USE_TLS"], email["USE_SSL"]) == (
        host,
        port,
        tls,
        ssl,
    )


def test_email_url_credentials_are_unquoted():
    email = parse_email_url("smtp+tls://pay%40links:s%40cret@mail.example.com:587")
    assert (email["USER"], email["PASSWORD"]) == ("pay@links", "s@cret")


def test_a_console_email_url_prints_mail_instead_of_sending_it():
    email = parse_email_url("console://")
    assert email["BACKEND"] == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.parametrize(
    "url", ["mail.example.com", "smtps://mail.example.com", "smtp://", "smtp://h:x"]
)
def test_email_urls_that_cannot_work_are_refused(url):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        parse_email_url(url)
