"""``config/settings.py`` assigns each setting once: one line to find, no later override hiding it.

Read as source (not imported), so a re-assignment is caught even where the two values are equal.
Branches of one ``if``/``else`` count as one assignment (only one of them runs).
"""

import ast
from collections import Counter
from pathlib import Path

SETTINGS = Path(__file__).resolve().parents[2] / "config" / "settings.py"
MUTATORS = {"append", "extend", "insert", "update", "setdefault", "pop", "remove", "clear"}


def _is_setting(name: str) -> bool:
    return name.isupper() and not name.startswith("_")


def _assigned_names(statements: list[ast.stmt]) -> Counter:
    names: Counter = Counter()
    for node in statements:
        if isinstance(node, ast.If):
            # Exclusive branches: a name set in both counts once.
            names.update(set(_assigned_names(node.body)) | set(_assigned_names(node.orelse)))
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name) and _is_setting(leaf.id):
                        names[leaf.id] += 1
                if isinstance(node, ast.AugAssign) and isinstance(target, ast.Name):
                    names[target.id] += 1  # ``X += ...`` is a second assignment of X
    return names


def _module_level_statements(statements: list[ast.stmt]):
    for node in statements:
        yield node
        if isinstance(node, ast.If):
            yield from _module_level_statements(node.body)
            yield from _module_level_statements(node.orelse)


def test_no_setting_is_assigned_twice():
    tree = ast.parse(SETTINGS.read_text())
    twice = sorted(name for name, count in _assigned_names(tree.body).items() if count > 1)
    assert twice == [], f"assigned more than once in config/settings.py: {twice}"


def test_no_setting_is_changed_after_its_definition():
    tree = ast.parse(SETTINGS.read_text())
    changed = []
    for node in _module_level_statements(tree.body):
        for sub in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.If) else []:
            if isinstance(sub, ast.Subscript) and isinstance(sub.ctx, ast.Store):
                root = sub.value
                while isinstance(root, ast.Subscript):
                    root = root.value
                if isinstance(root, ast.Name) and _is_setting(root.id):
                    changed.append(f"line {sub.lineno}: {root.id}[...] = ...")
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in MUTATORS:
                root = sub.func.value
                while isinstance(root, ast.Subscript | ast.Call | ast.Attribute):
                    root = root.value if not isinstance(root, ast.Call) else root.func
                if isinstance(root, ast.Name) and _is_setting(root.id):
                    changed.append(f"line {sub.lineno}: {root.id}.{sub.func.attr}(...)")
    assert changed == [], "settings changed after their definition: " + "; ".join(changed)
