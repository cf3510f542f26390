"""The docs and the code speak of the product: no words about how the work was done, no paths of
one machine's folders."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROCESS = re.compile(r"\bsession \d|\bwork period|\bissue #?\d+|\breview mend|/work/|/tmp/gf|/home/\w+/", re.I)


def texts():
    for pattern in ("README.md", "docs/*.md", "src/ganforge/**/*.py", "src/ganforge/**/*.html", "configs/*.yaml",
                    "bench/*.py", "tools/*.py", "Makefile"):
        yield from ROOT.glob(pattern)


def test_no_process_words_or_machine_paths():
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:80]}" for p in texts()
             for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if PROCESS.search(line)]
    assert found == []


def test_the_check_sees_them():
    assert PROCESS.search("measured in session 6 on a Xeon") and PROCESS.search("see issue 23")
    assert PROCESS.search("cloned into /work/main-fresh") and not PROCESS.search("a session cookie")
