"""Every control on every tab has an accessible name: a <label>, aria-label, aria-labelledby or a title.

Walks the rendered page in Chromium, so controls that callbacks generate (what-if
sliders, dimension dropdowns, mapping forms) are checked as the browser sees them.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AppServer, wait_for_dash

TABS = ["kpi", "eda", "segments", "products", "leaderboard", "whatif", "scoring"]

UNNAMED_CONTROLS = """() => {
  const selector = 'input:not([type=hidden]), select, textarea, [role=combobox], [role=slider], '
    + '[role=switch], [role=checkbox], [role=radio], [role=tab], button';
  function named(el) {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).some(id => (document.getElementById(id)?.textContent || '').trim())) return true;
    if (el.labels && Array.from(el.labels).some(l => l.textContent.trim())) return true;
    if ((el.getAttribute('title') || '').trim()) return true;
    const textual = ['tab', 'radio', 'checkbox', 'switch'].includes(el.getAttribute('role'));
    if (['BUTTON', 'A'].includes(el.tagName) || textual) {
      if (el.textContent.trim()) return true;
    }
    const wrap = el.closest('label');
    return Boolean(wrap && wrap.textContent.trim());
  }
  const missing = [];
  for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    const hidden = box.width === 0 && box.height === 0 && el.type !== 'file';
    if (hidden || el.closest('.modebar, [aria-hidden=true]')) continue;
    if (!named(el)) missing.push(`${el.tagName.toLowerCase()}#${el.id || '?'}.${String(el.className).slice(0, 40)}`);
  }
  return missing;
}"""


@pytest.mark.parametrize("tab", TABS)
def test_every_control_on_the_tab_has_a_name(page, app_server: AppServer, tab: str):
    page.goto(f"{app_server.url}/?tab={tab}&dates=all")
    wait_for_dash(page, timeout_ms=60_000)
    page.wait_for_timeout(1500)  # generated controls (what-if) render after the model list arrives
    wait_for_dash(page, timeout_ms=60_000)
    assert page.evaluate(UNNAMED_CONTROLS) == []
