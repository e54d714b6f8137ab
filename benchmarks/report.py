"""Shared helpers of the benchmark suites: the machine, the load, docs sections."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
_HEADER = (
    "# Benchmarks\n\n"
    "Written by `python -m benchmarks.run`; each section is replaced by its own suite.\n"
)


def cpu_name() -> str:
    """The CPU model, as the OS names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"0.52 0.40 0.31"``."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> str:
    """One line describing this machine and the torch build."""
    import torch

    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    return (
        f"{cpu_name()}, {usable_cpus()} usable CPU(s){memory}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def today() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M")


def update_section(name: str, body: str, title: str, path: Path = DOCS) -> Path:
    """Replace the text between this suite's markers in ``docs/benchmarks.md``.

    The section is appended (with ``title`` as a ``##`` heading) when its markers
    are missing; everything outside them is left as it is, since other suites
    write other sections of the same file.
    """
    from napari_colorize.atomic import atomic_write

    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = path.read_text() if path.exists() else _HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n{block}\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path
