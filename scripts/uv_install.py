"""Run `uv pip install ARGS` into this interpreter's environment, from the package sources pip uses.

uv does not read pip's configuration (pip.conf files, PIP_* variables), yet that is where a
machine may say where its CPU torch build lies (find-links), which extra indexes to use, which
constraints apply and which certificates to trust. This reads pip's settings with
`pip config list` and hands them to uv as options; a machine without pip configuration passes
none. uv must be installed beside this interpreter (`pip install uv`).
Usage: python scripts/uv_install.py [uv pip install arguments...]
"""
import ast
import os
import subprocess
import sys

# pip option name -> uv option. pip accepts several space-separated values for each of these.
_UV_OPTION = {
    "index-url": "--default-index",
    "extra-index-url": "--index",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
# pip option names (long and alias) -> uv environment variable, single values.
_UV_VARIABLE = {
    "cert": "SSL_CERT_FILE",
    "timeout": "UV_HTTP_TIMEOUT",
    "default-timeout": "UV_HTTP_TIMEOUT",
}
# pip reads the [global] section, then the [install] section, then PIP_* variables: later wins.
_SECTIONS = ("global", "install", ":env:")


def pip_settings() -> dict[str, str]:
    """pip's effective option values for `pip install`, by option name."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], check=True, capture_output=True, text=True
    ).stdout
    found: dict[str, dict[str, str]] = {section: {} for section in _SECTIONS}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if section in found:
            found[section][name] = ast.literal_eval(value)  # pip prints each value as a repr
    merged: dict[str, str] = {}
    for section in _SECTIONS:
        merged.update(found[section])
    return merged


def uv_command(
    uv_bin: str, settings: dict[str, str], args: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The uv command line and the environment variables that carry pip's settings."""
    command = [uv_bin, "pip", "install", "--python", sys.executable]
    # pip considers every index and takes the best version; uv's default would use only the
    # first index that has a package, and miss pinned versions that only PyPI holds.
    command += ["--index-strategy", "unsafe-best-match"]
    for name, option in _UV_OPTION.items():
        for value in settings.get(name, "").split():
            command += [option, value]
    variables = {_UV_VARIABLE[n]: value for n, value in settings.items() if n in _UV_VARIABLE}
    return command + args, variables


def main() -> int:
    import uv  # installed by bootstrap.sh beside this interpreter

    command, variables = uv_command(uv.find_uv_bin(), pip_settings(), sys.argv[1:])
    return subprocess.run(command, env={**os.environ, **variables}).returncode


if __name__ == "__main__":
    sys.exit(main())
