/* Experiment page: tabs, metric curves, the lazily loaded Netron viewer. */
(function () {
  "use strict";

  function init() {
    var page = document.getElementById("mkb-experiment");
    if (!page) return;
    var data = JSON.parse(document.getElementById("mkb-data").textContent);
    window.ModelKBExperiment = data;

    var tabs = page.querySelectorAll("[data-tab]");
    var panels = page.querySelectorAll("[data-tab-panel]");
    function show(name) {
      tabs.forEach(function (t) { t.setAttribute("aria-selected", String(t.getAttribute("data-tab") === name)); });
      panels.forEach(function (p) { p.hidden = p.getAttribute("data-tab-panel") !== name; });
      if (name === "architecture") {
        var frame = document.getElementById("mkb-netron");
        if (frame && !frame.getAttribute("src")) frame.setAttribute("src", frame.getAttribute("data-src"));
      }
      if (name === "inference" && window.ModelKBInfer) window.ModelKBInfer.activate(data);
      if (history.replaceState) history.replaceState(null, "", "#" + name);
    }
    page.classList.add("mkb-js");
    tabs.forEach(function (t) { t.addEventListener("click", function () { show(t.getAttribute("data-tab")); }); });
    var initial = (location.hash || "").replace(/^#/, "");
    show(Array.prototype.some.call(tabs, function (t) { return t.getAttribute("data-tab") === initial; }) ? initial : "metadata");

    var charts = document.getElementById("mkb-curves");
    if (charts && window.ModelKBCharts && data.history.length) {
      window.ModelKBCharts.metricNames(data.history).slice(0, 4).forEach(function (metric) {
        window.ModelKBCharts.lineChart(charts, {
          title: metric, xLabel: "epoch",
          series: window.ModelKBCharts.historySeries(data.history, metric)
        });
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
