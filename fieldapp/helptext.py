"""`--help` as a terminal shows it: lines that fit its width when Chinese characters take two
columns each.

Click measures a line by len() (click.formatting.wrap_text, term_len): a Chinese character
counts one column where a terminal gives it two, so a zh-Hans help line of 78 "columns" took
up to 140 and the terminal broke it anywhere. HelpFormatter here wraps by display width
(unicodedata.east_asian_width), between any two Chinese characters (no spaces to break at),
but never before a closing mark (，。）) or after an opening one ((（). Every fieldapp command
gets it through its context (CliContext, set by the `fieldapp` group on each command).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from gettext import gettext
from typing import Any

import click

_CLOSING = set("，。、；：！？）」』》〉】,.;:!?)]")
_OPENING = set("（「『《〈【([")
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def display_width(text: str) -> int:
    """The columns text takes in a terminal: two for an East Asian wide or full-width
    character, none for a combining mark or a colour code, one for any other."""
    text = _ANSI.sub("", text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pieces(text: str) -> list[str]:
    """text cut where a line may break: at spaces (kept as they are), around each wide character,
    but with a closing mark kept after what it closes and an opening one before what it
    opens; a run of narrow characters (a word, an option's name) is one piece."""
    out: list[str] = []
    for word in re.split(r"(\s+)", text):
        if not word:
            continue
        if word.isspace():
            out.append(" " * len(word.replace("\n", " ")))
            continue
        start = len(out)
        glue = prev_wide = False
        for c in word:
            wide = unicodedata.east_asian_width(c) in "WF"
            if len(out) == start:
                out.append(c)
            elif glue or c in _CLOSING or not (wide or prev_wide):
                out[-1] += c
            else:
                out.append(c)
            glue = c in _OPENING
            prev_wide = wide
    return out


def _fill(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """One paragraph's lines, each at most width columns (indents included) where a word
    allows it: a word longer than a line is cut by characters."""
    lines: list[str] = []
    line, used, empty, space = first, display_width(first), True, ""
    for piece in _pieces(text):
        if piece.isspace():
            space = "" if empty else piece
            continue
        gap = len(space)
        size = display_width(piece)
        if not empty and used + gap + size > width:
            lines.append(line)
            line, used, empty, gap = rest, display_width(rest), True, 0
        while used + size > width and size > 1 and empty:  # too long for any line: cut it
            fits, taken = "", 0
            for c in piece:
                if used + taken + display_width(c) > width and fits:
                    break
                fits += c
                taken += display_width(c)
            if fits == piece:
                break
            lines.append(line + fits)
            piece = piece[len(fits) :]
            size = display_width(piece)
            line, used = rest, display_width(rest)
        line += " " * gap + piece
        used += gap + size
        empty, space = False, ""
    if not empty or not lines:
        lines.append(line)
    return lines


def wrap_text(
    text: str,
    width: int = 78,
    initial_indent: str = "",
    subsequent_indent: str = "",
    preserve_paragraphs: bool = False,
) -> str:
    """click.formatting.wrap_text measured in display columns: the same paragraphs (a blank
    line between two; one led by a line holding \\b kept as written), the same indents."""
    text = text.expandtabs()
    if not preserve_paragraphs:
        return "\n".join(_fill(text, width, initial_indent, subsequent_indent))
    paragraphs: list[tuple[int, bool, str]] = []
    buf: list[str] = []
    indent: int | None = None

    def flush() -> None:
        if buf:
            if buf[0].strip() == "\b":
                paragraphs.append((indent or 0, True, "\n".join(buf[1:])))
            else:
                paragraphs.append((indent or 0, False, " ".join(buf)))
            buf.clear()

    for line in text.splitlines():
        if not line:
            flush()
            indent = None
        else:
            if indent is None:
                indent = len(line) - len(line.lstrip())
                line = line.lstrip()
            buf.append(line)
    flush()
    out = []
    for extra, raw, body in paragraphs:
        first, rest = initial_indent + " " * extra, subsequent_indent + " " * extra
        if raw:
            out.append(
                "\n".join((first if i == 0 else rest) + x for i, x in enumerate(body.splitlines()))
            )
        else:
            out.append("\n".join(_fill(body, width, first, rest)))
    return "\n\n".join(out)


class HelpFormatter(click.HelpFormatter):
    """Click's help formatter, measuring and wrapping in display columns (module docstring)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        if prefix is None:
            prefix = gettext("Usage:") + " "  # Click's own word, from its catalog
        usage_prefix = f"{prefix:>{self.current_indent}}{prog} "
        text_width = self.width - self.current_indent
        if not args:
            self.write(usage_prefix.rstrip(" ") + "\n")
            return
        if text_width >= display_width(usage_prefix) + 20:
            indent = " " * display_width(usage_prefix)
            self.write(wrap_text(args, text_width, usage_prefix, indent))
        else:
            self.write(usage_prefix + "\n")
            indent = " " * (max(self.current_indent, display_width(prefix)) + 4)
            self.write(wrap_text(args, text_width, indent, indent))
        self.write("\n")

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write(wrap_text(text, self.width, indent, indent, preserve_paragraphs=True))
        self.write("\n")

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first_col = min(max((display_width(r[0]) for r in rows), default=0), col_max)
        first_col += col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if display_width(first) <= first_col - col_spacing:
                self.write(" " * (first_col - display_width(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            text_width = max(self.width - first_col - 2, 10)
            lines = wrap_text(second, text_width, preserve_paragraphs=True).splitlines()
            self.write(f"{lines[0] if lines else ''}\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n" if line else "\n")


class CliContext(click.Context):
    """A command's context whose help is laid out by HelpFormatter."""

    formatter_class = HelpFormatter


def use_help_formatter(command: Any) -> None:
    """command and its subcommands show their help through HelpFormatter."""
    if isinstance(command, click.Command):
        command.context_class = CliContext
    for sub in getattr(command, "commands", {}).values():
        use_help_formatter(sub)
