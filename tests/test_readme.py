"""The README's code runs as written.

Every ```python block runs, on data the package makes, in a fresh temporary working
directory per README section (under the title or a ``## `` heading): the blocks of a
section run in order in one namespace, so a block may use what an earlier block of its
section defined, never what another section did. A failing block is named by the line of
its opening fence, and its traceback points at its lines in README.md.
"""

import re

import pytest

from conftest import ROOT

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")


def _python_blocks():
    """``(section, [(line of the opening fence, code), ...])`` for each section with python."""
    lines = TEXT.splitlines()
    sections, section, opened = {}, None, None
    for number, line in enumerate(lines, start=1):
        if opened is None and line.startswith("```"):
            opened = number
        elif opened is not None and line == "```":
            if lines[opened - 1] == "```python":
                code = "\n".join(lines[opened:number - 1])
                sections.setdefault(section, []).append((opened, code))
            opened = None
        elif opened is None and re.match(r"#{1,2} ", line):  # the title and the sections
            section = line.lstrip("# ")
    assert opened is None, f"README.md line {opened}: the block is never closed"
    return list(sections.items())


SECTIONS = _python_blocks()


def test_blocks_are_found():
    assert sum(len(blocks) for _, blocks in SECTIONS) >= 5


@pytest.mark.parametrize("section, blocks", SECTIONS, ids=[s for s, _ in SECTIONS])
def test_python_blocks_run(section, blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the blocks write land here
    namespace = {}
    for start, code in blocks:
        # Blank lines before the code give it its README line numbers in a traceback.
        try:
            exec(compile("\n" * start + code, str(README), "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"the block at README.md line {start} failed: {exc!r}") from exc


def test_install_lines_work_from_a_clone():
    # sktdtw is not on a package index: a `pip install` names the clone ('.', '.[extra]').
    installs = re.findall(r"pip install ([^`\n]*)", TEXT)
    assert installs
    assert not [i for i in installs if re.search(r"(^|\s)['\"]?sktdtw\b", i)], installs
    # huggingface_hub 2.x replaced huggingface-cli with hf.
    assert "huggingface-cli" not in TEXT


def test_the_packages_messages_install_what_exists():
    """The errors and docstrings that say what to install name packages of PyPI (av,
    transformers, matplotlib), not extras of an sktdtw that no index holds."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "sktdtw").rglob("*.py")
                 if re.search(r"pip install ['\"]?sktdtw\[", path.read_text(encoding="utf-8"))]
    assert not offenders
