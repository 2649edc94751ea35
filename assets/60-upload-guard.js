/* The browser refuses a file over the upload limit or of another type and sends nothing (dcc.Upload's max_size
   and accept): say why in the upload's note and clear the previous file's report, so no stale report stays.
   Called by the clientside callback dashboard/upload_guard.py registers for each upload box. */
(function () {
  "use strict";
  var watched = {};
  var mb = function (n) { return (n / 1048576).toFixed(n % 1048576 ? 1 : 0) + " MB"; };

  window.clickstreamUploadGuard = function (uploadId, maxBytes, accept, noteId, storeId, reportId, hint) {
    var dc = window.dash_clientside;
    if (watched[uploadId]) { return dc.no_update; }
    watched[uploadId] = true;
    var suffixes = accept.split(",").map(function (s) { return s.trim().toLowerCase(); });
    function check(files) {
      if (!files || !files.length) { return; }
      var f = files[0];
      var text = null;
      if (f.size > maxBytes) {
        text = "'" + f.name + "' is " + mb(f.size) + ", over the upload limit of " + mb(maxBytes)
          + ": it was not uploaded. " + hint;
      } else if (!suffixes.some(function (s) { return f.name.toLowerCase().endsWith(s); })) {
        text = "'" + f.name + "' was not uploaded: only " + suffixes.join(" ")
          + " files are accepted. Save a spreadsheet as CSV (UTF-8) first.";
      }
      dc.set_props(noteId, {children: text, is_open: text !== null});
      if (text !== null) {
        dc.set_props(storeId, {data: null});
        if (reportId) { dc.set_props(reportId, {children: null}); }
      }
    }
    var inside = function (e) { return e.target && e.target.closest && e.target.closest("#" + uploadId); };
    document.addEventListener("change", function (e) { if (inside(e)) { check(e.target.files); } }, true);
    document.addEventListener("drop", function (e) {
      if (inside(e)) { check(e.dataTransfer && e.dataTransfer.files); }
    }, true);
    return dc.no_update;
  };
})();
