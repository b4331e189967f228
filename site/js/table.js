/* Project page: the experiment table with query box, column chooser, sorting, paging, selection
 * and export. Data: data/projects/<slug>.json ({keys, rows, display, models}); cells are decoded by
 * ModelKBQuery.columnar. Rendering is paged (100 rows), so 10,000 experiments stay fast.
 * Every value reaches the DOM through textContent.
 */
(function () {
  "use strict";
  var Q = window.ModelKBQuery;
  var PAGE_SIZE = 100;
  var DEFAULT_COLUMNS = [
    ["id", "id"], ["user", "owner"], ["created", "timestamp"], ["framework.name", "framework"],
    ["hyperparameters.batch_size", "batch size"], ["hyperparameters.epochs", "epochs"],
    ["architecture.layer_count", "layers"], ["@input_shape", "input shape"], ["@output_shape", "output shape"],
    ["hyperparameters.optimizer.name", "optimizer"], ["hyperparameters.loss", "loss fn"],
    ["hyperparameters.learning_rate", "learning rate"], ["metrics.final.accuracy", "accuracy"],
    ["metrics.final.loss", "loss"]
  ];

  function $(id) { return document.getElementById(id); }

  function Table(app, data) {
    this.app = app;
    this.data = data;
    this.ds = Q.columnar(data.keys, data.rows);
    this.n = data.rows.length;
    this.ids = this.ds.column("id") ? this.ds.column("id").t : data.rows.map(function (_, i) { return String(i); });
    var present = new Set(data.keys);
    var hasDisplay = {};
    data.display.forEach(function (d) { Object.keys(d).forEach(function (k) { hasDisplay["@" + k] = true; }); });
    this.columns = DEFAULT_COLUMNS.filter(function (c) { return present.has(c[0]) || hasDisplay[c[0]]; })
      .map(function (c) { return { key: c[0], label: c[1] }; });
    this.allColumns = this.columns.slice();
    var self = this;
    Object.keys(hasDisplay).concat(data.keys).forEach(function (key) {
      if (!self.allColumns.some(function (c) { return c.key === key; })) {
        self.allColumns.push({ key: key, label: key.charAt(0) === "@" ? key.slice(1).replace("_", " ") : key });
      }
    });
    this.order = []; for (var i = 0; i < this.n; i++) this.order.push(i);
    this.view = this.order.slice();
    this.sort = null;
    this.page = 0;
    this.selected = new Set();
    this.query = "";
    this.lastFilterMs = null;
  }

  Table.prototype.text = function (key, i) {
    if (key.charAt(0) === "@") { var d = this.data.display[i] || {}; var v = d[key.slice(1)]; return v === undefined ? undefined : v; }
    var col = this.ds.column(key);
    return col ? col.t[i] : undefined;
  };
  Table.prototype.number = function (key, i) {
    if (key.charAt(0) === "@") return null;
    var col = this.ds.column(key);
    return col ? col.n[i] : null;
  };

  /** Apply a query (throws ModelKBQuery.QuerySyntaxError); returns the number of rows shown. */
  Table.prototype.filter = function (text) {
    var rows;
    if (!text.trim()) rows = this.order.slice();
    else {
      var predicate = Q.compile(Q.parse(text), this.ds, text);
      rows = [];
      for (var i = 0; i < this.n; i++) if (predicate(i)) rows.push(i);
    }
    this.query = text;
    this.view = rows;
    if (this.sort) this.sortView();
    this.page = 0;
    return rows.length;
  };

  Table.prototype.sortView = function () {
    var key = this.sort.key, dir = this.sort.dir, self = this;
    var decorated = this.view.map(function (i) { return [i, self.text(key, i), self.number(key, i)]; });
    decorated.sort(function (a, b) {
      var am = a[1] === undefined || a[1] === null, bm = b[1] === undefined || b[1] === null;
      if (am || bm) return am === bm ? a[0] - b[0] : (am ? 1 : -1);
      var c;
      if (a[2] !== null && a[2] !== undefined && b[2] !== null && b[2] !== undefined) c = a[2] - b[2];
      else c = Q.cmp(Q.fold(a[1]), Q.fold(b[1]));
      return (c || a[0] - b[0]) * (c ? dir : 1);
    });
    this.view = decorated.map(function (d) { return d[0]; });
  };

  Table.prototype.renderHead = function () {
    var thead = this.app.querySelector("#mkb-table thead"), self = this;
    thead.textContent = "";
    var tr = document.createElement("tr");
    var th0 = document.createElement("th");
    var all = document.createElement("input");
    all.type = "checkbox"; all.title = "Select the rows on this page"; all.id = "mkb-select-page";
    all.addEventListener("change", function () {
      self.pageRows().forEach(function (i) { if (all.checked) self.selected.add(self.ids[i]); else self.selected.delete(self.ids[i]); });
      self.renderBody();
    });
    th0.appendChild(all);
    tr.appendChild(th0);
    this.columns.forEach(function (c) {
      var th = document.createElement("th");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "mkb-sort";
      button.setAttribute("data-key", c.key);
      var mark = self.sort && self.sort.key === c.key ? (self.sort.dir > 0 ? " ▲" : " ▼") : "";
      button.textContent = c.label + mark;
      button.title = c.key.charAt(0) === "@" ? c.label + " (not queryable)" : c.key;
      button.addEventListener("click", function () {
        self.sort = { key: c.key, dir: self.sort && self.sort.key === c.key ? -self.sort.dir : 1 };
        self.sortView();
        self.renderHead();
        self.renderBody();
      });
      th.setAttribute("data-key", c.key);
      th.appendChild(button);
      tr.appendChild(th);
    });
    thead.appendChild(tr);
  };

  Table.prototype.pageRows = function () {
    return this.view.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE);
  };

  Table.prototype.renderBody = function () {
    var tbody = this.app.querySelector("#mkb-table tbody"), self = this;
    var fragment = document.createDocumentFragment();
    this.pageRows().forEach(function (i) {
      var id = self.ids[i];
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", id);
      var td0 = document.createElement("td");
      var box = document.createElement("input");
      box.type = "checkbox"; box.className = "mkb-select"; box.checked = self.selected.has(id);
      box.setAttribute("aria-label", "select " + id);
      box.addEventListener("change", function () {
        if (box.checked) self.selected.add(id); else self.selected.delete(id);
        self.renderStatus();
      });
      td0.appendChild(box);
      tr.appendChild(td0);
      self.columns.forEach(function (c) {
        var td = document.createElement("td");
        var value = self.text(c.key, i);
        if (c.key === "id") {
          var a = document.createElement("a");
          a.href = "../../experiments/" + encodeURIComponent(id) + "/";
          a.textContent = value === undefined ? "" : value;
          td.appendChild(a);
        } else {
          td.textContent = value === undefined || value === null ? "" : value;
        }
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    tbody.textContent = "";
    tbody.appendChild(fragment);
    this.renderStatus();
  };

  Table.prototype.renderStatus = function () {
    var pages = Math.max(1, Math.ceil(this.view.length / PAGE_SIZE));
    $("mkb-count").textContent = this.view.length + " of " + this.n + " experiments" + (this.selected.size ? " · " + this.selected.size + " selected" : "");
    $("mkb-page").textContent = "page " + (this.page + 1) + " of " + pages;
    $("mkb-prev").disabled = this.page === 0;
    $("mkb-next").disabled = this.page >= pages - 1;
    $("mkb-compare").disabled = this.selected.size < 2;
  };

  Table.prototype.renderColumnsChooser = function (filterText) {
    var list = $("mkb-columns-list"), self = this;
    list.textContent = "";
    var needle = (filterText || "").toLowerCase();
    this.allColumns.forEach(function (c) {
      if (needle && c.key.toLowerCase().indexOf(needle) < 0 && c.label.toLowerCase().indexOf(needle) < 0) return;
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.value = c.key;
      box.checked = self.columns.some(function (v) { return v.key === c.key; });
      box.addEventListener("change", function () {
        if (box.checked) self.columns.push(c);
        else self.columns = self.columns.filter(function (v) { return v.key !== c.key; });
        self.renderHead();
        self.renderBody();
      });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + (c.label === c.key ? c.key : c.label + " (" + c.key + ")")));
      list.appendChild(label);
    });
  };

  Table.prototype.showError = function (err) {
    var box = $("mkb-query-error");
    box.textContent = "";
    if (!err) { box.hidden = true; return; }
    var head = document.createElement("p");
    head.className = "mkb-error-message";
    head.textContent = "Column " + err.column + ": " + err.message;
    var pre = document.createElement("pre");
    pre.className = "mkb-caret";
    var chars = Array.from(err.query || "");
    var pad = chars.slice(0, Math.max(0, err.column - 1)).map(function (ch) { return ch === "\t" ? "\t" : " "; }).join("");
    pre.textContent = (err.query || "") + "\n" + pad + "^";
    box.appendChild(head);
    box.appendChild(pre);
    box.setAttribute("data-column", String(err.column));
    box.hidden = false;
  };

  /* The table's public reading API (what site/js/plots.js reads, through its one adapter): row
     indices 0..rowCount()-1, the rows the query keeps, the field keys, a row's id; number() and
     text() above give a row's field values. After each query the app element sends a bubbling
     "mkb-table-view" event ({detail: {table, count}}). */
  Table.prototype.rowCount = function () { return this.n; };
  Table.prototype.filteredRows = function () { return this.view; };
  Table.prototype.fieldKeys = function () { return this.data.keys.slice(); };
  Table.prototype.rowId = function (i) { return this.ids[i]; };

  /** Filter and re-render; returns {count, ms} or {error}. Used by the form and by tests. */
  Table.prototype.apply = function (text) {
    var t0 = performance.now();
    try {
      var count = this.filter(text);
    } catch (err) {
      if (!(err instanceof Q.QuerySyntaxError)) throw err;
      this.showError(err);
      return { error: err.message, column: err.column };
    }
    this.showError(null);
    this.renderBody();
    this.lastFilterMs = performance.now() - t0;
    this.app.dispatchEvent(new CustomEvent("mkb-table-view", { bubbles: true, detail: { table: this, count: count } }));
    return { count: count, ms: this.lastFilterMs };
  };

  Table.prototype.currentView = function () {
    var self = this;
    return {
      columns: this.columns.map(function (c) { return { key: c.key, label: c.label }; }),
      rows: this.view.map(function (i) {
        return self.columns.map(function (c) { var v = self.text(c.key, i); return v === undefined || v === null ? null : v; });
      })
    };
  };

  Table.prototype.bind = function () {
    var self = this;
    $("mkb-query-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = $("mkb-query").value;
      self.apply(text);
      var url = new URL(location.href);
      if (text.trim()) url.searchParams.set("q", text); else url.searchParams.delete("q");
      history.replaceState(null, "", url.toString());
    });
    $("mkb-query-clear").addEventListener("click", function () { $("mkb-query").value = ""; self.apply(""); });
    $("mkb-prev").addEventListener("click", function () { if (self.page > 0) { self.page -= 1; self.renderBody(); } });
    $("mkb-next").addEventListener("click", function () {
      if ((self.page + 1) * PAGE_SIZE < self.view.length) { self.page += 1; self.renderBody(); }
    });
    $("mkb-columns-filter").addEventListener("input", function (e) { self.renderColumnsChooser(e.target.value); });
    $("mkb-compare").addEventListener("click", function () {
      var ids = Array.from(self.selected);
      if (ids.length >= 2) location.href = "../../compare/?ids=" + ids.map(encodeURIComponent).join(",");
    });
    this.app.querySelectorAll("[data-export]").forEach(function (button) {
      button.addEventListener("click", function () {
        var format = button.getAttribute("data-export");
        window.ModelKBExport.download(format, self.currentView(), "modelkb-" + self.data.slug, self.data.project);
      });
    });
  };

  function init() {
    var app = $("mkb-table-app");
    if (!app) return;
    fetch(app.getAttribute("data-src"))
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        var table = new Table(app, data);
        window.ModelKBTable = table;
        table.bind();
        table.renderHead();
        table.renderColumnsChooser("");
        var q = new URL(location.href).searchParams.get("q") || "";
        $("mkb-query").value = q;
        table.apply(q);
        app.setAttribute("data-ready", "true");
      })
      .catch(function (err) {
        $("mkb-count").textContent = "Could not load the experiments: " + err.message;
      });
  }

  var ANSWERS = {yes: "Yes", no: "No", na: "NA", needs_authors: "needs the authors"};

  /* The project's NeurIPS paper checklist, from data/checklist/<slug>.json (rewritten whenever the
     project's runs change). Every text is written with textContent. */
  function fillPaperChecklist() {
    var list = $("mkb-paper-checklist");
    if (!list || !list.hasAttribute("data-src") || !window.fetch) return;  // experiment pages: rendered
    fetch(list.getAttribute("data-src")).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (data) {
      ((data.paper || {}).items || []).forEach(function (item) {
        var li = document.createElement("li");
        li.className = "mkb-answer-" + item.answer;
        li.setAttribute("data-question", item.id);
        var title = document.createElement("b");
        title.textContent = item.title;
        var answer = document.createElement("i");
        answer.textContent = " [" + (ANSWERS[item.answer] || item.answer) + "] ";
        li.appendChild(title);
        li.appendChild(answer);
        if (item.justification) li.appendChild(document.createTextNode(item.justification));
        if (item.how_to_complete) {
          var how = document.createElement("em");
          how.textContent = "To complete: " + item.how_to_complete;
          li.appendChild(document.createElement("br"));
          li.appendChild(how);
        }
        list.appendChild(li);
      });
      list.setAttribute("data-ready", "true");
    }).catch(function () { list.setAttribute("data-ready", "error"); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fillPaperChecklist);
  else fillPaperChecklist();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
