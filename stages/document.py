"""The report as a list of blocks (headings, paragraphs, bullets, tables, images) and its two
renderings: GitHub Markdown and one self-contained HTML page. They always say the same thing.
"""

import base64
import html
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]  # right-aligned columns


@dataclass(frozen=True)
class Image:
    path: Path  # where the PNG was written
    alt: str
    caption: str


# Text may hold `code` spans and nothing else: the only inline markup either renderer knows.

def to_markdown(blocks: list, root: Path) -> str:
    """GitHub-flavoured Markdown; image links are relative to `root`, the folder of the .md file."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            rule = ["---:" if numeric else "---" for numeric in block.numeric]
            lines = [block.header, rule, *block.rows]
            out.append("\n".join("| " + " | ".join(cell.replace("|", r"\|") for cell in line) + " |" for line in lines))
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.path.relative_to(root).as_posix()})\n\n{block.caption}")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    parts = text.split("`")
    escaped = [html.escape(part, quote=False) for part in parts]
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(escaped))


CSS = """
body { margin: 0; background: #fff; color: #222; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 920px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1, h2, h3 { line-height: 1.25; }
h2 { margin-top: 2.5rem; padding-bottom: .25rem; border-bottom: 1px solid #ddd; }
h3 { margin-top: 2rem; }
code { font: .88em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f2f2f5; padding: .05em .3em; border-radius: 3px; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .85rem; display: block; overflow-x: auto; }
th, td { padding: .35rem .5rem; border-bottom: 1px solid #e3e3e3; text-align: left; white-space: nowrap; }
thead th { border-bottom: 2px solid #999; white-space: normal; vertical-align: bottom; }
tbody tr:nth-child(even) { background: #f7f7fa; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5rem 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: .5rem; color: #444; font-size: .93rem; }
li { margin: .3rem 0; }
""".strip()


NUMERIC = ' class="num"'


def _html_table(table: Table) -> str:
    def row(cells, tag):
        return "<tr>" + "".join(f"<{tag}{NUMERIC if numeric else ''}>{_inline(cell)}</{tag}>"
                                for cell, numeric in zip(cells, table.numeric)) + "</tr>"

    return (f"<table>\n<thead>{row(table.header, 'th')}</thead>\n<tbody>\n"
            + "\n".join(row(cells, "td") for cells in table.rows) + "\n</tbody>\n</table>")


def _html_figure(image: Image) -> str:
    data = base64.b64encode(Path(image.path).read_bytes()).decode("ascii")
    return (f'<figure>\n<img src="data:image/png;base64,{data}" alt="{html.escape(image.alt)}">\n'
            f"<figcaption>{_inline(image.caption)}</figcaption>\n</figure>")


def to_html(blocks: list) -> str:
    """One page that opens from disk: inline CSS, every figure embedded as a data URI; titled by its first heading."""
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>\n" + "\n".join(f"<li>{_inline(item)}</li>" for item in block.items) + "\n</ul>")
        elif isinstance(block, Table):
            body.append(_html_table(block))
        elif isinstance(block, Image):
            body.append(_html_figure(block))
    title = next(b.text for b in blocks if isinstance(b, Heading)).replace("`", "")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title, quote=False)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
