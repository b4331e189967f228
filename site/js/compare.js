/* Compare page: experiments side by side (?ids=a,b,...), differing fields highlighted, identical
 * ones folded, metric curves overlaid. Reads experiments/<id>/data.json. textContent only.
 */
(function () {
  "use strict";
  var Q = window.ModelKBQuery;

  function siteBase() {
    try { return JSON.parse(document.getElementById("__config").textContent).base.replace(/\/?$/, "/"); }
    catch (e) { return "../"; }
  }

  function cellText(cell) {
    var decoded = Q.decodeCell(cell);
    return decoded === null ? undefined : decoded[0];
  }

  function headerRow(table, experiments, base) {
    var thead = table.querySelector("thead");
    thead.textContent = "";
    var tr = document.createElement("tr");
    var th = document.createElement("th");
    th.textContent = "field";
    tr.appendChild(th);
    experiments.forEach(function (e) {
      var cell = document.createElement("th");
      var a = document.createElement("a");
      a.href = base + "experiments/" + encodeURIComponent(e.id) + "/";
      a.textContent = e.name;
      a.title = e.id;
      cell.appendChild(a);
      tr.appendChild(cell);
    });
    thead.appendChild(tr);
  }

  function fillRows(table, keys, experiments, differing) {
    var tbody = table.querySelector("tbody");
    tbody.textContent = "";
    keys.forEach(function (key) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-key", key);
      if (differing) tr.className = "mkb-diff";
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = key;
      tr.appendChild(th);
      experiments.forEach(function (e) {
        var td = document.createElement("td");
        var text = cellText(e.cells[key]);
        if (text === undefined) { td.className = "mkb-missing-value"; td.textContent = "—"; }
        else td.textContent = text;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  /** Split the union of keys into differing and identical (a missing value differs). */
  function diffKeys(experiments) {
    var keys = new Set();
    experiments.forEach(function (e) { Object.keys(e.cells).forEach(function (k) { keys.add(k); }); });
    var differing = [], same = [];
    Array.from(keys).sort(Q.cmp).forEach(function (key) {
      var first = cellText(experiments[0].cells[key]);
      var equal = experiments.every(function (e) { return cellText(e.cells[key]) === first; });
      (equal ? same : differing).push(key);
    });
    return { differing: differing, same: same };
  }

  function charts(container, experiments) {
    var C = window.ModelKBCharts;
    var metrics = [];
    experiments.forEach(function (e) { C.metricNames(e.history).forEach(function (m) { if (metrics.indexOf(m) < 0) metrics.push(m); }); });
    metrics.slice(0, 4).forEach(function (metric) {
      var series = [];
      experiments.forEach(function (e, i) {
        C.historySeries(e.history, metric, e.name).forEach(function (s) {
          s.color = C.color(i);
          series.push(s);
        });
      });
      C.lineChart(container, { title: metric + " (solid: train, dashed: validation)", xLabel: "epoch", series: series });
    });
  }

  function init() {
    var app = document.getElementById("mkb-compare-app");
    if (!app) return;
    var base = siteBase();
    var raw = new URL(location.href).searchParams.get("ids") || "";
    var ids = raw.split(",").map(function (s) { return s.trim(); }).filter(function (s) { return /^[A-Za-z0-9_-]{1,80}$/.test(s); });
    var help = document.getElementById("mkb-compare-help");
    if (ids.length < 2) { app.setAttribute("data-ready", "true"); return; }
    Promise.all(ids.map(function (id) {
      return fetch(base + "experiments/" + encodeURIComponent(id) + "/data.json").then(function (r) {
        if (!r.ok) throw new Error("no experiment " + id);
        return r.json();
      });
    })).then(function (experiments) {
      help.textContent = "Comparing " + experiments.length + " experiments. Rows that differ are highlighted.";
      var split = diffKeys(experiments);
      var diff = document.getElementById("mkb-compare-diff"), same = document.getElementById("mkb-compare-same");
      headerRow(diff, experiments, base);
      headerRow(same, experiments, base);
      fillRows(diff, split.differing, experiments, true);
      fillRows(same, split.same, experiments, false);
      document.getElementById("mkb-compare-same-summary").textContent = split.same.length + " identical fields";
      charts(document.getElementById("mkb-compare-charts"), experiments);
      app.setAttribute("data-ready", "true");
    }).catch(function (err) {
      help.textContent = "Cannot compare: " + err.message;
      app.setAttribute("data-ready", "error");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
