"""The README's code runs as written and prints what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.DOTALL)


def run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    return out.getvalue()


def test_engine_example_prints_what_the_readme_shows():
    index = next(i for i, (lang, _) in enumerate(BLOCKS) if lang == "python")
    code, shown = BLOCKS[index][1], BLOCKS[index + 1][1]
    assert run(code).strip() == shown.strip()


def test_every_python_example_runs():
    examples = [code for lang, code in BLOCKS if lang == "python"]
    assert len(examples) >= 2
    for code in examples:
        run(code)
