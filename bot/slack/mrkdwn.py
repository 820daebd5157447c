"""Claude's Markdown rendered as Slack mrkdwn, for interim edits and fallback text. Pure.

markdown-it-py parses (CommonMark plus tables and strikethrough); this module only renders
its syntax tree, so emphasis nesting, code spans holding `*` and links with parentheses are
the parser's problem, solved once. Text is escaped (`&`, `<`, `>`) except Slack's own
`<@U…>`, `<#C…>` and `<http…|…>` forms; mass mentions never survive.
"""

from __future__ import annotations

import re
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from bot.slack.text import SLACK_MARKUP, escape_mrkdwn

_MARKS = {"strong": "*", "em": "_", "s": "~"}
_MASS_MENTION = re.compile(r"<!(?=[a-z]|subteam\^)")
_PARKED = re.compile("\ue000(\\d+)\ue001")


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def defuse_mass_mentions(text: str) -> str:
    """Make `<!channel>`, `<!here>`, `<!everyone>` and group mentions inert, yet legible."""
    return _MASS_MENTION.sub("<\u2060!", text)


def to_mrkdwn(markdown: str) -> str:
    """Render standard Markdown as Slack mrkdwn."""
    # Slack's own markup (`<@U…>`, `<#C…|name>`, `<https://…|label>`) would read as Markdown
    # autolinks or HTML: park each under a private-use placeholder while parsing.
    kept: list[str] = []

    def park(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\ue000{len(kept) - 1}\ue001"

    tree = SyntaxTreeNode(_parser().parse(SLACK_MARKUP.sub(park, markdown)))
    rendered = _blocks(tree.children, indent="").strip("\n")
    return _PARKED.sub(lambda m: kept[int(m.group(1))], rendered)


def _blocks(nodes: list[SyntaxTreeNode], indent: str) -> str:
    return "\n\n".join(part for node in nodes if (part := _block(node, indent)))


def _block(node: SyntaxTreeNode, indent: str) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inline_children(node)
    if kind == "heading":
        # mrkdwn has no headings: a bold line, with the heading's own emphasis dropped.
        text = _inline_children(node, plain=True).strip()
        return f"*{text}*" if text else ""
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, indent)
    if kind == "blockquote":
        inner = _blocks(node.children, indent="")
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind in ("fence", "code_block"):
        return f"```\n{escape_mrkdwn(node.content.rstrip(chr(10)))}\n```"
    if kind == "hr":
        return "───────────"
    if kind == "table":
        return _table(node)
    if kind == "html_block":
        return escape_mrkdwn(node.content.rstrip("\n"))
    return _blocks(node.children, indent)


def _list(node: SyntaxTreeNode, indent: str) -> str:
    lines: list[str] = []
    start = int(str(node.attrs.get("start", 1)))
    for number, item in enumerate(node.children, start=start):
        bullet = f"{number}." if node.type == "ordered_list" else "•"
        body = "\n".join(part for c in item.children if (part := _block(c, indent + "    ")))
        first, *rest = body.split("\n") if body else [""]
        lines.append(f"{indent}{bullet} {first}")
        # Continuation lines of the item keep its indentation; nested lists bring their own.
        lines.extend(
            line if line.startswith(indent + "    ") else f"{indent}   {line}" for line in rest
        )
    return "\n".join(lines)


def _table(node: SyntaxTreeNode) -> str:
    # mrkdwn has no tables: align the cells in a code block, which every client shows well.
    rows = [
        [_inline_children(cell, plain=True).strip() for cell in row.children]
        for section in node.children
        for row in section.children
    ]
    if not rows:
        return ""
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(rows[0]))]
    lines = [
        " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "```\n" + escape_mrkdwn("\n".join(lines)) + "\n```"


def _inline_children(node: SyntaxTreeNode, *, plain: bool = False) -> str:
    return "".join(_inline(child, plain) for inline in node.children for child in inline.children)


def _inline(node: SyntaxTreeNode, plain: bool) -> str:
    kind = node.type
    if kind == "text":
        return escape_mrkdwn(node.content)
    if kind == "code_inline":
        return f"`{escape_mrkdwn(node.content)}`"
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind in _MARKS:
        inner = "".join(_inline(child, plain) for child in node.children)
        mark = "" if plain else _MARKS[kind]
        return f"{mark}{inner}{mark}" if inner.strip() else inner
    if kind == "link":
        label = "".join(_inline(child, True) for child in node.children)
        return _link(str(node.attrs.get("href", "")), label, plain)
    if kind == "image":
        alt = "".join(_inline(child, True) for child in node.children) or "image"
        return _link(str(node.attrs.get("src", "")), alt, plain)
    if kind == "html_inline":
        return escape_mrkdwn(node.content)
    return "".join(_inline(child, plain) for child in node.children)


def _link(href: str, label: str, plain: bool) -> str:
    if not re.match(r"(https?|mailto):", href) or plain:
        return label or escape_mrkdwn(href)
    # Inside <url|label>, `|` and `>` end the link early; Slack reads them percent-encoded.
    url = href.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    text = label.replace("|", "¦") or url
    return f"<{url}|{text}>"
