// glassbox: the few lines of JavaScript the pages need.
(function () {
  "use strict";
  // Every htmx request carries the CSRF token rendered into the page.
  document.addEventListener("htmx:configRequest", function (e) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) e.detail.headers["X-CSRF-Token"] = meta.content;
  });

  // Times are rendered in UTC as <time datetime>; show them in the viewer's zone.
  var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  function localizeTimes(root) {
    (root || document).querySelectorAll("time[datetime]:not([data-local])").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        if (!/ago$/.test(t.textContent)) t.textContent = fmt.format(d);
        t.title = d.toISOString();
        t.dataset.local = "1";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localizeTimes(); });
  document.addEventListener("htmx:afterSettle", function (e) { localizeTimes(e.target); });

  // Toasts dismiss on click and fade after a while.
  document.addEventListener("click", function (e) {
    var close = e.target.closest(".toast-close");
    if (close) close.parentElement.remove();
    var copy = e.target.closest("button.copy");
    if (copy) {
      var src = document.querySelector(copy.dataset.copy);
      if (src && navigator.clipboard) navigator.clipboard.writeText(src.textContent.trim()).then(function () { copy.textContent = "Copied"; });
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.target.id === "toasts") {
      var last = e.target.lastElementChild;
      if (last) setTimeout(function () { last.remove(); }, 8000);
    }
  });
  // A network failure (server down, connection reset) also gets a toast.
  document.addEventListener("htmx:sendError", function () {
    var box = document.getElementById("toasts");
    if (!box) return;
    var t = document.createElement("div");
    t.className = "toast toast-error"; t.setAttribute("role", "alert");
    t.textContent = "Could not reach the server. Check your connection and try again.";
    box.appendChild(t); setTimeout(function () { t.remove(); }, 8000);
  });
})();
