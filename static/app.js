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
  // When a swap lands after another one replaced the parts it was aimed at:
  // - background loads marked data-drop-stale (the KPI and facet placeholders,
  //   the auto-refresh, load more) are dropped whole once their element has
  //   left the page: htmx would still apply their out-of-band parts (a KPI
  //   fragment's event count and pager, a refresh's filter fields) to the
  //   newer view;
  // - anything else (what the user clicked or typed) lands in the region as it
  //   is now: htmx resolves the target when it sends the request, and would
  //   swap into the replaced, detached copy.
  // The listeners sit on the elements themselves: events fired on a detached
  // element never reach the document.

  // Runs fn on the event `name` that this very request (its xhr) fires on el:
  // other requests aimed at el, and descendants' events bubbling up, pass by.
  function onAnswer(el, name, xhr, fn) {
    function handler(ev) {
      if (ev.target !== el || ev.detail.xhr !== xhr) return;
      el.removeEventListener(name, handler);
      fn(ev);
    }
    el.addEventListener(name, handler);
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt, target = e.detail.target, xhr = e.detail.xhr;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-drop-stale")) {
      onAnswer(elt, "htmx:beforeOnLoad", xhr, function (ev) { if (!elt.isConnected) ev.preventDefault(); });
    } else if (target && target.id) {
      onAnswer(target, "htmx:beforeSwap", xhr, function (ev) {
        var live = !target.isConnected && document.getElementById(target.id);
        if (live) ev.detail.target = live;
      });
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

  // ---- Audit log page ----
  // The 30 s auto-refresh polls only while the box is ticked (and htmx's
  // trigger filter also checks that the tab is visible).
  window.autoRefreshOn = function () {
    var box = document.getElementById("auto-refresh");
    return !!(box && box.checked);
  };
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("auto-refresh");
    if (!box) return;
    try { box.checked = localStorage.getItem("glassbox.autoRefresh") === "1"; } catch (_) { /* private mode */ }
    box.addEventListener("change", function () {
      try { localStorage.setItem("glassbox.autoRefresh", box.checked ? "1" : "0"); } catch (_) { /* ignore */ }
    });
  });

  // The filter form sends only the filters that are set, so URLs stay short.
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.verb !== "get" || !e.detail.elt || e.detail.elt.id !== "filters") return;
    var fd = e.detail.formData;
    if (!fd) return;
    Array.from(new Set(Array.from(fd.keys()))).forEach(function (k) {
      if (fd.getAll(k).every(function (v) { return v === ""; })) fd.delete(k);
    });
  });

  // Custom range: datetime-local inputs (the viewer's zone) mirror hidden
  // since/until fields that carry UTC ISO 8601.
  function pad(n) { return String(n).padStart(2, "0"); }
  function toLocalInput(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function fillRange(root) {
    var box = (root && root.id === "filter-fields") ? root : document.getElementById("filter-fields");
    if (!box) return;
    [["f-since-local", "f-since", "windowSince"], ["f-until-local", "f-until", "windowUntil"]].forEach(function (x) {
      var local = document.getElementById(x[0]), hidden = document.getElementById(x[1]);
      if (local && hidden) local.value = toLocalInput(hidden.value || box.dataset[x[2]] || "");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fillRange(); });
  document.addEventListener("htmx:afterSettle", function () { fillRange(); });
  document.addEventListener("htmx:oobAfterSwap", function () { fillRange(); });
  // Capture phase: runs before htmx reads the form on the bubbling "change".
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("input[type=datetime-local][data-utc]")) {
      var hidden = document.getElementById(t.dataset.utc);
      var d = t.value ? new Date(t.value) : null;
      if (hidden) hidden.value = d && !isNaN(d) ? d.toISOString() : "";
      var range = document.getElementById("f-range");
      if (range) range.value = "";
    } else if (t.id === "f-range") {
      var since = document.getElementById("f-since"), until = document.getElementById("f-until");
      var box = document.getElementById("filter-fields");
      if (t.value === "") {
        // "Custom" starts from the window on screen.
        if (since && !since.value && box) since.value = box.dataset.windowSince || "";
        if (until && !until.value && box) until.value = box.dataset.windowUntil || "";
      } else {
        if (since) since.value = "";
        if (until) until.value = "";
      }
    }
  }, true);

  // Active-users card: focus (and open) the user facet select.
  document.addEventListener("click", function (e) {
    var card = e.target.closest("[data-focus]");
    if (card) {
      var sel = document.getElementById(card.dataset.focus);
      if (sel) {
        e.preventDefault();
        sel.scrollIntoView({ block: "center" });
        sel.focus();
        try { if (sel.showPicker) sel.showPicker(); } catch (_) { /* needs a user gesture in some browsers */ }
      }
    }
    var close = e.target.closest("[data-close-panel]");
    if (close) {
      var panel = document.getElementById("panel");
      if (panel) panel.innerHTML = "";
    }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      var panel = document.getElementById("panel");
      if (panel && panel.innerHTML) panel.innerHTML = "";
    }
  });
  // The side panel takes focus when it opens, for keyboard users.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.target.id === "panel") {
      var h = e.target.querySelector("h2");
      var closeBtn = e.target.querySelector("[data-close-panel]");
      if (closeBtn) closeBtn.focus();
      else if (h) h.focus();
    }
  });
})();
