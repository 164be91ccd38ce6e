"""Fixtures for tests that drive the Provet sandbox (owned by the sandbox work)."""
