/* Failover Dashboard: the little behaviour the pages need. No build, no framework.
 * - [data-src] regions re-fetch their server-rendered HTML every few seconds, until it holds [data-final];
 * - checkbox selections enable the buttons that need one (selection kept across refreshes);
 * - [data-chart] elements are drawn with the locally served plotly.js;
 * - a submitted form disables its buttons (the server also ignores a second submit). */
(function () {
  "use strict";

  function selectionBoxes(root) {
    return Array.prototype.slice.call((root || document).querySelectorAll('input[type=checkbox][name=t], input[type=checkbox][name=proposals]'));
  }

  function updateSelection() {
    var chosen = selectionBoxes().filter(function (b) { return b.checked; });
    var counter = document.getElementById("n-selected");
    if (counter) counter.textContent = chosen.length;
    document.querySelectorAll("[data-needs-selection]").forEach(function (btn) {
      // A button of one action kind ([data-kind]) needs a selected row it can apply to
      // (the row's data-kinds, from the server); the others need any selection.
      var kind = btn.getAttribute("data-kind");
      btn.disabled = !chosen.some(function (b) {
        var kinds = b.getAttribute("data-kinds");
        return !kind || kinds === null || (" " + kinds + " ").indexOf(" " + kind + " ") >= 0;
      });
    });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id === "select-all") {
      selectionBoxes().forEach(function (b) { b.checked = t.checked; });
    }
    if (t.type === "checkbox") updateSelection();
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.method && form.method.toLowerCase() === "post") {
      // Let the browser read the clicked button first, then block a second click.
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    }
  });

  function startLive(region) {
    var interval = parseInt(region.getAttribute("data-interval") || "5000", 10);
    var busy = false;
    var timer = null;
    // A region whose content says it is over ([data-final], e.g. an action's outcome) stops polling.
    function isFinal() { return region.querySelector("[data-final]") !== null; }
    if (isFinal()) return;
    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(region.getAttribute("data-src") + window.location.search, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" }
      }).then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) {
          // Signed out meanwhile: a full reload shows the login page.
          window.location.reload();
          return null;
        }
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html === null || html === undefined) return;
        var checked = selectionBoxes(region).filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
        var all = document.getElementById("select-all");
        var allChecked = all && all.checked;
        region.innerHTML = html;
        selectionBoxes(region).forEach(function (b) { b.checked = checked.indexOf(b.value) >= 0; });
        all = document.getElementById("select-all");
        if (all) all.checked = allChecked;
        updateSelection();
        if (isFinal()) window.clearInterval(timer);
      }).catch(function () { /* the server is restarting: try again next time */ })
        .then(function () { busy = false; });
    }
    timer = window.setInterval(refresh, interval);
  }

  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var spec = JSON.parse(document.getElementById(el.getAttribute("data-chart")).textContent);
      window.Plotly.newPlot(el, spec.data, spec.layout, { displaylogo: false, responsive: true, displayModeBar: false });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-src]").forEach(startLive);
    updateSelection();
  });
  window.addEventListener("load", drawCharts);
})();
