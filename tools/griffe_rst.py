"""A griffe extension for the docs site: the docstrings are written with Sphinx's roles
(``:class:`Namespace```) and reST literal blocks (a paragraph ending in ``::``), which the
API reference renders as Markdown; this turns the roles into code spans and the ``::`` into
``:`` (the indented block after it is already a Markdown code block)."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`(~?)([^`]+)`")
_LITERAL = re.compile(r"::$", re.MULTILINE)


def _role(match: re.Match[str]) -> str:
    shorten, target = match.groups()
    # "~pkg.mod.Name" shows "Name", as in Sphinx; ".mod.name" (relative) shows "mod.name".
    name = target.rsplit(".", 1)[-1] if shorten else target.lstrip(".")
    return f"`{name}`"


class RstRoles(griffe.Extension):
    """Rewrites each docstring once, when its object is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is not None:
            docstring.value = _LITERAL.sub(":", _ROLE.sub(_role, docstring.value))
