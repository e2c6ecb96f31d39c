"""Find user-visible strings and whether each has a Simplified Chinese translation.

Used by ``tests/core/test_i18n.py`` and by ``cardops i18n missing [--write]``, which appends
untranslated strings to the domain's ``locale/zh_CN.po`` for a translator to fill in.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
_CALLS = {"_", "N_", "gettext", "translate", "flash"}
_ERRORS = {
    "CardopsError",
    "ValidationFailed",
    "NotFound",
    "Conflict",
    "InvalidTransition",
    "PermissionDenied",
    "AuthenticationFailed",
}
_TEMPLATE = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _python_strings(path: Path) -> set[str]:
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = _call_name(node)
        first = node.args[0]
        if (
            name in _CALLS | _ERRORS
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            found.add(first.value)
    return found


def _template_strings(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {
        (a or b).encode().decode("unicode_escape") if "\\" in (a or b) else (a or b)
        for a, b in _TEMPLATE.findall(text)
    }


def domain_strings(domain_dir: Path) -> set[str]:
    strings: set[str] = set()
    for path in domain_dir.rglob("*.py"):
        strings |= _python_strings(path)
    for path in domain_dir.rglob("templates/**/*.html"):
        strings |= _template_strings(path)
    return {s for s in strings if s.strip()}


def domains() -> list[Path]:
    return sorted(p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("_"))


def po_path(domain_dir: Path) -> Path:
    return domain_dir / "locale" / "zh_CN.po"


def load_po(domain_dir: Path) -> Catalog:
    path = po_path(domain_dir)
    if not path.exists():
        return Catalog(locale="zh_CN", domain=domain_dir.name)
    with path.open("rb") as handle:
        return read_po(handle, locale="zh_CN")


def missing() -> dict[str, list[str]]:
    """Per domain, the strings no catalog translates."""
    from cardops.core.i18n import catalog

    catalog.cache_clear()
    translated = catalog("zh_CN")
    result: dict[str, list[str]] = {}
    for domain_dir in domains():
        lacking = sorted(s for s in domain_strings(domain_dir) if s not in translated)
        if lacking:
            result[domain_dir.name] = lacking
    return result


def write_missing(only: str | None = None) -> int:
    """Append untranslated strings (with an empty translation) to each domain's po file
    (or to ``only`` that domain's)."""
    added = 0
    for name, strings in missing().items():
        if only is not None and name != only:
            continue
        domain_dir = ROOT / name
        po = load_po(domain_dir)
        for text in strings:
            if text not in po:
                po.add(text, "")
                added += 1
        path = po_path(domain_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, po, width=0, omit_header=True, sort_output=True)
    return added
