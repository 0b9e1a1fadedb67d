"""scripts/uv_install.py: pip's configuration reaches uv (real pip reads a real config file)."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "uv_install.py"
_spec = importlib.util.spec_from_file_location("uv_install", _SCRIPT)
uv_install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(uv_install)


@pytest.fixture
def pip_env(monkeypatch):
    """No PIP_* variables of the machine's own leak into the test."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_pip_config_file_and_variables_become_uv_options(tmp_path, pip_env):
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\n"
        "index-url = https://index.example/simple\n"
        "extra-index-url = file:///a/simple file:///b/simple\n"
        "find-links = /global/wheels\n"
        "constraint = /machine/constraints.txt\n"
        "cert = /certs/ca.pem\n"
        "[install]\n"
        "find-links = /install/wheels\n"
    )
    pip_env.setenv("PIP_CONFIG_FILE", str(config))
    pip_env.setenv("PIP_DEFAULT_TIMEOUT", "77")

    command, variables = uv_install.uv_command("uv", uv_install.pip_settings(), ["-e", "."])

    assert command == [
        "uv", "pip", "install", "--python", sys.executable,
        "--index-strategy", "unsafe-best-match",
        "--default-index", "https://index.example/simple",
        "--index", "file:///a/simple", "--index", "file:///b/simple",
        "--find-links", "/install/wheels",  # [install] beats [global], as in pip
        "--constraint", "/machine/constraints.txt",
        "-e", ".",
    ]  # fmt: skip
    assert variables == {"SSL_CERT_FILE": "/certs/ca.pem", "UV_HTTP_TIMEOUT": "77"}


def test_a_machine_without_pip_config_passes_nothing(pip_env):
    pip_env.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then reads no config file at all

    command, variables = uv_install.uv_command("uv", uv_install.pip_settings(), [])

    assert command == [
        "uv", "pip", "install", "--python", sys.executable, "--index-strategy", "unsafe-best-match"
    ]  # fmt: skip
    assert variables == {}
