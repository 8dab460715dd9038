"""Griffe extension of the docs build (mkdocs.yml, mkdocstrings' python handler).

The API pages are made by inspecting the imported modules, so that signatures show the
real defaults (they come from the parameter table) and the generated classes and
properties appear. Inspection cannot tell an imported name from one defined in the module, so this
extension drops the imported ones (unless ``__all__`` names them) and ``from __future__``
features, as reading the source would. It also finds docstrings the code never wrote: an attribute
gets the docstring of its value's type (``bool``, ``float``, ``tuple`` ...) and a
dataclass without a docstring the one ``dataclasses`` makes from its signature. This
extension drops those, so an object has a docstring only when the code gives it one.

It also reads a numpy-like parameter list (a ``Parameters`` line underlined with dashes,
then ``name : description`` entries, continued on indented lines; FunkSVD's) as the
Google-style section the docstrings are parsed with, so it renders as a table of the
parameters with their types and defaults from the signature.
"""

from __future__ import annotations
import __future__

import dataclasses
import inspect
import re

import griffe

_NUMPY_PARAMETERS = re.compile(r"^Parameters\n-+\n((?:(?:\w+ : |    ).*\n?)+)", re.M)


def _google_parameters(text: str) -> str:
    """``Parameters`` / dashes / ``name : text`` lines, as ``Parameters:`` / ``name: text``."""
    def section(match):
        entries = re.sub(r"^(\w+) : ", r"\1: ", match.group(1), flags=re.M)
        return "Parameters:\n" + "".join(f"    {line}\n" for line in entries.splitlines()) + "\n"
    return _NUMPY_PARAMETERS.sub(section, text)


def _same(docstring, text) -> bool:
    return isinstance(text, str) and docstring.value == inspect.cleandoc(text)


class NoTypeDocstrings(griffe.Extension):
    def on_module_members(self, *, node, mod, agent, **kwargs) -> None:
        exports = mod.exports or ()
        for name, member in list(mod.members.items()):
            if name in exports:
                continue
            obj = getattr(node.obj, name, None) if hasattr(node, "obj") else None
            if member.is_alias or isinstance(obj, __future__._Feature):
                mod.del_member(name)

    def on_attribute_instance(self, *, node, attr, agent, **kwargs) -> None:
        obj = getattr(node, "obj", None)  # only inspected nodes hold the object
        if attr.docstring is not None and obj is not None:
            if _same(attr.docstring, getattr(type(obj), "__doc__", None)):
                attr.docstring = None

    def on_class_instance(self, *, node, cls, agent, **kwargs) -> None:
        if cls.docstring is not None:
            cls.docstring.value = _google_parameters(cls.docstring.value)
        obj = getattr(node, "obj", None)
        if cls.docstring is None or not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
            return
        try:
            generated = obj.__name__ + str(inspect.signature(obj)).replace(" -> None", "")
        except (TypeError, ValueError):
            return
        if _same(cls.docstring, generated):
            cls.docstring = None
