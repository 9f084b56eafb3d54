"""Packaging metadata: the SPDX licence string (no setuptools deprecation warning), and the
dependencies gulm imports are declared (pyproject.toml and the Makefile's install line)."""
import os
import subprocess
import sys
import tomllib

import gulm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(gulm.__file__)))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)


def test_license_is_an_spdx_string_and_builds_without_deprecation(tmp_path):
    meta = _pyproject()
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]  # the first to read SPDX strings
    env = dict(os.environ, GULM_NO_CUDA="1")
    res = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "license" not in (res.stderr + res.stdout).lower(), res.stderr
    info = next(tmp_path.glob("*.egg-info")) / "PKG-INFO"
    assert "License-Expression: MIT" in info.read_text()


def test_platformdirs_is_declared_where_dependencies_are():
    assert any(d.startswith("platformdirs") for d in _pyproject()["project"]["dependencies"])
    with open(os.path.join(ROOT, "Makefile")) as fh:
        assert " platformdirs " in fh.read()
