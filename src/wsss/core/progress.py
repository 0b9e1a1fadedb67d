"""Progress bars: one place decides whether a stage shows them (params.yaml `project.progress`).

`auto` (the default) shows them when stderr, where tqdm writes, is a terminal and the CI
variable is not set: an interactive `wsss repro` gets bars, CI logs and redirected output do not
fill up with carriage returns. `true` / `false` force them on or off.
"""

from __future__ import annotations

import os
import sys

FALSE_VALUES = ("", "0", "false", "no")


def progress_enabled(setting: bool | str) -> bool:
    """Whether bars are shown for a `project.progress` value (true, false or "auto")."""
    if setting != "auto":
        return bool(setting)
    if os.environ.get("CI", "").strip().lower() not in FALSE_VALUES:
        return False
    return sys.stderr.isatty()


def progress_bar(setting: bool | str, iterable=None, **kwargs):
    """A tqdm bar over `iterable` (or of `total=`), shown as the `project.progress` value says."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not progress_enabled(setting), **kwargs)
