"""Fixtures of the whole suite."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def _test_cache(tmp_path_factory):
    """FASTA indexes and copies of the suite (and of the CLI subprocesses, which inherit the
    environment) go to a temporary GULM_CACHE, not to the user's cache directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GULM_CACHE", str(tmp_path_factory.mktemp("gulm_cache")))
        yield
