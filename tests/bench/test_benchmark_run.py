"""``python -m benchmarks.run`` runs every suite that writes docs/benchmarks.md (issue 18).

Static checks only (the suites' smoke tests are ``python -m benchmarks.run --quick``
and tests/bench/test_benchmark_any_image.py, tests/bench/test_benchmark_temporal.py).
"""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def run(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ lives beside src/, not installed
    from benchmarks import run

    return run


def _writers() -> dict[str, str]:
    """Module -> the docs section it writes, for every module that writes one."""
    found = {}
    for path in sorted(BENCHMARKS.rglob("*.py")):
        match = re.search(r"update_section\(\s*\"([\w-]+)\"", path.read_text())
        if match:
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[module] = match.group(1)
    return found


def test_every_suite_that_writes_a_section_is_registered(run):
    writers = _writers()
    assert writers, "no suite writes docs/benchmarks.md?"
    for module, section in writers.items():
        assert run.SUITES.get(section) == module, f"{module} writes {section!r}: register it"
    assert set(run.SUITES) == set(writers.values()), "a registered suite writes no section"


def test_one_main_signature_and_options_that_do_not_clash(run):
    parser = run.build_parser()  # argparse raises on two suites adding one option
    for module in run.SUITES.values():
        suite = importlib.import_module(module)
        params = list(inspect.signature(suite.main).parameters)
        assert params == ["args"], f"{module}.main{tuple(params)}: use main(args)"
        assert not hasattr(suite, "build_parser"), f"{module}: options go in add_arguments"
    args = parser.parse_args(["--quick", "--suite", "hints"])
    assert args.hints_model == "beta-punks-hints"
    assert args.gan_models
    assert args.quality_models == ["beta-punks"]


def test_experiments_are_not_suites_and_import_no_private_helpers(run):
    experiments = sorted(p.stem for p in (BENCHMARKS / "experiments").glob("[!_]*.py"))
    assert {"bn_gap", "gan_variants", "gan_averages", "lightness_table"} <= set(experiments)
    assert not any(".experiments." in m for m in run.SUITES.values())
    for path in BENCHMARKS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
                assert "experiments" not in (node.module or ""), (
                    f"{path.name} imports an experiment"
                )
