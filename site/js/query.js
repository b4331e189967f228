/* ModelKB query language: a JavaScript port of modelkb/query.py and modelkb/fields.py.
 *
 * The specification is docs/query.md. Records are read through a "dataset": an object whose
 * column(key) returns {t: [...texts], n: [...numbers]} (undefined text = the record lacks the key),
 * so a compiled predicate is a function of a row index. The catalog ships each flat value's text
 * (the `txt` of field_rows) and number, so nothing here re-derives Python's float repr.
 *
 * Works in a browser (window.ModelKBQuery) and in Node (module.exports), for the parity tests.
 */
(function (root) {
  "use strict";

  var OPERATORS = ["=", "!=", ">", ">=", "<", "<=", "~", "!~"];
  var WORD_STOP = " \t\r\n()&|!=<>~'\"";
  var KEYWORDS = { and: "&&", or: "||", not: "!" };
  var MAX_DEPTH = 64;
  var NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
  var DATE_RE = /^\d{4}-\d{2}-\d{2}(?:[Tt](\d{2}):\d{2}(:\d{2})?)?[Zz]?$/;
  var TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?([Zz]|[+-]\d{2}:?\d{2})?$/;
  var FIELD_RE = /^[A-Za-z0-9_.\-]+$/;

  var ALIASES = {
    optimizer: "hyperparameters.optimizer.name",
    lr: "hyperparameters.learning_rate",
    learning_rate: "hyperparameters.learning_rate",
    loss: "metrics.final.loss",
    loss_fn: "hyperparameters.loss",
    loss_function: "hyperparameters.loss",
    accuracy: "metrics.final.accuracy",
    acc: "metrics.final.accuracy",
    val_accuracy: "metrics.final.val_accuracy",
    val_acc: "metrics.final.val_accuracy",
    val_loss: "metrics.final.val_loss",
    epochs: "hyperparameters.epochs",
    batch_size: "hyperparameters.batch_size",
    batch: "hyperparameters.batch_size",
    framework: "framework.name",
    layers: "architecture.layer_count",
    params: "architecture.parameter_count",
    parameters: "architecture.parameter_count",
    kind: "dataset.kind",
    owner: "user",
    date: "created",
    timestamp: "created",
    git: "context.git.commit",
    commit: "context.git.commit",
    branch: "context.git.branch"
  };
  var SECTION_RANKS = [
    ["metrics.final.", 1],
    ["hyperparameters.params.", 3],
    ["hyperparameters.", 2],
    ["dataset.", 4],
    ["architecture.", 5],
    ["framework.", 6],
    ["context.", 7]
  ];
  var OTHER_RANK = 8;

  // ---- Python-compatible string helpers -------------------------------------------------------

  var UPPER = /[A-Z]/;

  function fold(text) {
    return text.replace(/[A-Z]/g, function (c) { return c.toLowerCase(); });
  }

  var SURROGATE = /[\uD800-\uDFFF]/;

  /** Compare by code point (JavaScript's < compares UTF-16 units). */
  function cmp(a, b) {
    if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
    var i = 0, j = 0;
    while (i < a.length && j < b.length) {
      var ca = a.codePointAt(i), cb = b.codePointAt(j);
      if (ca !== cb) return ca < cb ? -1 : 1;
      i += ca > 0xffff ? 2 : 1;
      j += cb > 0xffff ? 2 : 1;
    }
    return (a.length - i) - (b.length - j) < 0 ? -1 : (i < a.length ? 1 : (j < b.length ? -1 : 0));
  }

  /** Python's repr() of a str, for error messages. */
  function pyRepr(s) {
    var quote = s.indexOf("'") >= 0 && s.indexOf('"') < 0 ? '"' : "'";
    var out = quote;
    Array.from(s).forEach(function (ch) {
      var code = ch.codePointAt(0);
      if (ch === quote || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\r") out += "\\r";
      else if (ch === "\t") out += "\\t";
      else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += "\\x" + ("0" + code.toString(16)).slice(-2);
      else out += ch;
    });
    return out + quote;
  }

  // ---- dates ----------------------------------------------------------------------------------

  function daysFromCivil(y, m, d) {
    // Howard Hinnant's algorithm: exact for any year, unlike Date.UTC (which maps 0-99 to 19xx).
    y -= m <= 2 ? 1 : 0;
    var era = Math.floor(y / 400);
    var yoe = y - era * 400;
    var doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
    var doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
    return era * 146097 + doe - 719468;
  }

  function daysInMonth(y, m) {
    if (m === 2) return (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)) ? 29 : 28;
    return [31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
  }

  /** fields.timestamp_seconds: ISO-8601 date/timestamp -> POSIX seconds, or null. */
  function timestampSeconds(text) {
    var m = TIMESTAMP_RE.exec(text);
    if (!m) return null;
    var y = +m[1], mo = +m[2], d = +m[3], H = +(m[4] || 0), M = +(m[5] || 0), S = +(m[6] || 0);
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || H > 23 || M > 59 || S > 59) return null;
    var offset = 0, zone = m[8];
    if (zone && zone.toUpperCase() !== "Z") {
      var digits = zone.slice(1).replace(":", "");
      offset = (parseInt(digits.slice(0, 2), 10) * 60 + parseInt(digits.slice(2), 10)) * 60 * (zone[0] === "-" ? -1 : 1);
    }
    var whole = daysFromCivil(y, mo, d) * 86400 + H * 3600 + M * 60 + S - offset;
    return whole + (m[7] ? parseInt(m[7], 10) / Math.pow(10, m[7].length) : 0);
  }

  // ---- errors ---------------------------------------------------------------------------------

  function QuerySyntaxError(message, query, column, unknownField) {
    this.name = unknownField ? "UnknownFieldError" : "QuerySyntaxError";
    this.message = message;
    this.query = query;
    this.column = column;
  }
  QuerySyntaxError.prototype = Object.create(Error.prototype);
  QuerySyntaxError.prototype.constructor = QuerySyntaxError;

  // ---- tokenizer ------------------------------------------------------------------------------

  function tokenize(text) {
    var chars = Array.from(text); // columns count code points
    var tokens = [];
    var i = 0, n = chars.length;
    while (i < n) {
      var ch = chars[i], col = i + 1, pair = ch + (i + 1 < n ? chars[i + 1] : "");
      if (" \t\r\n".indexOf(ch) >= 0) {
        i += 1;
      } else if (ch === "(" || ch === ")") {
        tokens.push({ kind: ch, text: ch, column: col });
        i += 1;
      } else if (ch === "&" || ch === "|") {
        if (pair !== ch + ch) throw new QuerySyntaxError("unexpected " + pyRepr(ch) + "; write " + pyRepr(ch + ch), text, col);
        tokens.push({ kind: pair, text: pair, column: col });
        i += 2;
      } else if (pair === "!=" || pair === "!~" || pair === ">=" || pair === "<=" || pair === "==") {
        tokens.push({ kind: "op", text: pair === "==" ? "=" : pair, column: col });
        i += 2;
      } else if (ch === "!") {
        tokens.push({ kind: "!", text: ch, column: col });
        i += 1;
      } else if ("=<>~".indexOf(ch) >= 0) {
        tokens.push({ kind: "op", text: ch, column: col });
        i += 1;
      } else if (ch === "'" || ch === '"') {
        var out = [], j = i + 1, closed = false;
        while (j < n) {
          var c = chars[j];
          if (c === ch) { closed = true; break; }
          if (c === "\\" && j + 1 < n) {
            j += 1;
            out.push(chars[j] === "n" ? "\n" : chars[j] === "t" ? "\t" : chars[j]);
          } else {
            out.push(c);
          }
          j += 1;
        }
        if (!closed) throw new QuerySyntaxError("unterminated string", text, col);
        tokens.push({ kind: "string", text: out.join(""), column: col });
        i = j + 1;
      } else {
        var k = i;
        while (k < n && WORD_STOP.indexOf(chars[k]) < 0) k += 1;
        var word = chars.slice(i, k).join("");
        var keyword = Object.prototype.hasOwnProperty.call(KEYWORDS, word.toLowerCase()) ? KEYWORDS[word.toLowerCase()] : null;
        tokens.push({ kind: keyword || "word", text: word, column: col });
        i = k;
      }
    }
    tokens.push({ kind: "end", text: "", column: n + 1 });
    return tokens;
  }

  function describe(token) {
    return token.kind === "end" ? "the end of the query" : pyRepr(token.text);
  }

  // ---- parser ---------------------------------------------------------------------------------

  function parse(text) {
    var tokens = tokenize(text);
    var pos = 0, depth = 0;
    function peek() { return tokens[pos]; }
    function take() { return tokens[pos++]; }
    function fail(message, column) { return new QuerySyntaxError(message, text, column); }

    function parseOr() {
      var node = parseAnd();
      while (peek().kind === "||") { take(); node = { type: "or", left: node, right: parseAnd() }; }
      return node;
    }
    function parseAnd() {
      var node = parseUnary();
      while (peek().kind === "&&") { take(); node = { type: "and", left: node, right: parseUnary() }; }
      return node;
    }
    function parseUnary() {
      var token = peek();
      if (token.kind !== "!" && token.kind !== "(") return parseComparison();
      depth += 1;
      if (depth > MAX_DEPTH) throw fail("query nested more than " + MAX_DEPTH + " deep", token.column);
      take();
      var node;
      if (token.kind === "!") {
        node = { type: "not", operand: parseUnary() };
      } else {
        node = parseOr();
        var closing = take();
        if (closing.kind === "end") throw fail("unclosed '('", token.column);
        if (closing.kind !== ")") throw fail("unexpected " + describe(closing) + "; expected '&&', '||' or ')'", closing.column);
      }
      depth -= 1;
      return node;
    }
    function parseComparison() {
      var field = take();
      if (field.kind !== "word") throw fail("expected a field name, found " + describe(field), field.column);
      if (!FIELD_RE.test(field.text)) {
        throw fail("invalid field name " + pyRepr(field.text) + " (use letters, digits, '_', '.', '-')", field.column);
      }
      var op = take();
      if (op.kind !== "op") {
        throw fail("expected an operator (" + OPERATORS.join(" ") + ") after " + pyRepr(field.text) + ", found " + describe(op), op.column);
      }
      var value = take();
      if (value.kind !== "word" && value.kind !== "string") {
        throw fail("missing value after " + pyRepr(op.text) + ", found " + describe(value), value.column);
      }
      var lit = classify(value, op.text);
      return { type: "compare", field: field.text, op: op.text, value: lit[0], kind: lit[1], column: field.column };
    }
    function classify(token, op) {
      var word = token.text;
      if (token.kind === "string" || op === "~" || op === "!~") return [word, "string"];
      var lower = word.toLowerCase();
      if (lower === "true" || lower === "false") return [lower === "true", "bool"];
      if (lower === "null" || lower === "none") {
        if (op !== "=" && op !== "!=") throw fail(pyRepr(word) + " can only be compared with '=' or '!='", token.column);
        return [null, "null"];
      }
      if (NUMBER_RE.test(word)) return [Number(word), "number"];
      var m = DATE_RE.exec(word);
      if (m) {
        var start = timestampSeconds(word);
        if (start === null) throw fail("invalid date " + pyRepr(word), token.column);
        var span = m[1] === undefined ? 86400 : m[2] === undefined ? 60 : 1;
        return [[start, start + span], "date"];
      }
      return [word, "string"];
    }

    if (peek().kind === "end") throw fail("empty query", 1);
    var node = parseOr();
    var token = peek();
    if (token.kind === ")") throw fail("unbalanced ')'", token.column);
    if (token.kind !== "end") throw fail("unexpected " + describe(token) + "; expected '&&', '||' or the end of the query", token.column);
    return node;
  }

  // ---- field names ----------------------------------------------------------------------------

  function rank(key) {
    if (key.indexOf(".") < 0) return 0;
    for (var i = 0; i < SECTION_RANKS.length; i++) {
      if (key.indexOf(SECTION_RANKS[i][0]) === 0) return SECTION_RANKS[i][1];
    }
    return OTHER_RANK;
  }

  /** fields.resolve: a typed name -> one full key, or null. */
  function resolve(name, knownKeys) {
    var wanted = name.toLowerCase();
    var keys = new Map();
    knownKeys.forEach(function (key) { keys.set(key.toLowerCase(), key); });
    if (keys.size === 0) return Object.prototype.hasOwnProperty.call(ALIASES, wanted) ? ALIASES[wanted] : wanted;
    var alias = Object.prototype.hasOwnProperty.call(ALIASES, wanted) ? ALIASES[wanted] : null;
    if (alias !== null && keys.has(alias)) return keys.get(alias);
    if (keys.has(wanted)) return keys.get(wanted);
    var suffix = "." + wanted, best = null;
    keys.forEach(function (_, low) {
      if (low.length >= suffix.length && low.slice(-suffix.length) === suffix) {
        if (best === null) { best = low; return; }
        var a = rank(low), b = rank(best);
        if (a < b || (a === b && (low.length < best.length || (low.length === best.length && cmp(low, best) < 0)))) best = low;
      }
    });
    return best === null ? null : keys.get(best);
  }

  // difflib.SequenceMatcher.ratio (no junk; autojunk only matters for sequences of 200+ items).
  function matchingBlocks(a, b) {
    var b2j = new Map();
    for (var j = 0; j < b.length; j++) {
      if (!b2j.has(b[j])) b2j.set(b[j], []);
      b2j.get(b[j]).push(j);
    }
    if (b.length >= 200) {
      var ntest = Math.floor(b.length / 100) + 1;
      b2j.forEach(function (idx, ch) { if (idx.length > ntest) b2j.delete(ch); });
    }
    function longest(alo, ahi, blo, bhi) {
      var besti = alo, bestj = blo, bestsize = 0, j2len = new Map();
      for (var i = alo; i < ahi; i++) {
        var newj2len = new Map();
        var idx = b2j.get(a[i]) || [];
        for (var t = 0; t < idx.length; t++) {
          var jj = idx[t];
          if (jj < blo) continue;
          if (jj >= bhi) break;
          var k = (j2len.get(jj - 1) || 0) + 1;
          newj2len.set(jj, k);
          if (k > bestsize) { besti = i - k + 1; bestj = jj - k + 1; bestsize = k; }
        }
        j2len = newj2len;
      }
      return [besti, bestj, bestsize];
    }
    var queue = [[0, a.length, 0, b.length]], blocks = [];
    while (queue.length) {
      var q = queue.pop();
      var x = longest(q[0], q[1], q[2], q[3]);
      if (x[2]) {
        blocks.push(x);
        if (q[0] < x[0] && q[2] < x[1]) queue.push([q[0], x[0], q[2], x[1]]);
        if (x[0] + x[2] < q[1] && x[1] + x[2] < q[3]) queue.push([x[0] + x[2], q[1], x[1] + x[2], q[3]]);
      }
    }
    return blocks;
  }

  function ratio(a, b) {
    var matches = matchingBlocks(a, b).reduce(function (s, blk) { return s + blk[2]; }, 0);
    var total = a.length + b.length;
    return total ? 2 * matches / total : 1;
  }

  /** fields.suggest: difflib.get_close_matches over keys, usable aliases and last segments. */
  function suggest(name, knownKeys, limit) {
    limit = limit || 3;
    var pool = new Set();
    var keys = knownKeys.map(function (k) { return k.toLowerCase(); });
    var keySet = new Set(keys);
    keys.forEach(function (k) { pool.add(k); pool.add(k.split(".").pop()); });
    Object.keys(ALIASES).forEach(function (alias) { if (keySet.has(ALIASES[alias])) pool.add(alias); });
    var word = Array.from(name.toLowerCase());
    var scored = [];
    Array.from(pool).sort(cmp).forEach(function (x) {
      var r = ratio(Array.from(x), word);
      if (r >= 0.6) scored.push([r, x]);
    });
    scored.sort(function (p, q) { return q[0] - p[0] || cmp(q[1], p[1]); });
    return scored.slice(0, limit).map(function (p) { return p[1]; });
  }

  // ---- evaluation -----------------------------------------------------------------------------

  var NUMBER_OPS = {
    "=": function (a, b) { return a === b; },
    "!=": function (a, b) { return a !== b; },
    ">": function (a, b) { return a > b; },
    ">=": function (a, b) { return a >= b; },
    "<": function (a, b) { return a < b; },
    "<=": function (a, b) { return a <= b; }
  };
  var TEXT_OPS = {
    "=": function (c) { return c === 0; },
    "!=": function (c) { return c !== 0; },
    ">": function (c) { return c > 0; },
    ">=": function (c) { return c >= 0; },
    "<": function (c) { return c < 0; },
    "<=": function (c) { return c <= 0; }
  };

  /** A test on one cell ({t, n}) for a comparison. */
  function valueTest(node) {
    var op = node.op, value = node.value;
    if (node.kind === "number" || node.kind === "bool") {
      var literal = node.kind === "bool" ? (value ? 1 : 0) : value, f = NUMBER_OPS[op];
      return function (t, n) { return n !== null && n !== undefined && f(n, literal); };
    }
    if (node.kind === "date") {
      var start = value[0], end = value[1];
      var inSpan = {
        "=": function (n) { return start <= n && n < end; },
        "!=": function (n) { return n < start || n >= end; },
        "<": function (n) { return n < start; },
        "<=": function (n) { return n < end; },
        ">": function (n) { return n >= end; },
        ">=": function (n) { return n >= start; }
      }[op];
      return function (t, n) { return n !== null && n !== undefined && inSpan(n); };
    }
    // Text tests take the cell's folded text (see foldedTexts).
    var needle = fold(String(value));
    if (op === "~") return function (f) { return f.indexOf(needle) >= 0; };
    if (op === "!~") return function (f) { return f.indexOf(needle) < 0; };
    var g = TEXT_OPS[op];
    return function (f) { return g(cmp(f, needle)); };
  }

  /** A column's texts case-folded, computed once and kept on the column (column.f): a text
   *  comparison over 100,000 rows then folds nothing. */
  function foldedTexts(column) {
    if (!column.f) {
      var texts = column.t, folded = new Array(texts.length), seen = new Map();
      for (var i = 0; i < texts.length; i++) {
        var t = texts[i], f = t;
        if (typeof t === "string" && UPPER.test(t)) {  // most texts have no capital: kept as they are
          f = seen.get(t);
          if (f === undefined) { f = fold(t); seen.set(t, f); }
        }
        folded[i] = f;
      }
      column.f = folded;
    }
    return column.f;
  }

  /**
   * Compile a parsed query into predicate(rowIndex) over a dataset.
   *
   * @param node      from parse()
   * @param dataset   {keys: [...every key present], column(key) -> {t: [], n: []}}
   * @param text      the query text, quoted in errors
   */
  function compile(node, dataset, text) {
    var keys = dataset.keys;
    function keyFor(cmpNode) {
      var key = resolve(cmpNode.field, keys);
      if (key === null) {
        var close = suggest(cmpNode.field, keys);
        var hint = close.length ? "; did you mean " + close.map(pyRepr).join(", ") + "?" : "";
        throw new QuerySyntaxError("unknown field " + pyRepr(cmpNode.field) + hint, text || "", cmpNode.column, true);
      }
      return key;
    }
    function build(current) {
      if (current.type === "and" || current.type === "or") {
        var left = build(current.left), right = build(current.right);
        return current.type === "and"
          ? function (i) { return left(i) && right(i); }
          : function (i) { return left(i) || right(i); };
      }
      if (current.type === "not") {
        var inner = build(current.operand);
        return function (i) { return !inner(i); };
      }
      var column = dataset.column(keyFor(current)) || { t: [], n: [] };
      var texts = column.t, numbers = column.n;
      if (current.kind === "null") {
        var wantMissing = current.op === "=";
        return function (i) { var t = texts[i]; return (t === undefined || t === null) === wantMissing; };
      }
      var test = valueTest(current);
      if (current.kind === "string") {
        var folded = foldedTexts(column);
        return function (i) {
          var f = folded[i];
          return f !== undefined && f !== null && test(f);
        };
      }
      return function (i) {
        var t = texts[i];
        if (t === undefined || t === null) return false;
        return test(t, numbers ? numbers[i] : null);
      };
    }
    return build(node);
  }

  /** Decode one shipped cell: number (text = String(n)), string (no number), [text, number]. */
  function decodeCell(cell) {
    if (cell === null || cell === undefined) return null;
    if (typeof cell === "number") return [String(cell), cell];
    if (typeof cell === "string") return [cell, null];
    var n = cell[1];
    return [cell[0], typeof n === "string" ? Number(n) : n];
  }

  /** Build a dataset from {keys, rows} where each row is an array of cells aligned with keys. */
  function columnar(keys, rows) {
    var cols = new Map();
    keys.forEach(function (key, k) {
      var t = new Array(rows.length), n = new Array(rows.length);
      for (var i = 0; i < rows.length; i++) {
        var cell = decodeCell(rows[i][k]);
        if (cell === null) { t[i] = undefined; n[i] = null; } else { t[i] = cell[0]; n[i] = cell[1]; }
      }
      cols.set(key, { t: t, n: n });
    });
    return { keys: keys.slice(), size: rows.length, column: function (key) { return cols.get(key); } };
  }

  /** Decode one column file of the project table (site_builder/table_data.py): {values: [cell]}
   *  or {dict: [cell], codes: [index]} -> {t: [...], n: [...]} (t undefined where the row lacks it). */
  function decodeColumn(payload) {
    var t, n, i, cell;
    if (payload.dict) {
      var dt = [], dn = [];
      payload.dict.forEach(function (c) { var d = decodeCell(c); dt.push(d === null ? undefined : d[0]); dn.push(d === null ? null : d[1]); });
      var codes = payload.codes, size = codes.length;
      t = new Array(size); n = new Array(size);
      for (i = 0; i < size; i++) { t[i] = dt[codes[i]]; n[i] = dn[codes[i]]; }
      return { t: t, n: n };
    }
    var values = payload.values;
    t = new Array(values.length); n = new Array(values.length);
    for (i = 0; i < values.length; i++) {
      cell = decodeCell(values[i]);
      if (cell === null) { t[i] = undefined; n[i] = null; } else { t[i] = cell[0]; n[i] = cell[1]; }
    }
    return { t: t, n: n };
  }

  /** The field names a parsed query compares, in order (each once). */
  function fieldsOf(node) {
    var out = [];
    (function walk(current) {
      if (current.type === "and" || current.type === "or") { walk(current.left); walk(current.right); }
      else if (current.type === "not") walk(current.operand);
      else if (out.indexOf(current.field) < 0) out.push(current.field);
    })(node);
    return out;
  }

  /** Parse, compile and run: the indices of matching rows. */
  function select(text, dataset) {
    var predicate = compile(parse(text), dataset, text);
    var out = [];
    for (var i = 0; i < dataset.size; i++) if (predicate(i)) out.push(i);
    return out;
  }

  var api = {
    ALIASES: ALIASES, QuerySyntaxError: QuerySyntaxError, parse: parse, tokenize: tokenize,
    resolve: resolve, suggest: suggest, compile: compile, select: select, columnar: columnar,
    decodeCell: decodeCell, decodeColumn: decodeColumn, fieldsOf: fieldsOf, timestampSeconds: timestampSeconds, fold: fold, cmp: cmp, pyRepr: pyRepr
  };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.ModelKBQuery = api;
})(this);
