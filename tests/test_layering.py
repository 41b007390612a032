"""Import directions: upstream never reaches downstream, and production code never needs the simulator."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    """Return, for every module file under PACKAGE, the top-level names of what it imports (lazy imports too)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_streams_imports_nothing_from_the_browser_side():
    # The worker process composes both sides; it lives with the downstream side, so that streams stays a
    # library of connectors and state that knows nothing of boards, rows or pages.
    offenders = {path for path, names in imported_modules("streams").items() if names & {"dashboard", "simulator"}}
    assert offenders == set()


def test_production_code_never_imports_the_simulator():
    allowed = {"dashboard/management/commands/demo.py"}  # The demo runs the simulator beside everything else.
    offenders = {
        path
        for package in ("streams", "dashboard", "dashboard_project")
        for path, names in imported_modules(package).items()
        if "simulator" in names and path not in allowed
    }
    assert offenders == set()


def test_the_browser_side_imports_nothing_from_the_project_package():
    # dashboard_project holds settings and the web server that compose the apps; an app reaching up into it
    # would tie the app to one deployment's wiring.
    # The commands that start the project's web server (serve, and demo, which runs everything in one process).
    allowed = {"dashboard/management/commands/serve.py", "dashboard/management/commands/demo.py"}
    offenders = {
        path
        for path, names in imported_modules("dashboard").items()
        if "dashboard_project" in names and path not in allowed
    }
    assert offenders == set()
