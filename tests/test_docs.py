"""The README and docs/ stay true: their Python blocks run, and the README's numbers are current."""

import re
from pathlib import Path

import pytest
from backend_helpers import cuda_runs_here

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def run_python_blocks(page):
    namespace = {}
    for i, block in enumerate(python_blocks(page)):
        try:
            exec(compile(block, f"{page.name} block {i + 1}", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message is the point
            pytest.fail(f"{page.name} python block {i + 1} failed: {type(e).__name__}: {e}")


# pages whose examples need backend="cuda": test_cuda_backend.py runs them (in the simulator)
NEEDS_CUDA = {"cuda.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(page):
    """Each page's ```python blocks run in order, in one namespace, as a reader would."""
    if page.name in NEEDS_CUDA and not cuda_runs_here():
        pytest.skip("needs backend='cuda': run by test_cuda_backend.py (GPU or simulator)")
    run_python_blocks(page)


SOURCES = [p.read_text(encoding="utf-8") for p in (ROOT / "minigru").rglob("*.py")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_quoted_code_is_still_in_the_source(page):
    """```py blocks quote minigru's code verbatim: each must still appear in a source file."""
    for i, block in enumerate(re.findall(r"```py\n(.*?)```", page.read_text(encoding="utf-8"),
                                         flags=re.S)):
        assert any(block.rstrip("\n") in src for src in SOURCES), (
            f"{page.name} quote {i + 1} no longer matches the code:\n{block}")


def test_readme_has_python_blocks():
    assert python_blocks(ROOT / "README.md")


def test_readme_quick_start_is_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert ".[test]" in commands[1]
    if "tests/run_all.py" in commands[1]:             # pytest, and the simulator's file beside it
        runner = (ROOT / "tests" / "run_all.py").read_text(encoding="utf-8")
        assert '"pytest"' in runner and "NUMBA_ENABLE_CUDASIM" in runner
        assert "tests/test_cuda_backend.py" in runner
    else:
        assert "pytest" in commands[1]


COUNTED = re.compile(r"\[(\w+\.py)\]\(minigru/cells/\1\): (\d+)")


def _lines(name):
    return len((ROOT / "minigru" / "cells" / name).read_text(encoding="utf-8").splitlines())


def test_readme_line_counts_are_current():
    counted = COUNTED.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(counted) == 14, counted
    for name, lines in counted:
        assert int(lines) == _lines(name), (
            f"README says {name} has {lines} lines, it has {_lines(name)}: "
            f"run `python tests/test_docs.py` to update the table")


if __name__ == "__main__":  # rewrite the README's line counts
    readme = ROOT / "README.md"
    text = COUNTED.sub(lambda m: f"[{m[1]}](minigru/cells/{m[1]}): {_lines(m[1])}",
                       readme.read_text(encoding="utf-8"))
    readme.write_text(text, encoding="utf-8")
