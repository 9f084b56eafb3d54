"""Fixtures for the gulm.data tests."""
import pytest


@pytest.fixture(autouse=True)
def _no_user_cache(monkeypatch, tmp_path):
    """Keep caches out of the user's home: GULM_CACHE unset, HOME inside tmp_path (the user cache
    directory is then tmp_path/home/.cache/gulm)."""
    monkeypatch.delenv("GULM_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
