/* Self-written SVG line charts for metric curves (no chart library, no network).
 *
 * ModelKBCharts.lineChart(container, {title, xLabel, series: [{name, points: [[x, y]...], group}]})
 * draws axes, one polyline per series, a legend whose entries show and hide their curves (one
 * entry per group when series carry one, e.g. a run's train and validation curves), and a hover
 * read-out of the nearest epoch. ModelKBCharts.forPeople is the catalog's number format.
 * All text goes through textContent.
 */
(function (root) {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = ["#3f51b5", "#e91e63", "#009688", "#ff9800", "#795548", "#9c27b0", "#607d8b", "#4caf50"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / count)));
    var err = (hi - lo) / count / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
    return ticks;
  }

  /** A number with 4 significant digits, like Python's "{:.4g}" (catalog.for_people): 0.9583, 1024,
   *  1.235e+4, 3e-5, trailing zeros dropped. An exact tie (12345) may round the other way. */
  function forPeople(v) {
    if (typeof v !== "number" || !isFinite(v)) return String(v);
    if (v === 0) return "0";
    var exponent = Math.floor(Math.log10(Math.abs(+v.toPrecision(4))));
    var text = exponent < -4 || exponent >= 4 ? v.toExponential(3) : v.toPrecision(4);
    return text.replace(/(\.\d*?)0+(?=e|$)/, "$1").replace(/\.(?=e|$)/, "");
  }

  /** The i-th series colour: the palette, then golden-angle hues (20 runs stay distinguishable). */
  function color(i) {
    return i < COLORS.length ? COLORS[i] : "hsl(" + Math.round(i * 137.508) % 360 + ", 65%, 42%)";
  }

  function lineChart(container, spec) {
    var series = spec.series.filter(function (s) { return s.points.length > 0; });
    var box = document.createElement("figure");
    box.className = "mkb-chart";
    var caption = document.createElement("figcaption");
    caption.textContent = spec.title;
    box.appendChild(caption);
    container.appendChild(box);
    if (!series.length) {
      var empty = document.createElement("p");
      empty.className = "mkb-empty";
      empty.textContent = "No recorded values.";
      box.appendChild(empty);
      return box;
    }
    var W = 420, H = 240, L = 52, R = 12, T = 12, B = 36;
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 0.5; y1 += Math.abs(y1) * 0.1 || 0.5; }
    var pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    function sx(x) { return L + (x - x0) / (x1 - x0) * (W - L - R); }
    function sy(y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); }
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "mkb-svg" }, box);
    el("title", {}, svg).textContent = spec.title;
    niceTicks(y0, y1, 5).forEach(function (v) {
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "mkb-grid" }, svg);
      var t = el("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end", class: "mkb-tick" }, svg);
      t.textContent = forPeople(v);
    });
    niceTicks(x0, x1, Math.min(8, Math.max(1, Math.round(x1 - x0)))).forEach(function (v) {
      var t = el("text", { x: sx(v), y: H - B + 16, "text-anchor": "middle", class: "mkb-tick" }, svg);
      t.textContent = forPeople(v);
    });
    el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "mkb-axis" }, svg);
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "mkb-axis" }, svg);
    var xl = el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "mkb-label" }, svg);
    xl.textContent = spec.xLabel || "epoch";
    var hidden = new Set();
    series.forEach(function (s, i) {
      s.color = s.color || color(i);
      s.node = el("g", { class: "mkb-series-group" }, svg);
      var d = s.points.map(function (p, j) { return (j ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1); }).join(" ");
      el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 4" : "none", class: "mkb-series", "data-series": s.name }, s.node);
      s.points.forEach(function (p) { el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.color }, s.node); });
    });
    var cursor = el("line", { y1: T, y2: H - B, class: "mkb-cursor", visibility: "hidden" }, svg);
    box.appendChild(legend(series, hidden));
    var readout = document.createElement("div");
    readout.className = "mkb-readout";
    box.appendChild(readout);
    svg.addEventListener("mousemove", function (event) {
      var rect = svg.getBoundingClientRect();
      var x = x0 + ((event.clientX - rect.left) / rect.width * W - L) / (W - L - R) * (x1 - x0);
      var best = null;
      xs.forEach(function (v) { if (best === null || Math.abs(v - x) < Math.abs(best - x)) best = v; });
      cursor.setAttribute("x1", sx(best)); cursor.setAttribute("x2", sx(best));
      cursor.setAttribute("visibility", "visible");
      var parts = [(spec.xLabel || "epoch") + " " + forPeople(best)];
      series.forEach(function (s) {
        if (hidden.has(legendKey(s))) return;
        s.points.forEach(function (p) { if (p[0] === best) parts.push(s.name + ": " + forPeople(p[1])); });
      });
      readout.textContent = parts.join("  ·  ");
    });
    svg.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); readout.textContent = ""; });
    return box;
  }

  function legendKey(s) { return s.group === undefined ? s.name : s.group; }

  /** One toggle button per legend key: pressing it hides (or shows again) that key's curves. */
  function legend(series, hidden) {
    var list = document.createElement("ul");
    list.className = "mkb-legend";
    var seen = new Set();
    series.forEach(function (s) {
      var key = legendKey(s);
      if (seen.has(key)) return;
      seen.add(key);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "mkb-legend-toggle";
      button.setAttribute("aria-pressed", "true");
      button.setAttribute("data-legend", key);
      button.title = "Show or hide " + key;
      var swatch = document.createElement("span");
      swatch.className = "mkb-swatch" + (s.dashed && s.group === undefined ? " mkb-dashed" : "");
      swatch.style.borderColor = s.color;
      button.appendChild(swatch);
      button.appendChild(document.createTextNode(key));
      button.addEventListener("click", function () {
        var show = hidden.has(key);
        if (show) hidden.delete(key); else hidden.add(key);
        button.setAttribute("aria-pressed", String(show));
        series.forEach(function (other) {
          if (legendKey(other) === key) other.node.setAttribute("visibility", show ? "visible" : "hidden");
        });
      });
      var li = document.createElement("li");
      li.appendChild(button);
      list.appendChild(li);
    });
    return list;
  }

  /** Series of one metric from a metrics.history list: train and val curves. */
  function historySeries(history, metric, prefix) {
    var out = [];
    ["train", "val"].forEach(function (split) {
      var pts = [];
      history.forEach(function (h) {
        var v = h[split] && h[split][metric];
        if (typeof v === "number" && isFinite(v) && typeof h.epoch === "number") pts.push([h.epoch, v]);
      });
      if (pts.length) out.push({ name: (prefix ? prefix + " " : "") + split + " " + metric, points: pts, dashed: split === "val" });
    });
    return out;
  }

  /** Metric names present in a history (loss first, then accuracy, then the rest). */
  function metricNames(history) {
    var names = [];
    history.forEach(function (h) {
      ["train", "val"].forEach(function (split) {
        Object.keys(h[split] || {}).forEach(function (k) { if (names.indexOf(k) < 0) names.push(k); });
      });
    });
    var order = ["loss", "accuracy"];
    return names.sort(function (a, b) {
      var ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 9 : ia) - (ib < 0 ? 9 : ib) || (a < b ? -1 : a > b ? 1 : 0);
    });
  }

  root.ModelKBCharts = {
    lineChart: lineChart, historySeries: historySeries, metricNames: metricNames, color: color, forPeople: forPeople
  };
})(this);
