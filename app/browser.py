"""Small page-wide behaviour that lives in the browser: the inspector's name kept across reloads,
and check-box labels that toggle their box.

:class:`PageGlue` is an invisible component placed once on the page. Without authentication the
name typed in the sidebar is written to the browser's ``localStorage`` and restored on the next
visit (the server still decides what a name may do: with a login the name is the login's and is
never read from the browser). Bokeh draws a check box's label as a sibling of the box rather
than as a ``<label>``, so a click on the text did nothing; a click on such a label now clicks its
box.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent

__all__ = ["STORAGE_KEY", "PageGlue"]

#: The ``localStorage`` key of the inspector's name.
STORAGE_KEY = "resx.inspector"


class PageGlue(JSComponent):
    """The inspector's name in ``localStorage`` (when not ``locked``) and clickable check-box labels."""

    inspector = param.String(default="", doc="the session's inspector name (two-way with the state)")
    locked = param.Boolean(default=False, doc="the name comes from the login: never restored from the browser")
    storage_key = param.String(default=STORAGE_KEY)

    _esm = """
    export function render({ model }) {
      const el = document.createElement('div');
      el.style.display = 'none';
      if (!model.locked) {
        let saved = null;
        try { saved = window.localStorage.getItem(model.storage_key); } catch (e) { saved = null; }
        if (saved && !model.inspector) model.inspector = saved;
      }
      model.on('inspector', () => {
        if (model.locked) return;
        try {
          if (model.inspector) window.localStorage.setItem(model.storage_key, model.inspector);
          else window.localStorage.removeItem(model.storage_key);
        } catch (e) { /* storage disabled: the name is kept for this page only */ }
      });
      const onclick = (e) => {
        const t = e.composedPath()[0];
        if (!t || !t.classList || !t.classList.contains('bk-label')) return;
        const box = t.previousElementSibling;
        if (box && box.tagName === 'INPUT' && box.type === 'checkbox' && !box.disabled) box.click();
      };
      document.addEventListener('click', onclick, true);
      model.on('remove', () => document.removeEventListener('click', onclick, true));
      return el;
    }
    """
