"""Standalone HTML for validation reports: one file with inline styles and no scripts or
external resources, so it can be archived, printed and opened offline years later.

Every text that reaches the page goes through ``esc``; helpers take text, not markup, unless
their parameter says ``html``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 2em; color: #111; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
td:first-child { white-space: nowrap; }
table.header { width: auto; } table.header th { width: 12em; }
code { font-size: 0.9em; word-break: break-all; }
ul.tests { margin: 0; padding-left: 1.2em; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 600; }
.ok { background: #d8f0d8; color: #064d06; } .bad { background: #f7d4d4; color: #7a0000; }
.neutral { background: #eee; color: #444; }
.verdict { font-size: 1.1em; font-weight: 700; }
@media print { body { margin: 0; } }
"""


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def badge(text: str, good: bool | None) -> str:
    """A coloured label: green when good, red when not, grey when None (neither)."""
    kind = "neutral" if good is None else ("ok" if good else "bad")
    return f'<span class="badge {kind}">{esc(text)}</span>'


def header_table(header: Mapping[str, str]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in header.items())
    return f'<table class="header">{rows}</table>'


def table(columns: Sequence[str], rows_html: Iterable[Sequence[str]]) -> str:
    """A table whose cells are already markup (escape text with ``esc`` first)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows_html)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(title: str, body_html: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{body_html}</section>"


def page(title: str, header: Mapping[str, str], sections_html: Iterable[str]) -> str:
    """A complete HTML document: title, the provenance header, then the sections."""
    body = "".join(sections_html)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{esc(title)}</h1>{header_table(header)}{body}</body></html>\n")
