"""The core is platform-neutral: no branch on "wecom" / "dingtalk" outside bot/ and integrations/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PLATFORMS = {"wecom", "dingtalk"}


def platform_branches(source: str) -> list[int]:
    """Line numbers of comparisons against a platform name (==, !=, in)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in PLATFORMS for o in operands):
                lines.append(node.lineno)
    return lines


def test_handlers_and_domain_never_branch_on_the_platform() -> None:
    found = {
        str(path.relative_to(ROOT)): platform_branches(path.read_text(encoding="utf-8"))
        for folder in ("handlers", "domain")
        for path in sorted((ROOT / folder).glob("**/*.py"))
    }
    assert {f: lines for f, lines in found.items() if lines} == {}


def test_the_check_finds_a_platform_branch() -> None:
    assert platform_branches('if platform == "dingtalk":\n    pass\n') == [1]
