"""One report, two renderings: ``report.md`` beside its PNGs, and a self-contained
``report.html`` (figures embedded as base64, tables sortable by a click on a header, no network
fetch, no script from elsewhere) that opens in any browser."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th:hover { background: #e6e6e6; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #555; font-size: 13px; }
"""

# Sort a table by the clicked column: numbers as numbers, the rest as text; a second click
# reverses. Inline, so the page needs nothing but itself.
SORT = """
document.querySelectorAll("table.sortable th").forEach((th, col) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const up = th.dataset.order !== "up";
    th.dataset.order = up ? "up" : "down";
    const key = r => { const t = r.cells[col].textContent.trim(); const n = parseFloat(t);
                       return isNaN(n) ? t : n; };
    [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
        return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1); })
      .forEach(r => body.appendChild(r));
  });
});
"""


@dataclass(slots=True)
class Document:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("heading", text))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def table(self, df: pd.DataFrame) -> None:
        self.blocks.append(("table", df))

    def figure(self, caption: str, path: Path) -> None:
        self.blocks.append(("figure", caption, Path(path)))

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for kind, *rest in self.blocks:
            if kind == "heading":
                lines += [f"## {rest[0]}", ""]
            elif kind == "para":
                lines += [rest[0], ""]
            elif kind == "table":
                lines += [rest[0].to_markdown(), ""]
            else:
                caption, path = rest
                lines += [f"![{caption}]({path.name})", ""]
        return "\n".join(lines)

    def html(self) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, *rest in self.blocks:
            if kind == "heading":
                parts.append(f"<h2>{html.escape(rest[0])}</h2>")
            elif kind == "para":
                parts.append(f"<p>{_inline(rest[0])}</p>")
            elif kind == "table":
                parts.append(rest[0].to_html(classes="sortable", border=0, na_rep="",
                                             float_format=lambda v: f"{v:,.4g}"))
            else:
                caption, path = rest
                data = base64.b64encode(path.read_bytes()).decode()
                parts.append(f'<figure><img alt="{html.escape(caption)}" '
                             f'src="data:image/png;base64,{data}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        body = "\n".join(parts)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
                f"<body>\n{body}\n<script>{SORT}</script></body></html>\n")

    def write(self, out: Path) -> Path:
        """``report.md`` and ``report.html`` in ``out``; returns the Markdown one."""
        (out / "report.html").write_text(self.html(), encoding="utf-8")
        path = out / "report.md"
        path.write_text(self.markdown(), encoding="utf-8")
        return path


def _inline(text: str) -> str:
    """Markdown's inline code (`x`) as <code>, everything else escaped."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
