"""domain/ is pure Python: the standard library and `transitions`, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).parents[2] / "domain"
ALLOWED = set(sys.stdlib_module_names) | {"transitions", "domain", "__future__"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_imports_only_stdlib_and_transitions() -> None:
    files = sorted(DOMAIN.glob("**/*.py"))
    assert files, "domain/ has no modules"
    offenders = {str(f.relative_to(DOMAIN)): sorted(imported_roots(f) - ALLOWED) for f in files}
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_the_check_itself_catches_an_infrastructure_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy\nfrom aiohttp import web\n", encoding="utf-8")
    assert imported_roots(bad) - ALLOWED == {"sqlalchemy", "aiohttp"}
