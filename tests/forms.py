"""A page's form as a browser would submit it: every input, select and textarea with its
value, hidden ones included (Django's hidden initial values, the CSRF token)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _Form(HTMLParser):
    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and (self.form_id is None or a.get("id") == self.form_id):
            self.inside = True
        if not self.inside or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button"):
                default = "on" if kind in ("checkbox", "radio") else ""
                self.fields.setdefault(name, []).append(a.get("value", default))
        elif tag == "select" and name:
            self._select = name
            self.fields.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            # The HTML parser keeps the newline a textarea's content starts with.
            self.fields[self._textarea] = [text[1:] if text.startswith("\n") else text]
            self._textarea = None
        elif tag == "form" and self.inside:
            self.inside = False


def form_data(html: str | bytes, form_id: str | None = None) -> dict[str, Any]:
    """The fields of the first form (or the one with `form_id`): a value each, or a list
    for a field sent more than once (checkboxes, a multiple select)."""
    parser = _Form(form_id)
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return {k: v[0] if len(v) == 1 else v for k, v in parser.fields.items()}
