/* Project page: the experiment table with query box, column chooser, sorting, paging, selection
 * and export. Every value reaches the DOM through textContent.
 *
 * Data (site_builder/table_data.py, docs/catalog.md "Project table data"): the manifest
 * data/projects/<slug>/index.json (row count, every field with its kind and stats) and one file per
 * field, fetched only when its column is shown, sorted or exported, or a query names it; so a
 * project of 100,000 runs never loads every field. Rendering is paged (100 rows).
 *
 * Public API, for other scripts of the catalog (plots, tests, the benchmark). window.ModelKBTable
 * is set, the app gets data-ready="true" and document fires "modelkb:table-ready" once the first
 * view is rendered; "modelkb:table-view" (detail: {table}) fires after every filter or sort.
 *   table.n                   number of rows (runs) in the project, newest first
 *   table.keys                every queryable flat field of the project (sorted)
 *   table.fields              the manifest's fields: {key, kind: num|text|mixed|display, present,
 *                             distinct, min, max (when numbers), label (display fields)}
 *   table.ids                 row index -> experiment id (always loaded)
 *   table.view                row indices of the current view, filtered and sorted (read only)
 *   table.query               the query of the current view ("" = all rows)
 *   table.filteredIds()       the ids of the current view, in view order
 *   table.column(key)         Promise<{t: [text|undefined], n: [number|null]}> over every row;
 *                             key is a full flat key (or "@input_shape"), see ModelKBQuery.resolve
 *   table.values(key, rows)   Promise<{t, n}> for the row indices `rows` (default: table.view)
 *   table.apply(query)        Promise<{count, ms} | {error, column}>: filter, sort and re-render
 *   table.ensure(keys)        Promise: fetch these fields' columns (once); then, synchronously,
 *   table.text(key, i), table.number(key, i)   row i's text (undefined: missing) and number (null)
 *   rowCount(), filteredRows() (= view), fieldKeys() (= keys), rowId(i): the same, as methods
 * The app element also sends a bubbling "mkb-table-view" event (detail: {table, count}) with
 * every "modelkb:table-view".
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
  var EMPTY = { t: [], n: [] };

  function $(id) { return document.getElementById(id); }

  function emit(name, table) {
    document.dispatchEvent(new CustomEvent(name, { detail: { table: table } }));
    if (name === "modelkb:table-view") {
      table.app.dispatchEvent(new CustomEvent("mkb-table-view", { bubbles: true, detail: { table: table, count: table.view.length } }));
    }
  }

  function Table(app, manifest, base) {
    var self = this;
    this.app = app;
    this.manifest = manifest;
    this.base = base;  // the manifest's URL: column files are relative to it
    this.n = manifest.rows;
    this.fields = manifest.fields;
    this.fieldByKey = {};
    this.fields.forEach(function (f) { self.fieldByKey[f.key] = f; });
    this.keys = this.fields.filter(function (f) { return f.kind !== "display"; }).map(function (f) { return f.key; });
    this.cols = new Map();
    this.pending = new Map();
    this.ds = { keys: this.keys, size: this.n, column: function (key) { return self.cols.get(key); } };
    this.ids = [];
    this.columns = DEFAULT_COLUMNS.filter(function (c) { return self.fieldByKey[c[0]]; })
      .map(function (c) { return { key: c[0], label: c[1] }; });
    this.allColumns = this.columns.slice();
    this.fields.forEach(function (f) {
      if (!self.allColumns.some(function (c) { return c.key === f.key; })) self.allColumns.push({ key: f.key, label: f.label || f.key });
    });
    this.order = []; for (var i = 0; i < this.n; i++) this.order.push(i);
    this.view = this.order.slice();
    this.sort = null;
    this.page = 0;
    this.selected = new Set();
    this.query = "";
    this.seq = 0;
    this.lastFilterMs = null;
  }

  /** Fetch and decode one field's column once (shared by every caller); unknown keys give EMPTY. */
  Table.prototype.column = function (key) {
    var self = this, field = this.fieldByKey[key];
    if (this.cols.has(key)) return Promise.resolve(this.cols.get(key));
    if (!field) return Promise.resolve(EMPTY);
    if (!this.pending.has(key)) {
      var url = new URL(field.file, this.base);
      url.searchParams.set("v", this.manifest.version);
      this.pending.set(key, fetch(url.toString())
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status + " for " + field.file); return r.json(); })
        .then(function (payload) {
          var col = Q.decodeColumn(payload);
          self.cols.set(key, col);
          self.pending.delete(key);
          return col;
        }, function (err) { self.pending.delete(key); throw err; }));
    }
    return this.pending.get(key);
  };

  Table.prototype.ensure = function (keys) {
    var self = this;
    return Promise.all(keys.map(function (k) { return self.column(k); }));
  };

  Table.prototype.values = function (key, rows) {
    var list = rows || this.view;
    return this.column(key).then(function (col) {
      return { t: list.map(function (i) { return col.t[i]; }), n: list.map(function (i) { return col.n[i] === undefined ? null : col.n[i]; }) };
    });
  };

  Table.prototype.filteredIds = function () {
    var ids = this.ids;
    return this.view.map(function (i) { return ids[i]; });
  };

  Table.prototype.rowCount = function () { return this.n; };
  Table.prototype.filteredRows = function () { return this.view; };
  Table.prototype.fieldKeys = function () { return this.keys.slice(); };
  Table.prototype.rowId = function (i) { return this.ids[i]; };

  Table.prototype.text = function (key, i) {
    var col = this.cols.get(key);
    return col ? col.t[i] : undefined;
  };
  Table.prototype.number = function (key, i) {
    if (key.charAt(0) === "@") return null;
    var col = this.cols.get(key);
    return col ? col.n[i] : null;
  };

  /** Apply a query: a Promise of the number of rows shown (rejects with ModelKBQuery.QuerySyntaxError). */
  Table.prototype.filter = function (text) {
    var self = this, node = null;
    try {
      if (text.trim()) node = Q.parse(text);
    } catch (err) { return Promise.reject(err); }
    var keys = node ? Q.fieldsOf(node).map(function (name) { return Q.resolve(name, self.keys); })
      .filter(function (key) { return key !== null; }) : [];
    return this.ensure(keys).then(function () {
      var rows;
      if (!node) rows = self.order.slice();
      else {
        var predicate = Q.compile(node, self.ds, text);
        rows = [];
        for (var i = 0; i < self.n; i++) if (predicate(i)) rows.push(i);
      }
      return rows;
    });
  };

  Table.prototype.sortView = function () {
    var key = this.sort.key, dir = this.sort.dir, self = this;
    // Each text is folded once, not once per comparison (100,000 rows sort in well under a second).
    var decorated = this.view.map(function (i) {
      var t = self.text(key, i);
      return [i, t, self.number(key, i), typeof t === "string" ? Q.fold(t) : t];
    });
    decorated.sort(function (a, b) {
      var am = a[1] === undefined || a[1] === null, bm = b[1] === undefined || b[1] === null;
      if (am || bm) return am === bm ? a[0] - b[0] : (am ? 1 : -1);
      var c;
      if (a[2] !== null && a[2] !== undefined && b[2] !== null && b[2] !== undefined) c = a[2] - b[2];
      else c = Q.cmp(a[3], b[3]);
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
      button.addEventListener("click", function () { self.sortBy(c.key); });
      th.setAttribute("data-key", c.key);
      th.appendChild(button);
      tr.appendChild(th);
    });
    thead.appendChild(tr);
  };

  /** Sort by a column (again: reverse); a Promise, resolved once rendered. */
  Table.prototype.sortBy = function (key) {
    var self = this;
    this.sort = { key: key, dir: this.sort && this.sort.key === key ? -this.sort.dir : 1 };
    return this.column(key).then(function () {
      self.sortView();
      self.renderHead();
      self.renderBody();
      emit("modelkb:table-view", self);
    });
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
        var shown = box.checked;
        (shown ? self.column(c.key) : Promise.resolve()).then(function () {
          self.columns = self.columns.filter(function (v) { return v.key !== c.key; });
          if (box.checked) self.columns.push(c);
          self.renderHead();
          self.renderBody();
        });
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

  /** Filter (fetching the fields the query names), sort and re-render; a later call wins. */
  Table.prototype.apply = function (text) {
    var self = this, t0 = performance.now(), seq = ++this.seq;
    return this.filter(text).then(function (rows) {
      if (seq !== self.seq) return { stale: true };
      self.query = text;
      self.view = rows;
      self.page = 0;
      return (self.sort ? self.column(self.sort.key) : Promise.resolve()).then(function () {
        if (self.sort) self.sortView();
        self.showError(null);
        self.renderBody();
        self.lastFilterMs = performance.now() - t0;
        emit("modelkb:table-view", self);
        return { count: rows.length, ms: self.lastFilterMs };
      });
    }, function (err) {
      if (!(err instanceof Q.QuerySyntaxError)) throw err;
      if (seq === self.seq) self.showError(err);
      return { error: err.message, column: err.column };
    });
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
        // Shown columns are loaded before they are shown, so this resolves at once.
        self.ensure(self.columns.map(function (c) { return c.key; })).then(function () {
          window.ModelKBExport.download(format, self.currentView(), "modelkb-" + self.manifest.slug, self.manifest.project);
        });
      });
    });
  };

  function init() {
    var app = $("mkb-table-app");
    if (!app) return;
    var base = new URL(app.getAttribute("data-src"), location.href);
    var table;
    fetch(base.toString(), { cache: "no-cache" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (manifest) {
        table = new Table(app, manifest, base);
        return table.ensure(["id"].concat(table.columns.map(function (c) { return c.key; })));
      })
      .then(function () {
        var idCol = table.cols.get("id");
        table.ids = idCol ? idCol.t : table.order.map(String);
        window.ModelKBTable = table;
        table.bind();
        table.renderHead();
        table.renderColumnsChooser("");
        var q = new URL(location.href).searchParams.get("q") || "";
        $("mkb-query").value = q;
        return table.apply(q);
      })
      .then(function () {
        app.setAttribute("data-ready", "true");
        emit("modelkb:table-ready", table);
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
