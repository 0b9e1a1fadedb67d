"""Progress bars: one place decides whether a stage shows them (params.yaml `project.progress`).

`auto` (the default) shows them when stderr, where tqdm writes, is a terminal and the CI
variable is not set: an interactive `wsss repro` gets bars, CI logs and redirected output do not
fill up with carriage returns. There `auto` prints a progress line instead, at the first update
and then at most every LINE_SECONDS (done/total, rate, ETA, the loss), so a 40-minute training
is not silent. `true` / `false` force bars on or everything off.
"""

from __future__ import annotations

import os
import sys
import time

FALSE_VALUES = ("", "0", "false", "no")
LINE_SECONDS = 30.0  # without a bar, a progress line at least this often while work goes on


def progress_enabled(setting: bool | str) -> bool:
    """Whether bars are shown for a `project.progress` value (true, false or "auto")."""
    if setting != "auto":
        return bool(setting)
    if os.environ.get("CI", "").strip().lower() not in FALSE_VALUES:
        return False
    return sys.stderr.isatty()


def progress_bar(setting: bool | str, iterable=None, *, items_per_step: int | None = None, **kwargs):
    """A tqdm bar over `iterable` (or of `total=`) where the `project.progress` value shows bars;
    progress lines (`ProgressLines`) where `auto` shows none; nothing for `false`.
    ``items_per_step``: images per update (a training batch), for an images/s figure."""
    from tqdm import tqdm

    if progress_enabled(setting):
        return tqdm(iterable, **kwargs)
    if setting == "auto":
        return ProgressLines(iterable, items_per_step=items_per_step, **kwargs)
    return tqdm(iterable, disable=True, **kwargs)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressLines:
    """The part of tqdm's interface the stages use (iterate, update, set_postfix, close, `with`),
    writing a line to stderr at the first update and then at most every ``interval`` seconds:
    ``seeds: 120/334 image (36%), 2.41 image/s, ETA 1m29s``. Rates and ETA count from the first
    line, so the start-up does not skew them."""

    def __init__(self, iterable=None, *, total: int | None = None, initial: int = 0, desc: str = "",
                 unit: str = "it", items_per_step: int | None = None, interval: float | None = None,
                 stream=None, **_ignored):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n = self.initial = initial
        self.desc, self.unit, self.items_per_step = desc, unit, items_per_step
        self.interval = LINE_SECONDS if interval is None else interval
        self.stream = stream
        self.postfix: dict = {}
        self.first: tuple[float, int] | None = None  # (time, n) of the first line: rates count from there,
        self.last_line: float | None = None          # past the start-up (model build, first batch)
        self._written: int | None = None  # n at the last line

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, refresh: bool = True, **values) -> None:  # refresh: tqdm's, nothing to redraw here
        self.postfix = values

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.last_line is None or now - self.last_line >= self.interval:
            self._write(now)

    def close(self) -> None:
        if self.last_line is not None and self.n != self._written:
            self._write(time.monotonic())

    def line(self, now: float) -> str:
        parts = [f"{self.n}/{self.total} {self.unit}" + (f" ({self.n / self.total:.0%})" if self.total else "")
                 if self.total is not None else f"{self.n} {self.unit}"]
        if self.first is not None and self.n > self.first[1] and now > self.first[0]:
            rate = (self.n - self.first[1]) / (now - self.first[0])
            parts.append(f"{rate:.2f} {self.unit}/s" + (f" ({rate * self.items_per_step:.1f} images/s)"
                                                         if self.items_per_step else ""))
            if self.total is not None:
                parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        return f"{self.desc}: " + ", ".join(parts)

    def _write(self, now: float) -> None:
        print(self.line(now), file=self.stream or sys.stderr, flush=True)
        self.last_line, self._written = now, self.n
        self.first = self.first or (now, self.n)
