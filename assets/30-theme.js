/* Light or dark theme: Bootstrap's data-bs-theme on <html>, toggled by the header button, remembered in localStorage.
   The button's state is announced with aria-pressed; the figures keep their light panels in both themes. */
(function () {
  "use strict";
  var KEY = "clickstream-theme";
  var BUTTON_ID = "app-theme-toggle";

  function stored() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function remember(theme) {
    try { window.localStorage.setItem(KEY, theme); } catch (e) { /* private mode: the choice lasts this page */ }
  }
  function current() {
    return document.documentElement.getAttribute("data-bs-theme") === "dark" ? "dark" : "light";
  }
  function syncButton() {
    var button = document.getElementById(BUTTON_ID);
    if (button) { button.setAttribute("aria-pressed", current() === "dark" ? "true" : "false"); }
  }
  function apply(theme) {
    document.documentElement.setAttribute("data-bs-theme", theme === "dark" ? "dark" : "light");
    syncButton();
  }

  apply(stored() || "light");
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("#" + BUTTON_ID) : null;
    if (!button) { return; }
    var next = current() === "dark" ? "light" : "dark";
    remember(next);
    apply(next);
  });
  // The header is rendered by Dash after this script runs: give the button its state once it exists.
  new MutationObserver(function () {
    var button = document.getElementById(BUTTON_ID);
    if (button && !button.hasAttribute("aria-pressed")) { syncButton(); }
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
