"""The README and docs/ stay true: their Python blocks run, and the README's numbers are current."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(page):
    """Each page's ```python blocks run in order, in one namespace, as a reader would."""
    namespace = {}
    for i, block in enumerate(python_blocks(page)):
        try:
            exec(compile(block, f"{page.name} block {i + 1}", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message is the point
            pytest.fail(f"{page.name} python block {i + 1} failed: {type(e).__name__}: {e}")


def test_readme_has_python_blocks():
    assert python_blocks(ROOT / "README.md")


def test_readme_quick_start_is_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_readme_line_counts_are_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    counted = re.findall(r"\[(\w+\.py)\]\(minigru/cells/\1\): (\d+)", text)
    assert len(counted) == 8, counted
    for name, lines in counted:
        actual = len((ROOT / "minigru" / "cells" / name).read_text(encoding="utf-8").splitlines())
        assert int(lines) == actual, f"README says {name} has {lines} lines, it has {actual}"
