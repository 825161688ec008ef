"""The README's code runs as written and prints what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_engine_example_prints_what_the_readme_shows():
    blocks = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.DOTALL)
    index = next(i for i, (lang, _) in enumerate(blocks) if lang == "python")
    code, shown = blocks[index][1], blocks[index + 1][1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().strip() == shown.strip()
