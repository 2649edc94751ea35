/* Accessible names for parts that Dash renders without one:
   - the thumbs of dcc.Slider / dcc.RangeSlider (role="slider") take the text of the <label for=...>
     that names the slider (or its aria-label), with "from"/"to" for the two thumbs of a range;
   - the hidden file input of dcc.Upload takes its label, or the upload area's own text;
   - the number box Dash draws beside a slider takes the slider's label with "(value)".
   Runs on every DOM change, since Dash renders tabs and generated controls after load. */
(function () {
  "use strict";

  function labelText(el) {
    for (var node = el; node && node !== document.body; node = node.parentElement) {
      if (node.id) {
        var label = document.querySelector('label[for="' + CSS.escape(node.id) + '"]');
        if (label && label.textContent.trim()) { return label.textContent.trim(); }
        var own = node.getAttribute("aria-label");
        if (own && own.trim()) { return own.trim(); }
      }
    }
    return null;
  }

  function nameSliders() {
    var thumbs = document.querySelectorAll('[role="slider"]:not([aria-label]):not([aria-labelledby])');
    thumbs.forEach(function (thumb) {
      var text = labelText(thumb);
      if (!text) { return; }
      var siblings = thumb.parentElement ? thumb.parentElement.querySelectorAll('[role="slider"]') : [];
      if (siblings.length === 2) { text += siblings[0] === thumb ? " (from)" : " (to)"; }
      thumb.setAttribute("aria-label", text);
    });
  }

  function nameSliderBoxes() {
    // The number box Dash 4 draws beside a slider: named after the slider's label.
    document.querySelectorAll('[class*="slider"] input:not([type="file"]):not([aria-label]):not([aria-labelledby])')
      .forEach(function (input) {
        if (input.labels && input.labels.length) { return; }
        var text = labelText(input);
        if (text) { input.setAttribute("aria-label", text + " (value)"); }
      });
  }

  function nameUploads() {
    document.querySelectorAll('input[type="file"]:not([aria-label])').forEach(function (input) {
      var area = input.parentElement;
      var text = labelText(input) || (area && area.textContent.trim()) || "Choose a file";
      input.setAttribute("aria-label", text.replace(/\s+/g, " ").slice(0, 120));
    });
  }

  var pending = false;
  function run() {
    pending = false;
    nameSliders();
    nameSliderBoxes();
    nameUploads();
  }
  new MutationObserver(function () {
    if (!pending) { pending = true; window.requestAnimationFrame(run); }
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
