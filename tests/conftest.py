"""Fixtures of the whole suite."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def _test_cache(tmp_path_factory):
    """FASTA indexes and copies of the suite (and of the CLI subprocesses, which inherit the
    environment) go to a temporary GULM_CACHE, not to the user's cache directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GULM_CACHE", str(tmp_path_factory.mktemp("gulm_cache")))
        yield


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.strip().splitlines() if line.strip() and not line.startswith("gulm: using ")]


@pytest.fixture
def error_lines():
    """The non-blank lines of a command's stderr other than the thread-count notice ("gulm: using N
    CPU threads ...", printed when other jobs keep the CPUs busy), which is information and not part
    of an error."""
    return _error_lines
