"""The error tree (service/errors.py) is used everywhere: no bare base-class raise, one stable code per class."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import service
from service.errors import OpsgateError

SERVICE = Path(service.__file__).parent


def _bare_raises(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            called = node.exc.func
            name = called.id if isinstance(called, ast.Name) else getattr(called, "attr", "")
            if name == "OpsgateError":
                lines.append(node.lineno)
    return lines


def _every_error_class() -> list[type[OpsgateError]]:
    for module in pkgutil.walk_packages([str(SERVICE)], prefix="service."):
        if not module.name.endswith("__main__"):  # running it would start the CLI
            importlib.import_module(module.name)
    found: list[type[OpsgateError]] = []
    pending = [OpsgateError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_no_module_raises_the_base_error_bare() -> None:
    bare = {str(path.relative_to(SERVICE)): lines for path in SERVICE.rglob("*.py") if (lines := _bare_raises(path))}
    assert bare == {}


def test_the_ast_check_finds_a_bare_raise(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from service import errors\n\ndef f():\n    raise errors.OpsgateError('x')\n")
    assert _bare_raises(module) == [4]


def test_every_error_class_has_its_own_stable_code() -> None:
    codes: dict[str, list[str]] = {}
    for cls in _every_error_class():
        codes.setdefault(cls.code, []).append(cls.__qualname__)
    assert {code: names for code, names in codes.items() if len(names) > 1} == {}
    assert all(code and code == code.lower() and " " not in code for code in codes)


def test_guardrails_unavailable_is_a_503_with_its_own_code() -> None:
    from service.errors import GuardrailsUnavailable

    assert (GuardrailsUnavailable.status, GuardrailsUnavailable.code) == (503, "guardrails_unavailable")
