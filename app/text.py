"""User text in the page: names, comments, ids, file names and error messages are data, never markup.

Every string that a user (or a file a user made) supplied goes through one of these before it
reaches a pane that renders Markdown or HTML, or a notification (Notyf renders its message as
HTML). Prefer panes that take text (``pn.pane.Str``, a widget's value, ``pn.pane.DataFrame`` with
``escape=True``) where the text stands alone.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["md", "md_code", "html_text", "notify"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:])")


def html_text(text: Any) -> str:
    """``text`` as HTML text: ``& < > " '`` escaped, nothing interpreted.

    Parameters
    ----------
    text : any
        Converted with ``str`` first.

    Returns
    -------
    str
    """
    return html.escape(str(text), quote=True)


def md(text: Any) -> str:
    """``text`` as literal Markdown: no markup, no HTML, no links, no table cells.

    HTML-escapes ``& < > "`` and backslash-escapes every Markdown punctuation character, so a
    name such as ``<img src=x onerror=...>`` or ``[x](javascript:...)`` shows as typed. New lines
    become spaces (a name cannot start a new block).

    Parameters
    ----------
    text : any
        Converted with ``str`` first.

    Returns
    -------
    str
    """
    flat = " ".join(str(text).splitlines())
    return html.escape(_MD_SPECIAL.sub(r"\\\1", flat), quote=True)


def md_code(text: Any) -> str:
    """``text`` for a fenced Markdown code block: HTML-escaped, and no line can close the fence.

    Parameters
    ----------
    text : any
        Converted with ``str`` first.

    Returns
    -------
    str
        The block including its ``~~~`` fences.
    """
    body = html.escape(str(text), quote=False).replace("~~~", "~\u200b~~").replace("```", "`\u200b``")
    return f"~~~text\n{body}\n~~~"


def notify(message: Any, kind: str = "info", duration: int = 5000) -> None:
    """Show ``message`` as a notification (escaped: Notyf renders HTML); nothing without a session.

    Parameters
    ----------
    message : any
        The text; converted with ``str`` and HTML-escaped.
    kind : {"info", "warning", "error", "success"}
        The notification's kind (anything else is "info").
    duration : int
        Milliseconds on screen.
    """
    import panel as pn

    notif = pn.state.notifications
    if notif is not None:
        kind = kind if kind in ("info", "warning", "error", "success") else "info"
        getattr(notif, kind)(html_text(message), duration=duration)
