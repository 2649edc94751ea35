/* Keyboard use of the app's tabs and dates (WAI-ARIA tabs pattern, roving tabindex).
 *
 * The main tabs form a tablist: the active tab is in the Tab order (tabindex 0), the others are reached
 * with the arrow keys (Left/Right, Home/End), which move the focus and switch the tab; Enter or Space
 * switch too. Dates typed into the date pickers are accepted as ISO (YYYY-MM-DD); 2008-6-1, 2008/06/01,
 * 2008.06.01 and 20080601 are rewritten to that form before the picker reads them.
 */
(function () {
  "use strict";
  var TABLIST = "#app-main-tabs";

  function tabsOf(list) {
    return Array.prototype.slice.call(list.querySelectorAll(".nav-link"));
  }

  function refresh() {
    var lists = document.querySelectorAll(TABLIST + ", .nav-tabs");
    lists.forEach(function (list) {
      list.setAttribute("role", "tablist");
      tabsOf(list).forEach(function (tab) {
        var active = tab.classList.contains("active");
        tab.setAttribute("role", "tab");
        tab.setAttribute("aria-selected", active ? "true" : "false");
        tab.setAttribute("tabindex", active ? "0" : "-1");
        if (tab.parentElement) { tab.parentElement.setAttribute("role", "presentation"); }
      });
    });
  }

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest(".nav-tabs .nav-link");
    if (!tab) { return; }
    var tabs = tabsOf(tab.closest(".nav-tabs"));
    var index = tabs.indexOf(tab);
    var next = null;
    if (event.key === "ArrowRight") { next = tabs[(index + 1) % tabs.length]; }
    else if (event.key === "ArrowLeft") { next = tabs[(index - 1 + tabs.length) % tabs.length]; }
    else if (event.key === "Home") { next = tabs[0]; }
    else if (event.key === "End") { next = tabs[tabs.length - 1]; }
    else if (event.key === "Enter" || event.key === " ") { next = tab; }
    if (!next) { return; }
    event.preventDefault();
    next.focus();
    next.click();
  });

  var ISO_LIKE = /^\s*(\d{4})[-\/.\s]?(\d{1,2})[-\/.\s]?(\d{1,2})\s*$/;
  function pad(n) { return (n.length < 2 ? "0" : "") + n; }
  document.addEventListener("change", normaliseDate, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { normaliseDate(event); }
  }, true);
  function normaliseDate(event) {
    var input = event.target;
    if (!input || !input.classList || !input.classList.contains("DateInput_input")) { return; }
    var match = ISO_LIKE.exec(input.value);
    if (!match) { return; }
    var iso = match[1] + "-" + pad(match[2]) + "-" + pad(match[3]);
    if (iso === input.value) { return; }
    var setter = Object.getOwnPropertyDescriptor(window.HTMLInputElement.prototype, "value").set;
    setter.call(input, iso);  // as React expects, so the picker sees the change
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  var scheduled = false;
  function schedule() {
    if (scheduled) { return; }
    scheduled = true;
    window.requestAnimationFrame(function () { scheduled = false; refresh(); });
  }
  new MutationObserver(schedule).observe(document.documentElement, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["class"]
  });
  document.addEventListener("DOMContentLoaded", refresh);
})();
