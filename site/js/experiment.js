/* Experiment page: tabs, metric curves, the lazily loaded Netron viewer. */
(function () {
  "use strict";

  function init() {
    var page = document.getElementById("mkb-experiment");
    if (!page) return;
    // The run's data.json (also what the compare page reads): fetched, not embedded, so each
    // page carries it once. window.ModelKBExperiment is set when it arrives.
    var data = fetch(page.getAttribute("data-src")).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (d) { window.ModelKBExperiment = d; return d; });

    var tabs = page.querySelectorAll("[data-tab]");
    var panels = page.querySelectorAll("[data-tab-panel]");
    function show(name) {
      tabs.forEach(function (t) { t.setAttribute("aria-selected", String(t.getAttribute("data-tab") === name)); });
      panels.forEach(function (p) { p.hidden = p.getAttribute("data-tab-panel") !== name; });
      if (name === "architecture") {
        var frame = document.getElementById("mkb-netron");
        if (frame && !frame.getAttribute("src")) frame.setAttribute("src", frame.getAttribute("data-src"));
      }
      if (name === "inference" && window.ModelKBInfer) data.then(function (d) { window.ModelKBInfer.activate(d); });
      if (history.replaceState) history.replaceState(null, "", "#" + name);
    }
    page.classList.add("mkb-js");
    tabs.forEach(function (t) { t.addEventListener("click", function () { show(t.getAttribute("data-tab")); }); });
    var initial = (location.hash || "").replace(/^#/, "");
    show(Array.prototype.some.call(tabs, function (t) { return t.getAttribute("data-tab") === initial; }) ? initial : "metadata");

    fillChecklist(document.getElementById("mkb-checklist"));

    var charts = document.getElementById("mkb-curves");
    data.then(function (d) {
      if (charts && window.ModelKBCharts && d.history.length) {
        window.ModelKBCharts.metricNames(d.history).slice(0, 4).forEach(function (metric) {
          window.ModelKBCharts.lineChart(charts, {
            title: metric, xLabel: "epoch",
            series: window.ModelKBCharts.historySeries(d.history, metric)
          });
        });
      }
      page.setAttribute("data-ready", "true");
    });
  }

  var LABELS = {filled: "recorded", needs_user_input: "needs your words", missing: "missing", project_level: "project-level"};
  var MARKS = {filled: "\u2714", needs_user_input: "\u270e", missing: "\u2718", project_level: "\u2026"};

  function lookup(root, path) {
    var node = root;
    for (var i = 0; i < path.length; i++) {
      if (node === null || typeof node !== "object" || !Object.prototype.hasOwnProperty.call(node, path[i])) return undefined;
      node = node[path[i]];
    }
    return node;
  }

  /* The project-level parts of the checklist (number of runs, hyperparameter ranges, the group's
     mean +- std) come from data/checklist/<slug>.json, rewritten whenever the project's runs change,
     so this page never goes stale. Data is written with textContent only. */
  function fillChecklist(list) {
    if (!list || !window.fetch) return;
    fetch(list.getAttribute("data-src")).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (project) {
      list.querySelectorAll("span[data-project]").forEach(function (span) {
        var path = JSON.parse(span.getAttribute("data-project"));
        var value = lookup(project, path);
        if (typeof value === "string") span.textContent = value;
        else if (path[0] === "reproduced") span.textContent = "";
      });
      list.querySelectorAll("li[data-project]").forEach(function (li) {
        var item = lookup(project, JSON.parse(li.getAttribute("data-project")));
        if (!item || typeof item.status !== "string") return;
        li.className = "mkb-ck-" + item.status;
        li.querySelector("b").textContent = (MARKS[item.status] || "?") + " " + li.querySelector("b").textContent.replace(/^\S+ /, "");
        li.querySelector("i").textContent = LABELS[item.status] || item.status;
        li.querySelector("span").textContent = String(item.text || "");
        li.querySelectorAll("br, em").forEach(function (node) { node.remove(); });
        if (item.how_to_complete) {
          var how = document.createElement("em");
          how.textContent = "To complete: " + item.how_to_complete;
          li.append(document.createElement("br"), how);
        }
      });
      var questions = project.questions || {};
      list.querySelectorAll("li[data-item]").forEach(function (li) {
        var question = questions[li.getAttribute("data-item")];
        if (typeof question !== "string") return;
        var small = document.createElement("small");
        small.className = "mkb-ck-q";
        small.textContent = question;
        li.append(small);
      });
      list.setAttribute("data-ready", "true");
    }).catch(function () {
      list.setAttribute("data-ready", "failed");  // the fallbacks rendered into the page stay
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
