from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, parse_database_url


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


@pytest.mark.parametrize("url", ["mysql://x@y/z", "postgres://host/", "sqlite://"])
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
