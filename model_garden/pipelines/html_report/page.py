"""The page's building blocks: escaping, tables, figures as inline SVG, the HTML shell.

Everything the page shows is inside the one file: the CSS is a ``<style>``
element, each figure is matplotlib's SVG output inlined in the page (text
as paths, so no font is fetched), and there is no script. A browser opens
it offline and makes no request.
"""

import html
import io
import math
from typing import Iterable, List, Optional, Sequence

CSS = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.ok { color: #17692a; font-weight: bold; } .bad { color: #a3141c; font-weight: bold; }
.note { color: #555; font-size: 0.9em; } figure { margin: 0.6em 0; display: inline-block; }
figcaption { font-size: 0.9em; color: #555; } code { background: #f4f4f4; padding: 0 3px; }
figure svg { max-width: 100%; height: auto; } table.text td { text-align: left; }
"""


def esc(value) -> str:
    """``value`` as HTML text (``str()`` then escaped, quotes included)."""
    return html.escape(str(value), quote=True)


def verdict(ok: Optional[bool], yes: str = "yes", no: str = "no", unknown: str = "-") -> str:
    """A green ``yes`` / red ``no`` span (``unknown`` for ``None``)."""
    if ok is None:
        return esc(unknown)
    return f'<span class="{"ok" if ok else "bad"}">{esc(yes if ok else no)}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence], raw_columns: Sequence[int] = (),
          css_class: str = "") -> str:
    """An HTML table; cells are escaped except those of ``raw_columns`` (HTML already)."""
    out = [f'<table class="{esc(css_class)}">' if css_class else "<table>", "<tr>"]
    out += [f"<th>{esc(h)}</th>" for h in header]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>" + "".join(
            f"<td>{cell if i in raw_columns else esc(cell)}</td>" for i, cell in enumerate(row))
            + "</tr>")
    out.append("</table>")
    return "".join(out)


def number(value, digits: int = 4) -> str:
    """A float with ``digits`` significant digits, an int with thousands separators."""
    if value is None:
        return "-"
    if isinstance(value, str):  # protobuf JSON: "NaN", "Infinity"
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def svg_figure(fig, caption: str = "", css_id: str = "") -> str:
    """A matplotlib figure as an inline ``<svg>`` element inside a ``<figure>``.

    The SVG keeps matplotlib's ``width``/``height`` (in pt) and its
    ``viewBox``; its text is drawn as paths (``svg.fonttype = 'path'``), so
    the page needs no font. Raster parts (``imshow``) are embedded by
    matplotlib as base64 PNG ``data:`` URIs.
    """
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        # No <metadata> block (its RDF names URLs); clip-path ids stay random per figure,
        # so two inline SVGs never share one.
        fig.savefig(buffer, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE
    attrs = f' id="{esc(css_id)}"' if css_id else ""
    caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure{attrs}>{svg}{caption_html}</figure>"


def new_figure(width: float = 6.0, height: float = 4.0, ncols: int = 1, nrows: int = 1):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches and its axes (a flat list, row by row).

    Made without ``pyplot``: no backend, no global figure list to close.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def document(title: str, sections: List[str]) -> str:
    """The whole page: ``<!DOCTYPE html>``, charset, inline CSS, ``sections`` in order."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(sections) + "\n</body></html>\n")
