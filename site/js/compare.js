/* Compare page: experiments side by side (?ids=a,b,...), their metric curves overlaid.
 * Reads experiments/<id>/data.json. Fields come in sections (final metrics, hyperparameters, dataset,
 * architecture, framework and environment, other): each shows the fields that differ and folds the
 * identical ones; fields that differ between any two runs by nature (pids, times, paths, durations,
 * hosts) wait in a folded "Run details" section at the end. Every section's table sits in one
 * scroll container with the same column widths, so the runs line up and the field column stays put.
 * textContent only.
 */
(function () {
  "use strict";
  var Q = window.ModelKBQuery, C = window.ModelKBCharts;

  /** [id, title, the keys it takes, the prefix not repeated in its field names]; first match wins. */
  var SECTIONS = [
    ["metrics", "Final metrics", /^metrics\./, /^metrics\.(final\.)?/],
    ["hyperparameters", "Hyperparameters", /^(hyperparameters\.|seed$)/, /^hyperparameters\./],
    ["dataset", "Dataset", /^dataset\./, /^dataset\./],
    ["architecture", "Architecture", /^architecture\./, /^architecture\./],
    ["environment", "Framework and environment", /^(framework|context|determinism|code|onnx|resources)\./, null],
    ["other", "Other", /^/, null]
  ];
  /** Run details: the run's own id and name, and (by the key's last part) process ids, timestamps,
   *  paths and files, durations, hosts. */
  var VOLATILE = new RegExp("^(id|name)$|(^|\\.)(pid|created|finished|started|ended|timestamp|duration" +
    "|path|paths|file|files|entry|cwd|command|host|hostname)$|_(s|ms|seconds|at|time|path|file|dir)$");
  var NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

  function siteBase() {
    try { return JSON.parse(document.getElementById("__config").textContent).base.replace(/\/?$/, "/"); }
    catch (e) { return "../"; }
  }

  /** [text, number] of a run's field, number null unless the text is a number; null when absent
   *  (own keys only: a field named "constructor" must not find Object's). */
  function value(e, key) {
    if (!Object.prototype.hasOwnProperty.call(e.cells, key)) return null;
    var v = Q.decodeCell(e.cells[key]);
    return v === null ? null : [v[0], NUMBER.test(v[0]) ? v[1] : null];
  }

  /** Run labels: names, with the id's tail where two runs share one (legend entries must differ). */
  function labels(experiments) {
    var count = {};
    experiments.forEach(function (e) { count[e.name] = (count[e.name] || 0) + 1; });
    return experiments.map(function (e) { return count[e.name] > 1 ? e.name + " ·" + e.id.slice(-4) : e.name; });
  }

  /** The sections with their differing and identical keys (a field some runs lack differs); in each,
   *  the fields every run has come before those only some have. */
  function sections(experiments) {
    var keys = new Set();
    experiments.forEach(function (e) { Object.keys(e.cells).forEach(function (k) { keys.add(k); }); });
    var out = SECTIONS.map(function (s) { return { id: s[0], title: s[1], match: s[2], strip: s[3], differ: [], same: [] }; });
    var run = { id: "run", title: "Run details", strip: null, differ: [], same: [] };
    Array.from(keys).sort(Q.cmp).forEach(function (key) {
      var section = VOLATILE.test(key) ? run : out.find(function (s) { return s.match.test(key); });
      var texts = experiments.map(function (e) { var v = value(e, key); return v && v[0]; });
      var same = texts.every(function (t) { return t === texts[0]; });
      (same ? section.same : section.differ).push(key);
    });
    function gaps(key) { return experiments.some(function (e) { return value(e, key) === null; }) ? 1 : 0; }
    out.forEach(function (s) { s.differ.sort(function (a, b) { return gaps(a) - gaps(b); }); });
    return { sections: out.filter(function (s) { return s.differ.length || s.same.length; }), run: run };
  }

  /** Indices of the runs with the best value of a final metric (by its name's direction), or null. */
  function bestRuns(key, experiments) {
    var direction = null;
    experiments.forEach(function (e) { direction = direction || (e.directions || {})[key] || null; });
    if (!direction) return null;
    var numbers = experiments.map(function (e) { var v = value(e, key); return v && v[1]; });
    var present = numbers.filter(function (n) { return n !== null; });
    if (present.length < 2) return null;
    var best = (direction === "lower" ? Math.min : Math.max).apply(null, present);
    var runs = new Set();
    numbers.forEach(function (n, i) { if (n === best) runs.add(i); });
    return runs;
  }

  function table(n) {
    var t = document.createElement("table");
    t.className = "mkb-table mkb-compare-table";
    var cols = document.createElement("colgroup");
    for (var i = 0; i <= n; i++) {
      var col = document.createElement("col");
      col.className = i ? "mkb-run-col" : "mkb-field-col";
      cols.appendChild(col);
    }
    t.appendChild(cols);
    return t;
  }

  function header(experiments, names, base) {
    var t = table(experiments.length);
    t.id = "mkb-compare-head";
    t.classList.add("mkb-compare-head");
    var tr = t.createTHead().insertRow();
    var corner = document.createElement("th");
    corner.className = "mkb-field";
    corner.textContent = "field";
    tr.appendChild(corner);
    experiments.forEach(function (e, i) {
      var th = document.createElement("th");
      th.setAttribute("data-id", e.id);
      th.style.setProperty("--mkb-run-color", C.color(i));
      var a = document.createElement("a");
      a.href = base + "experiments/" + encodeURIComponent(e.id) + "/";
      a.textContent = names[i];
      a.title = e.name + " (" + e.id + ")";
      th.appendChild(a);
      tr.appendChild(th);
    });
    return t;
  }

  function rows(t, keys, experiments, section, differs) {
    var body = t.createTBody();
    keys.forEach(function (key) {
      var tr = body.insertRow();
      tr.setAttribute("data-key", key);
      if (differs) tr.className = "mkb-diff";
      var th = document.createElement("th");
      th.scope = "row";
      th.title = key;
      th.textContent = section.strip ? key.replace(section.strip, "") : key;
      tr.appendChild(th);
      var best = differs && section.id === "metrics" ? bestRuns(key, experiments) : null;
      experiments.forEach(function (e, i) {
        var td = tr.insertCell();
        var v = value(e, key);
        if (v === null) { td.className = "mkb-missing-value"; td.textContent = "—"; return; }
        td.textContent = v[1] === null ? v[0] : C.forPeople(v[1]);
        td.title = v[0];
        if (best && best.has(i)) td.classList.add("mkb-best");
      });
    });
    return t;
  }

  function folded(className, summaryText) {
    var details = document.createElement("details");
    details.className = className;
    var summary = document.createElement("summary");
    summary.textContent = summaryText;
    details.appendChild(summary);
    return details;
  }

  function sectionBox(section, experiments) {
    var box = document.createElement("section");
    box.className = "mkb-compare-section";
    box.setAttribute("data-section", section.id);
    var title = document.createElement("h3");
    title.textContent = section.title + " ";
    var n = document.createElement("span");
    n.className = "mkb-n";
    n.textContent = section.differ.length ? section.differ.length + " differ" : "no differences";
    title.appendChild(n);
    box.appendChild(title);
    var count = experiments.length;
    if (section.differ.length) box.appendChild(rows(table(count), section.differ, experiments, section, true));
    if (section.same.length) {
      var same = folded("mkb-same", section.same.length + " identical field" + (section.same.length === 1 ? "" : "s"));
      same.appendChild(rows(table(count), section.same, experiments, section, false));
      box.appendChild(same);
    }
    return box;
  }

  function runDetails(run, experiments) {
    var total = run.differ.length + run.same.length;
    var box = folded("mkb-compare-section mkb-run-details", "Run details: " + total +
      " fields that change from run to run (ids, pids, times, paths, durations, hosts)");
    box.id = "mkb-compare-run";
    box.setAttribute("data-section", run.id);
    var t = table(experiments.length);
    rows(t, run.differ, experiments, run, true);
    rows(t, run.same, experiments, run, false);
    box.appendChild(t);
    return box;
  }

  function charts(container, experiments, names) {
    var metrics = [];
    experiments.forEach(function (e) { C.metricNames(e.history).forEach(function (m) { if (metrics.indexOf(m) < 0) metrics.push(m); }); });
    metrics.slice(0, 4).forEach(function (metric) {
      var series = [];
      experiments.forEach(function (e, i) {
        C.historySeries(e.history, metric, names[i]).forEach(function (s) {
          s.color = C.color(i);
          s.group = names[i];
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
      help.textContent = "Comparing " + experiments.length + " experiments. Only the fields that differ are shown; " +
        "the best value of each final metric is marked.";
      var names = labels(experiments);
      var split = sections(experiments);
      var grid = document.getElementById("mkb-compare-grid");
      grid.style.setProperty("--mkb-runs", String(experiments.length));
      grid.appendChild(header(experiments, names, base));
      split.sections.forEach(function (s) { grid.appendChild(sectionBox(s, experiments)); });
      if (split.run.differ.length || split.run.same.length) grid.appendChild(runDetails(split.run, experiments));
      charts(document.getElementById("mkb-compare-charts"), experiments, names);
      app.setAttribute("data-ready", "true");
    }).catch(function (err) {
      help.textContent = "Cannot compare: " + err.message;
      app.setAttribute("data-ready", "error");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
