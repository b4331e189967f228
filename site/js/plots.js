/* Project page plots: parallel coordinates of the hyperparameters against a chosen metric, and a
 * scatter plot of any two numeric fields, over the runs the query keeps. Rendered by Apache ECharts
 * (canvas), vendored at vendor/echarts/ and loaded only on project pages.
 *
 * The plots read their data through one adapter, tableSource(table), over the project table's
 * public API (site/js/table.js: rowCount, filteredRows, fields, rowId, number, text; its columns
 * load lazily, so the plotted fields' columns are fetched once with table.ensure first). They re-render on
 * the table's "mkb-table-view" event, sent after every query.
 * Text reaches the DOM through textContent; ECharts draws axis names and labels on the canvas, and
 * the tooltips are HTML-escaped (echarts.format.encodeHTML).
 */
(function (root) {
  "use strict";
  var MAX_AXES = 12;         // hyperparameter axes (numbers first, then texts)
  var MAX_CATEGORIES = 40;   // a text field with more distinct values gets no axis
  var SAMPLE = 4000;         // rows looked at to find which fields hold numbers

  function $(id) { return document.getElementById(id); }
  function forPeople(v) { return root.ModelKBCharts ? root.ModelKBCharts.forPeople(v) : String(v); }

  /** The fields the plots can use: numbers, and hyperparameters (category axes). */
  function plottedKeys(table) {
    return (table.fields || []).filter(function (f) {
      return f.kind !== "display" && (f.kind === "num" || f.kind === "mixed" || f.key.indexOf("hyperparameters.") === 0);
    }).map(function (f) { return f.key; });
  }

  /** The one place the plots read the table. */
  function tableSource(table) {
    return {
      count: function () { return table.rowCount(); },
      rows: function () { return table.filteredRows(); },
      keys: function () { return table.fields ? plottedKeys(table) : table.fieldKeys(); },
      number: function (key, i) { var v = table.number(key, i); return typeof v === "number" && isFinite(v) ? v : null; },
      text: function (key, i) { var v = table.text(key, i); return v === undefined || v === null ? null : String(v); },
      id: function (i) { return table.rowId(i); }
    };
  }

  /** Row indices to inspect: the first SAMPLE/2 rows and an even stride through the rest. */
  function sampleRows(n) {
    var rows = [], head = Math.min(n, SAMPLE / 2), i;
    for (i = 0; i < head; i++) rows.push(i);
    var step = Math.max(1, Math.floor((n - head) / (SAMPLE / 2)));
    for (i = head; i < n; i += step) rows.push(i);
    return rows;
  }

  function numericKeys(source) {
    var rows = sampleRows(source.count());
    return source.keys().filter(function (key) {
      for (var j = 0; j < rows.length; j++) if (source.number(key, rows[j]) !== null) return true;
      return false;
    }).sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0); });
  }

  function rank(key) {
    if (key.indexOf("metrics.final.") === 0) return 0;
    if (key.indexOf("hyperparameters.") === 0) return 1;
    return 2;
  }

  /** One axis per hyperparameter that varies over all runs: a value axis when it holds numbers
   *  (log scale when positive over two decades or more), a category axis for a few texts. */
  function hyperparameterAxes(source, numeric) {
    var isNumeric = new Set(numeric), n = source.count(), axes = [];
    source.keys().forEach(function (key) {
      if (key.indexOf("hyperparameters.") !== 0) return;
      var lo = Infinity, hi = -Infinity, seen = new Set(), i, v;
      if (isNumeric.has(key)) {
        for (i = 0; i < n; i++) {
          v = source.number(key, i);
          if (v === null) continue;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        if (hi > lo) axes.push({ key: key, type: lo > 0 && hi / lo >= 100 ? "log" : "value" });
        return;
      }
      for (i = 0; i < n && seen.size <= MAX_CATEGORIES; i++) {
        v = source.text(key, i);
        if (v !== null) seen.add(v);
      }
      if (seen.size > 1 && seen.size <= MAX_CATEGORIES) {
        axes.push({ key: key, type: "category", categories: Array.from(seen).sort() });
      }
    });
    var texts = function (a) { return a.type === "category" ? 1 : 0; };
    return axes.sort(function (a, b) { return texts(a) - texts(b) || (a.key < b.key ? -1 : 1); })
      .slice(0, MAX_AXES).sort(function (a, b) { return a.key < b.key ? -1 : 1; });
  }

  function count(n) { return n.toLocaleString("en-US"); }
  function shortName(key) { return key.replace(/^hyperparameters\./, "").replace(/^metrics\.final\./, ""); }

  function fillSelect(select, keys, chosen) {
    select.textContent = "";
    keys.forEach(function (key) {
      var option = document.createElement("option");
      option.value = key;
      option.textContent = key;
      select.appendChild(option);
    });
    if (chosen) select.value = chosen;
  }

  function Plots(box, echarts, source, config) {
    this.box = box;
    this.echarts = echarts;
    this.source = source;
    this.directions = config.directions || {};
    this.numeric = numericKeys(source);
    this.axes = hyperparameterAxes(source, this.numeric);
    var metrics = this.numeric.filter(function (k) { return k.indexOf("metrics.final.") === 0; });
    this.metrics = metrics.length ? metrics : this.numeric.slice();
    var metric = this.metrics.indexOf(config.metric) >= 0 ? config.metric : this.metrics[0];
    // x starts on the learning rate when it varies, else on the first numeric hyperparameter that does.
    var varying = this.axes.filter(function (a) { return a.type !== "category"; }).map(function (a) { return a.key; });
    var x = varying.indexOf("hyperparameters.learning_rate") >= 0 ? "hyperparameters.learning_rate" : (varying[0] || this.numeric[0]);
    fillSelect($("mkb-parallel-metric"), this.metrics, metric);
    fillSelect($("mkb-scatter-x"), this.numeric, x);
    fillSelect($("mkb-scatter-y"), this.numeric, metric);
    this.parallel = echarts.init($("mkb-parallel"), null, { renderer: "canvas" });
    this.scatter = echarts.init($("mkb-scatter"), null, { renderer: "canvas" });
    var self = this;
    // A changed choice re-draws only its own plot (100,000 lines take seconds).
    $("mkb-parallel-metric").addEventListener("change", function () { self.render("parallel"); });
    ["mkb-scatter-x", "mkb-scatter-y"].forEach(function (id) {
      $(id).addEventListener("change", function () { self.render("scatter"); });
    });
    this.counts = { parallel: 0, scatter: 0 };
    this.scatter.on("click", function (params) {
      var id = params.data && self.source.id(params.data[2]);
      if (id) location.href = "../../experiments/" + encodeURIComponent(id) + "/";
    });
    window.addEventListener("resize", function () { self.parallel.resize(); self.scatter.resize(); });
  }

  Plots.prototype.choice = function () {
    return { metric: $("mkb-parallel-metric").value, x: $("mkb-scatter-x").value, y: $("mkb-scatter-y").value };
  };

  /** Both plots (or only `which`) over the rows the table's query keeps; returns how many runs
   *  each shows. */
  Plots.prototype.render = function (which) {
    var t0 = performance.now();
    var rows = this.source.rows(), choice = this.choice();
    if (!this.numeric.length) {
      $("mkb-plots-status").textContent = "No run of this project records a number to plot.";
      return { parallel: 0, scatter: 0, ms: 0 };
    }
    var shown = this.counts;
    if (which !== "scatter") shown.parallel = this.renderParallel(rows, choice.metric);
    if (which !== "parallel") shown.scatter = this.renderScatter(rows, choice.x, choice.y);
    this.lastRenderMs = performance.now() - t0;
    this.box.setAttribute("data-parallel-runs", String(shown.parallel));
    this.box.setAttribute("data-scatter-runs", String(shown.scatter));
    $("mkb-plots-status").textContent = count(rows.length) + " runs: " + count(shown.parallel) + " with " +
      shortName(choice.metric) + " in the parallel coordinates, " + count(shown.scatter) + " with both fields in the scatter plot.";
    return { parallel: shown.parallel, scatter: shown.scatter, ms: this.lastRenderMs };
  };

  Plots.prototype.renderParallel = function (rows, metric) {
    var source = this.source, axes = this.axes;
    var data = [], lo = Infinity, hi = -Infinity;
    for (var r = 0; r < rows.length; r++) {
      var i = rows[r], score = source.number(metric, i);
      if (score === null) continue;
      var line = new Array(axes.length + 1);
      for (var a = 0; a < axes.length; a++) {
        var v = axes[a].type === "category" ? source.text(axes[a].key, i) : source.number(axes[a].key, i);
        line[a] = v === null ? "-" : v;
      }
      line[axes.length] = score;
      if (score < lo) lo = score;
      if (score > hi) hi = score;
      data.push(line);
    }
    var lower = this.directions[metric] === "lower";
    var parallelAxis = axes.map(function (axis, dim) {
      var spec = { dim: dim, name: shortName(axis.key), type: axis.type, nameTextStyle: { fontSize: 11 } };
      if (axis.type === "category") spec.data = axis.categories;
      else spec.scale = true;
      return spec;
    });
    parallelAxis.push({ dim: axes.length, name: shortName(metric), type: "value", scale: true, nameTextStyle: { fontSize: 11, fontWeight: "bold" } });
    var many = data.length > 2000;
    this.parallel.setOption({
      animation: false,
      parallel: { left: 40, right: 130, top: 40, bottom: 30, parallelAxisDefault: { nameLocation: "end", nameGap: 12, axisLabel: { formatter: axisLabel } } },
      parallelAxis: parallelAxis,
      visualMap: {
        show: true, type: "continuous", dimension: axes.length, min: data.length ? lo : 0, max: data.length ? hi : 1,
        right: 5, top: "middle", itemHeight: 120, itemWidth: 12, text: [shortName(metric) + (lower ? " (lower is better)" : ""), ""],
        textStyle: { fontSize: 10 }, calculable: false,
        inRange: { color: lower ? ["#1a9850", "#fee08b", "#d73027"] : ["#d73027", "#fee08b", "#1a9850"] }
      },
      series: [{
        id: "runs", type: "parallel", data: data, smooth: false,
        lineStyle: { width: many ? 0.5 : 1.5, opacity: many ? 0.2 : 0.8 },
        // Large chunks: ECharts' cost is mostly per frame (measured in bench/site/bench_plots.py:
        // 100,000 lines drawn in 7.5 s in chunks of 2,000, 1.4 s in chunks of 20,000).
        progressive: 20000, progressiveThreshold: 20000
      }]
    }, true);
    return data.length;
  };

  Plots.prototype.renderScatter = function (rows, x, y) {
    var source = this.source, data = [], xs = [Infinity, -Infinity], ys = [Infinity, -Infinity];
    for (var r = 0; r < rows.length; r++) {
      var i = rows[r], vx = source.number(x, i), vy = source.number(y, i);
      if (vx === null || vy === null) continue;
      data.push([vx, vy, i]);
      xs[0] = Math.min(xs[0], vx); xs[1] = Math.max(xs[1], vx);
      ys[0] = Math.min(ys[0], vy); ys[1] = Math.max(ys[1], vy);
    }
    var encode = this.echarts.format.encodeHTML;
    function axis(key, range) {
      return { type: range[0] > 0 && range[1] / range[0] >= 100 ? "log" : "value", name: shortName(key), nameLocation: "middle", nameGap: 28, scale: true, axisLabel: { formatter: axisLabel } };
    }
    this.scatter.setOption({
      animation: false,
      grid: { left: 60, right: 20, top: 20, bottom: 45 },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          return encode(source.id(p.data[2])) + "<br>" + encode(shortName(x)) + " " + encode(forPeople(p.data[0])) +
            "<br>" + encode(shortName(y)) + " " + encode(forPeople(p.data[1]));
        }
      },
      xAxis: axis(x, xs),
      yAxis: axis(y, ys),
      series: [{ id: "runs", type: "scatter", data: data, symbolSize: data.length > 2000 ? 3 : 7, large: true, largeThreshold: 2000, itemStyle: { opacity: 0.7 } }]
    }, true);
    return data.length;
  };

  function axisLabel(v) { return typeof v === "number" ? forPeople(v) : v; }

  function config() {
    var node = $("mkb-plots-config");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (err) { return {}; }
  }

  function loadScript(src, done, fail) {
    var script = document.createElement("script");
    script.src = src;
    script.onload = done;
    script.onerror = fail;
    document.head.appendChild(script);
  }

  function init() {
    var box = $("mkb-plots");
    if (!box) return;
    var plots = null, pending = null, loading = null;
    function show(table) {
      if (!root.echarts) { pending = table; return; }
      // The table loads its columns lazily: fetch the ones the plots read (numeric fields and
      // hyperparameters, known from its manifest) once, before the first drawing.
      if (!loading) loading = table.ensure ? table.ensure(plottedKeys(table)) : Promise.resolve();
      loading.then(function () {
        if (!plots) {
          plots = new Plots(box, root.echarts, tableSource(table), config());
          root.ModelKBPlots = plots;
        }
        plots.render();
        box.setAttribute("data-ready", "true");
      });
    }
    function missing() {
      $("mkb-plots-status").textContent = "The plots need ECharts, which this catalog was built without " +
        "(run scripts/fetch-echarts.sh, reinstall ModelKB and rebuild).";
      box.setAttribute("data-ready", "error");
    }
    if (!box.hasAttribute("data-echarts")) { missing(); return; }  // the build knew: no request
    document.addEventListener("mkb-table-view", function (event) { show(event.detail.table); });
    loadScript(box.getAttribute("data-echarts"), function () {
      var table = pending || root.ModelKBTable;
      if (table && table.filteredRows) show(table);
    }, missing);
  }

  root.ModelKBPlotsSource = tableSource;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})(this);
