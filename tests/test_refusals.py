"""Every refusal a person can meet is the domain's, and the admin can say it in their language.

The rules live in `scheduler/`: it raises (or lists, for a form with several fields) a refusal
in English words; `web/` only translates it (`web/domain_texts.py`). This reads the domain's
source for every refusal it can build and checks each is one the admin knows. A value put into
a refusal (a number, a name) may be anything: a text known for one value of it (a discount, a
refund) counts, as a pattern with a placeholder there does.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from web.domain_texts import _MATCHERS, TEXTS

SCHEDULER = Path(__file__).resolve().parent.parent / "scheduler"
# The domain's refusals that reach a person in the admin (a configuration file's problems are
# the command line's, in English; a TransitionError is a guard no page leads to).
REFUSALS = {
    "AccountError",
    "CadenceError",
    "CaseworkError",
    "ConsentError",
    "PeriodError",
    "SaleError",
    "SettingsError",
    "UnusableFile",
    "VocabularyError",
}
TYPED = {"typed_text", "written"}  # what a person typed: empty, or too long


class Made:
    """A text the domain makes: its shape (each value in it any text) and a sample of it (each
    value 9)."""

    def __init__(self, parts: list[str | None]) -> None:
        self.shape = re.compile("".join(".+" if p is None else re.escape(p) for p in parts))
        self.sample = "".join("9" if p is None else p for p in parts)
        self.parts = parts

    def __add__(self, text: str) -> Made:
        return Made([*self.parts, text])


def made(node: ast.expr) -> list[Made]:
    """The texts an expression can make; none for a text made elsewhere (a variable: the list
    it came from is read where it is built)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [Made([node.value])]
    if isinstance(node, ast.JoinedStr):
        parts = [p.value if isinstance(p, ast.Constant) else None for p in node.values]
        return [Made([p if p is None else str(p) for p in parts])]
    if isinstance(node, ast.IfExp):
        return made(node.body) + made(node.orelse)
    return []


def _is_problems(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "problems"


def refusals(tree: ast.AST) -> Iterator[tuple[int, Made]]:
    """Each refusal in a module, with its line: raised, listed among a form's problems, or
    made from what a person typed."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            name = getattr(node.exc.func, "id", None)
            if name in REFUSALS and node.exc.args:
                yield from ((node.lineno, text) for text in made(node.exc.args[0]))
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Subscript) and _is_problems(t.value) for t in node.targets):
                yield from ((node.lineno, text) for text in made(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "append" and _is_problems(node.func.value) and node.args:
                listed = node.args[0]
                listed = listed.elts[-1] if isinstance(listed, ast.Tuple) else listed
                yield from ((node.lineno, text) for text in made(listed))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in TYPED:
            given = {keyword.arg: keyword.value for keyword in node.keywords}
            for text in made(given["empty"]):
                yield node.lineno, text
            for what in made(given["what"]):
                yield node.lineno, what + " can have at most 9 characters (10 given)"


def known(text: Made) -> bool:
    """Whether the admin translates a text of this shape: listed (for one value at least: a
    discount, a refund), or matched by one of its patterns with the sample's values."""
    return any(text.shape.fullmatch(listed) for listed in TEXTS) or any(
        pattern.fullmatch(text.sample) for pattern, _ in _MATCHERS
    )


def test_every_refusal_of_the_domain_is_one_the_admin_translates() -> None:
    found, unknown = 0, []
    for path in sorted(SCHEDULER.rglob("*.py")):
        for line, text in refusals(ast.parse(path.read_text(encoding="utf-8"))):
            found += 1
            if not known(text):
                unknown.append(f"{path.relative_to(SCHEDULER.parent)}:{line}: {text.sample}")
    assert found > 60  # the reading found them (a refactor that hid them would fail here)
    assert not unknown, "list these in web/domain_texts.py, then make translations:\n" + "\n".join(
        unknown
    )


def test_the_reading_sees_each_way_a_refusal_is_made() -> None:
    source = """
def check(kind, name, problems):
    raise CaseworkError(f"a {kind} needs a value")
    problems["name"] = f"another cadence is called {name!r}"
    problems.append(("sold_at", "is required"))
    written(text, empty="the note is empty", what="a note", most=10)
    raise RuntimeError("not a refusal: a bug")
"""
    samples = [text.sample for _, text in refusals(ast.parse(source))]
    assert samples == [
        "a 9 needs a value",
        "another cadence is called 9",
        "is required",
        "the note is empty",
        "a note can have at most 9 characters (10 given)",
    ]
    discount = made(ast.parse('f"a {kind} needs a value of at least 0.01"', mode="eval").body)
    assert [known(text) for text in discount] == [True]  # listed for a discount and a refund
    assert not known(Made(["a text nobody listed"]))
