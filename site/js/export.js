/* Export the current table view as JSON, CSV, LaTeX (booktabs) or PDF, all in the browser.
 *
 * The PDF writer is self-written: PDF 1.4, the standard Helvetica font (no embedding), WinAnsi text,
 * a landscape A4 table split over as many pages as needed. Characters outside Latin-1 become "?".
 * A view is {columns: [{key, label}], rows: [[text or null, ...]]}.
 */
(function (root) {
  "use strict";

  function toJSON(view) {
    var out = view.rows.map(function (row) {
      var obj = {};
      view.columns.forEach(function (c, j) { obj[c.key] = row[j]; });
      return obj;
    });
    return JSON.stringify(out, null, 2) + "\n";
  }

  var NUMBERISH = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

  function csvCell(value) {
    if (value === null || value === undefined) return "";
    var text = String(value);
    // Spreadsheet formula injection: a leading = + - @ on non-numeric text is neutralised.
    if (/^[=+\-@\t\r]/.test(text) && !NUMBERISH.test(text)) text = "'" + text;
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function toCSV(view) {
    var lines = [view.columns.map(function (c) { return csvCell(c.label); }).join(",")];
    view.rows.forEach(function (row) { lines.push(row.map(csvCell).join(",")); });
    return lines.join("\r\n") + "\r\n";
  }

  var LATEX_ESCAPES = {
    "\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
    "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}"
  };

  function latexEscape(text) {
    return String(text).replace(/[\\&%$#_{}~^]/g, function (c) { return LATEX_ESCAPES[c]; });
  }

  function toLaTeX(view, caption) {
    var lines = [
      "% Requires \\usepackage{booktabs}",
      "\\begin{table}[htbp]",
      "\\centering",
      "\\begin{tabular}{" + view.columns.map(function () { return "l"; }).join("") + "}",
      "\\toprule",
      view.columns.map(function (c) { return latexEscape(c.label); }).join(" & ") + " \\\\",
      "\\midrule"
    ];
    view.rows.forEach(function (row) {
      lines.push(row.map(function (v) { return v === null ? "" : latexEscape(v); }).join(" & ") + " \\\\");
    });
    lines.push("\\bottomrule", "\\end{tabular}");
    if (caption) lines.push("\\caption{" + latexEscape(caption) + "}");
    lines.push("\\end{table}");
    return lines.join("\n") + "\n";
  }

  // ---- PDF ------------------------------------------------------------------------------------

  function pdfText(text) {
    var out = "";
    for (var i = 0; i < text.length; i++) {
      var code = text.charCodeAt(i);
      var ch = code < 32 || code > 255 ? "?" : text.charAt(i);
      if (ch === "\\" || ch === "(" || ch === ")") out += "\\" + ch;
      else out += ch;
    }
    return out;
  }

  function clip(text, width, size) {
    // Helvetica averages about 0.52 em per character.
    var max = Math.max(1, Math.floor(width / (size * 0.52)));
    return text.length > max ? text.slice(0, Math.max(1, max - 2)) + ".." : text;
  }

  /** A PDF 1.4 file (Uint8Array) holding the view as a table. */
  function toPDF(view, title) {
    var W = 842, H = 595, M = 36, size = 8, lineH = 12;
    var cols = view.columns.length || 1;
    var widths = view.columns.map(function (c, j) {
      var longest = c.label.length;
      view.rows.slice(0, 200).forEach(function (r) { if (r[j] !== null) longest = Math.max(longest, String(r[j]).length); });
      return Math.min(Math.max(longest, 4), 40);
    });
    var sum = widths.reduce(function (a, b) { return a + b; }, 0) || 1;
    widths = widths.map(function (w) { return w / sum * (W - 2 * M); });
    var perPage = Math.floor((H - 2 * M - 2 * lineH) / lineH);
    var pages = [];
    for (var start = 0; start < Math.max(1, view.rows.length); start += perPage) pages.push(view.rows.slice(start, start + perPage));
    var streams = pages.map(function (rows, p) {
      var ops = ["BT", "/F2 11 Tf", M + " " + (H - M) + " Td", "(" + pdfText((title || "ModelKB export") + "  -  page " + (p + 1) + " of " + pages.length) + ") Tj", "ET"];
      var y = H - M - 2 * lineH;
      function row(cells, font) {
        var x = M;
        cells.forEach(function (cell, j) {
          var text = cell === null || cell === undefined ? "" : clip(String(cell), widths[j] - 4, size);
          ops.push("BT", font + " " + size + " Tf", x.toFixed(1) + " " + y.toFixed(1) + " Td", "(" + pdfText(text) + ") Tj", "ET");
          x += widths[j];
        });
        y -= lineH;
      }
      row(view.columns.map(function (c) { return c.label; }), "/F2");
      ops.push("0.5 w", M + " " + (y + lineH - 3) + " m " + (W - M) + " " + (y + lineH - 3) + " l S");
      rows.forEach(function (r) { row(r, "/F1"); });
      return ops.join("\n");
    });
    // Objects: 1 catalog, 2 pages, 3 F1, 4 F2, then per page: page object + content stream.
    var objects = [];
    var kids = [];
    streams.forEach(function (_, p) { kids.push((5 + 2 * p) + " 0 R"); });
    objects.push("<< /Type /Catalog /Pages 2 0 R >>");
    objects.push("<< /Type /Pages /Kids [" + kids.join(" ") + "] /Count " + streams.length + " >>");
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>");
    streams.forEach(function (content, p) {
      objects.push("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + W + " " + H + "] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents " + (6 + 2 * p) + " 0 R >>");
      objects.push("<< /Length " + content.length + " >>\nstream\n" + content + "\nendstream");
    });
    var out = "%PDF-1.4\n%\u00e2\u00e3\u00cf\u00d3\n";
    var offsets = [];
    objects.forEach(function (body, k) {
      offsets.push(out.length);
      out += (k + 1) + " 0 obj\n" + body + "\nendobj\n";
    });
    var xref = out.length;
    out += "xref\n0 " + (objects.length + 1) + "\n0000000000 65535 f \n";
    offsets.forEach(function (o) { out += ("0000000000" + o).slice(-10) + " 00000 n \n"; });
    out += "trailer\n<< /Size " + (objects.length + 1) + " /Root 1 0 R >>\nstartxref\n" + xref + "\n%%EOF\n";
    var bytes = new Uint8Array(out.length);
    for (var i = 0; i < out.length; i++) bytes[i] = out.charCodeAt(i) & 0xff;
    return bytes;
  }

  function download(format, view, basename, title) {
    var blob;
    if (format === "json") blob = new Blob([toJSON(view)], { type: "application/json" });
    else if (format === "csv") blob = new Blob([toCSV(view)], { type: "text/csv" });
    else if (format === "latex") blob = new Blob([toLaTeX(view, title)], { type: "application/x-tex" });
    else if (format === "pdf") blob = new Blob([toPDF(view, title)], { type: "application/pdf" });
    else throw new Error("unknown export format " + format);
    var ext = { json: "json", csv: "csv", latex: "tex", pdf: "pdf" }[format];
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = basename + "." + ext;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  var api = { toJSON: toJSON, toCSV: toCSV, toLaTeX: toLaTeX, toPDF: toPDF, download: download };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.ModelKBExport = api;
})(this);
