"""``report.html``: one self-contained page (figures embedded, tables, the run's configuration and
versions) built from what ``report.py`` wrote: its ``summary.md`` sections and its figures.

Only the small Markdown subset that the report itself writes is rendered (``##`` headings,
paragraphs, pipe tables); every text is HTML-escaped, so a name in someone's results cannot inject
markup. Figures are embedded as base64 PNG (or inline SVG), so the page works offline and by mail.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
.wide { overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img, figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
"""


_CELL_BOUNDARY = re.compile(r"(?<!\\)\|")
_ESCAPED = re.compile(r"\\(.)")


def _text(markdown: str) -> str:
    """Markdown text (with ``tables.md_escape`` escapes) as escaped HTML text."""
    return html.escape(_ESCAPED.sub(r"\1", markdown))


def _table(lines: list[str]) -> str:
    rows = [[cell.strip() for cell in _CELL_BOUNDARY.split(line.strip().strip("|"))] for line in lines]
    rows = [row for row in rows if not all(set(cell) <= set("-: ") for cell in row)]  # drop the rule line
    if not rows:
        return ""
    head = "".join(f"<th>{_text(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    # Wide tables scroll sideways inside the page instead of running off its edge.
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def markdown_to_html(text: str) -> str:
    """The report's Markdown (headings, paragraphs, pipe tables) as escaped HTML."""
    out, table, paragraph = [], [], []

    def flush():
        if table:
            out.append(_table(table))
            table.clear()
        if paragraph:
            out.append(f"<p>{_text(' '.join(paragraph))}</p>")
            paragraph.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if paragraph:
                flush()
            table.append(line)
        elif line.startswith("#"):
            flush()
            level = min(len(line) - len(line.lstrip("#")), 4)
            out.append(f"<h{level}>{_text(line.lstrip('#').strip())}</h{level}>")
        elif not line.strip():
            flush()
        else:
            if table:
                flush()
            paragraph.append(line.strip())
    flush()
    return "\n".join(out)


def _figure(path: Path) -> str:
    caption = html.escape(path.stem.replace("_", " "))
    if path.suffix == ".png":
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<figure><img alt="{caption}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'
    if path.suffix == ".svg":
        svg = path.read_text(encoding="utf-8")
        svg = svg[svg.find("<svg") :]  # drop the XML prolog and doctype
        return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"
    return ""


def build_report_html(title: str, summary_markdown: str, figures: list[Path], run_record: dict) -> str:
    """The whole page: title, the summary sections, every figure, and the run's configuration."""
    figures = sorted(figures, key=lambda p: (p.stem, p.suffix != ".png"))
    seen, blocks = set(), []
    for path in figures:  # one embedding per figure: PNG first, else SVG
        if path.stem in seen or path.suffix not in (".png", ".svg"):
            continue
        seen.add(path.stem)
        blocks.append(_figure(path))
    config = html.escape(json.dumps(run_record, indent=2, default=str))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f"{markdown_to_html(summary_markdown)}\n<h2>Figures</h2>\n"
        + "\n".join(blocks)
        + f"\n<h2>Configuration and versions</h2>\n<pre>{config}</pre>\n</body></html>\n"
    )
