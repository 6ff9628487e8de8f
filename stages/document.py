"""Markdown documents written from Jinja2 templates (stages/templates/), and the one-file HTML page
made from the same Markdown, so the two always say the same thing.

A template prints values two ways: as Markdown already (a `Markdown` string: a code span, a table,
a sentence built with these helpers) or as plain text, which is escaped so that a name from
params.yaml or a data file shows as it is written and never adds markup.
"""

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import jinja2
import markupsafe
from markdown_it import MarkdownIt

from stages import files


class Markdown(str):
    """Text that is Markdown already: printed as it is."""


# What starts markup within a line. Newlines become spaces, so a value opens no block of its own (heading,
# list, quote) unless a template prints it first on a line, which ours do with numbers only.
MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>&|#~]")


def md(value) -> Markdown:
    """Plain text (or a number) as Markdown that shows it literally."""
    if isinstance(value, Markdown):
        return value
    return Markdown(MARKDOWN_SPECIAL.sub(r"\\\g<0>", " ".join(str(value).splitlines())))


def code(value) -> Markdown:
    """A code span that holds `value` whatever its backticks: the fence is one backtick longer than any run
    inside, and padded with a space where the text would touch it (CommonMark strips one each side)."""
    text = " ".join(str(value).splitlines())
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def link(path: Path) -> Markdown:
    """A relative link target; percent-encoded, so no character of a file name can end the link."""
    return Markdown(quote(Path(path).as_posix()))


def percent(fraction: float) -> str:
    return f"{fraction:.2%}"


def interval(low: float, high: float) -> str:
    """A 95% interval of two fractions: '98.83–99.21%'."""
    return f"{low * 100:.2f}–{high:.2%}"


def number(value: float, spec: str = ",") -> str:
    """`spec` as in format(): ',' gives 13,119,306; ',.1f' gives 1,363.1."""
    return format(value, spec)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]  # right-aligned columns


def table(t: Table) -> Markdown:
    """A GitHub table; `|` is escaped in every cell, code spans included (GFM splits cells before them)."""
    rule = ["---:" if numeric else "---" for numeric in t.numeric]

    def line(cells) -> str:
        return "| " + " | ".join(md(cell).replace("|", r"\|") for cell in cells) + " |"

    return Markdown("\n".join([line(t.header), line(rule), *map(line, t.rows)]))


TEMPLATES = Path(__file__).parent / "templates"

# finalize=md: every printed value is escaped unless it is Markdown already. Block tags take no room of
# their own (trim/lstrip), included templates end their last line, and render() collapses the blank lines
# left over, so a template can space its blocks for reading. StrictUndefined: a misspelt name fails.
MARKDOWN = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), finalize=md, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
MARKDOWN.filters |= {"code": code, "link": link, "percent": percent, "interval": interval, "number": number,
                     "table": table}
PAGE = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined)


def render(template: str, environment: jinja2.Environment = MARKDOWN, **context) -> str:
    """The template (from `environment`'s folder: stages/templates/ unless another is given) as Markdown."""
    text = environment.get_template(template).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# html False: raw HTML in the Markdown is shown as text, never passed through; xhtmlOut False: <img>, not <img />.
PARSER = MarkdownIt("commonmark", {"html": False, "xhtmlOut": False}).enable("table")


def to_html(markdown: str, root: Path, images: dict[Path, bytes] | None = None) -> str:
    """One page that opens from disk: inline CSS, every image (a PNG under `root`, the folder of the
    Markdown file, or one of `images` about to be written there) embedded as a data URI; titled by
    its first heading."""
    tokens = PARSER.parse(markdown)
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                path = Path(root) / unquote(child.attrGet("src"))
                png = images[path] if images and path in images else path.read_bytes()
                child.attrSet("src", "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
    heading = next(tokens[i + 1] for i, token in enumerate(tokens) if token.type == "heading_open")
    title = "".join(child.content for child in heading.children if child.type in ("text", "code_inline"))
    body = PARSER.renderer.render(tokens, PARSER.options, {})
    return PAGE.get_template("page.html.j2").render(title=title, body=markupsafe.Markup(body))


def write(markdown: str, markdown_path: Path, html_path: Path, images: dict[Path, bytes] | None = None) -> None:
    """The Markdown, its page and its new `images` (PNGs by path), all replaced together; other images the
    page shows are found beside the Markdown."""
    page = to_html(markdown, Path(markdown_path).parent, images)
    files.write_all({**(images or {}), Path(markdown_path): markdown.encode("utf-8"),
                     Path(html_path): page.encode("utf-8")})
