/* In-browser inference with the vendored onnxruntime-web (WebAssembly, single thread).
 *
 * The input is built from what the bundle recorded: `architecture.inputs[0].shape` gives the tensor
 * shape and layout (a model of several named inputs gets one field per input instead), `dataset.kind` the widget (image: upload or draw; tabular: a form; text: a
 * text box), and `dataset.preprocessing` the steps replayed before the model (the same selection
 * as modelkb.collector.preprocessing_steps.inference_steps: train-only and in-model steps dropped).
 *
 * Images: the picture is drawn at the model's height x width, each pixel's grey level g = (r+g+b)/3
 * in [0, 255] is mapped to the raw data range [0, R] as g / 255 * R, where R is the range the first
 * scaling step implies (scale 1/16 -> R = 16, rescale 1/255 -> R = 255; default 255), and then the
 * recorded steps run in order. Python reproduces this exactly (tests/site_builder/test_browser.py).
 *
 * The run's example inputs, when the build wrote them, are listed above the form: one click feeds
 * a recorded row to the model as it is (no steps replayed: it is already the model's input).
 */
(function (root) {
  "use strict";
  var state = { ready: false, session: null, data: null, input: null };

  function $(id) { return document.getElementById(id); }
  function status(text) { var s = $("mkb-infer-status"); if (s) s.textContent = text; }

  var EVAL_NAMES = /test|val|eval|infer|predict|serv/i;

  /** Port of inference_steps: the steps to replay, in order. */
  function inferenceSteps(steps) {
    steps = (steps || []).filter(function (s) { return s && typeof s === "object"; });
    var kept = steps.filter(function (s) { return !s.train_only && !s.in_model; });
    var pipelines = [];
    steps.forEach(function (s) { if (s.pipeline && !s.in_model && pipelines.indexOf(s.pipeline) < 0) pipelines.push(s.pipeline); });
    if (pipelines.length > 1) {
      var augmented = new Set(steps.filter(function (s) { return s.train_only; }).map(function (s) { return s.pipeline; }));
      var named = pipelines.filter(function (p) { return EVAL_NAMES.test(p); });
      var plain = pipelines.filter(function (p) { return !augmented.has(p); });
      var pool = named.length ? named : plain.length ? plain : pipelines;
      var chosen = pool[pool.length - 1];
      kept = kept.filter(function (s) { return !s.pipeline || s.pipeline === chosen; });
    }
    return kept;
  }

  function rawRange(steps) {
    for (var i = 0; i < steps.length; i++) {
      var s = steps[i];
      if (s.op === "scale" && typeof s.factor === "number" && s.factor > 0) return 1 / s.factor;
      if (s.op === "rescale" && typeof s.scale === "number" && s.scale > 0) return 1 / s.scale;
      if (s.op === "to_tensor" && typeof s.scale === "number" && s.scale > 0) return 1 / s.scale;
      if (s.op === "normalize") break;
    }
    return 255;
  }

  /** Apply the replayable steps to x (Float64Array, channel of element i = i % channels). */
  function replay(steps, x, channels, notes) {
    function perChannel(v, i) { return Array.isArray(v) ? v[(i % channels) % v.length] : v; }
    steps.forEach(function (s) {
      var i;
      switch (s.op) {
        case "scale":
          if (typeof s.factor !== "number") { notes.push("scale factor not recorded: skipped"); break; }
          for (i = 0; i < x.length; i++) x[i] = x[i] * s.factor;
          break;
        case "rescale":
          for (i = 0; i < x.length; i++) x[i] = x[i] * (s.scale === undefined ? 1 : s.scale) + (s.offset || 0);
          break;
        case "to_tensor":
          if (typeof s.scale === "number") for (i = 0; i < x.length; i++) x[i] = x[i] * s.scale;
          break;
        case "normalize":
          if (s.mean === null || s.mean === undefined || s.std === null || s.std === undefined) { notes.push("normalize parameters not recorded: skipped"); break; }
          for (i = 0; i < x.length; i++) x[i] = (x[i] - perChannel(s.mean, i)) / perChannel(s.std, i);
          break;
        case "cast":
          if (/^u?int/.test(String(s.dtype))) for (i = 0; i < x.length; i++) x[i] = Math.trunc(x[i]);
          else if (s.dtype === "float32" || s.dtype === "float16") for (i = 0; i < x.length; i++) x[i] = Math.fround(x[i]);
          break;
        case "reshape": case "expand_dims": case "resize": case "grayscale": case "center_crop":
          break; // shape-only here: the input is built at the model's shape
        default:
          notes.push("step '" + s.op + "' is not replayed in the browser");
      }
    });
    return x;
  }

  /** Input geometry from architecture.inputs[0].shape. */
  function geometry(data) {
    var input = (data.inputs || [])[0] || {};
    var shape = Array.isArray(input.shape) ? input.shape.slice() : (data.dataset.shapes && data.dataset.shapes.x) || [null, 64];
    var dims = shape.map(function (d, i) { return i === 0 ? 1 : (typeof d === "number" && d > 0 ? d : 1); });
    var g = { shape: dims, dtype: input.dtype || "float32", layout: "flat", h: 0, w: 0, c: 1 };
    if (dims.length === 4) {
      if ((dims[1] === 1 || dims[1] === 3) && !(dims[3] === 1 || dims[3] === 3)) { g.layout = "NCHW"; g.c = dims[1]; g.h = dims[2]; g.w = dims[3]; }
      else { g.layout = "NHWC"; g.h = dims[1]; g.w = dims[2]; g.c = dims[3]; }
    } else if (dims.length === 3) { g.layout = "NHW"; g.h = dims[1]; g.w = dims[2]; }
    else {
      var n = dims.slice(1).reduce(function (a, b) { return a * b; }, 1), side = Math.round(Math.sqrt(n));
      if (data.dataset.kind === "image" && side * side === n) { g.layout = "flat-image"; g.h = side; g.w = side; }
    }
    g.size = dims.reduce(function (a, b) { return a * b; }, 1);
    return g;
  }

  function imagePixels(source, g, invert) {
    var canvas = document.createElement("canvas");
    canvas.width = g.w; canvas.height = g.h;
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(source, 0, 0, g.w, g.h);
    var rgba = ctx.getImageData(0, 0, g.w, g.h).data;
    var hwc = new Float64Array(g.h * g.w * g.c);
    for (var p = 0; p < g.h * g.w; p++) {
      for (var c = 0; c < g.c; c++) {
        var v = g.c === 3 ? rgba[4 * p + c] : (rgba[4 * p] + rgba[4 * p + 1] + rgba[4 * p + 2]) / 3;
        hwc[p * g.c + c] = invert ? 255 - v : v;
      }
    }
    return hwc;
  }

  function packImage(hwc, g) {
    var out = new Float32Array(g.size);
    if (g.layout === "NCHW") {
      for (var c = 0; c < g.c; c++) for (var p = 0; p < g.h * g.w; p++) out[c * g.h * g.w + p] = hwc[p * g.c + c];
    } else {
      for (var i = 0; i < out.length; i++) out[i] = hwc[i];
    }
    return out;
  }

  function imageWidget(container, g, steps) {
    var form = document.createElement("div");
    form.className = "mkb-infer-form";
    var upload = document.createElement("label");
    upload.textContent = "Upload an image";
    var file = document.createElement("input");
    file.type = "file"; file.accept = "image/*"; file.id = "mkb-infer-file";
    upload.appendChild(file);
    var range = document.createElement("label");
    range.textContent = "Raw value range (white =)";
    var rangeInput = document.createElement("input");
    rangeInput.type = "number"; rangeInput.step = "any"; rangeInput.id = "mkb-infer-range";
    rangeInput.value = String(rawRange(steps));
    range.appendChild(rangeInput);
    var invert = document.createElement("label");
    var invertBox = document.createElement("input");
    invertBox.type = "checkbox"; invertBox.id = "mkb-infer-invert";
    invert.appendChild(invertBox);
    invert.appendChild(document.createTextNode("invert (dark ink on light paper)"));
    var pad = document.createElement("canvas");
    pad.width = 160; pad.height = 160; pad.id = "mkb-infer-pad";
    pad.title = "Draw here (white ink on black)";
    var ctx = pad.getContext("2d");
    function clear() { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); }
    clear();
    var drawing = false;
    function point(e) { var r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; }
    pad.addEventListener("pointerdown", function (e) { drawing = true; state.source = pad; var p = point(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); });
    pad.addEventListener("pointermove", function (e) {
      if (!drawing) return;
      var p = point(e);
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 16; ctx.lineCap = "round";
      ctx.lineTo(p[0], p[1]); ctx.stroke();
    });
    window.addEventListener("pointerup", function () { drawing = false; });
    var clearButton = document.createElement("button");
    clearButton.type = "button"; clearButton.className = "md-button"; clearButton.textContent = "Clear drawing";
    clearButton.addEventListener("click", function () { clear(); state.source = pad; });
    var row = document.createElement("div");
    row.className = "mkb-infer-form";
    var preview = null;  // made on the first upload: an <img> without a picture shows as broken
    file.addEventListener("change", function () {
      if (!file.files || !file.files[0]) return;
      if (!preview) {
        preview = document.createElement("img");
        preview.id = "mkb-infer-preview"; preview.alt = "uploaded image"; preview.width = 64; preview.height = 64;
        preview.style.imageRendering = "pixelated";
        row.appendChild(preview);
      }
      var url = URL.createObjectURL(file.files[0]);
      preview.onload = function () { state.source = preview; status("Image loaded (" + preview.naturalWidth + "×" + preview.naturalHeight + "); press Run."); };
      preview.src = url;
    });
    [upload, range, invert].forEach(function (el) { form.appendChild(el); });
    container.appendChild(form);
    row.appendChild(pad); row.appendChild(clearButton);
    container.appendChild(row);
    state.source = pad;
    return function (notes) {
      var hwc = imagePixels(state.source, g, invertBox.checked);
      var R = parseFloat(rangeInput.value) || 255;
      for (var i = 0; i < hwc.length; i++) hwc[i] = hwc[i] / 255 * R;
      return packImage(replay(steps, hwc, g.c, notes), g);
    };
  }

  function tabularWidget(container, g, steps, names) {
    var n = Math.min(g.size, 256);
    var form = document.createElement("div");
    form.className = "mkb-infer-form";
    var inputs = [];
    for (var i = 0; i < n; i++) {
      var label = document.createElement("label");
      label.textContent = names && names[i] !== undefined ? String(names[i]) : "feature " + i;
      var input = document.createElement("input");
      input.type = "number"; input.step = "any"; input.value = "0"; input.className = "mkb-infer-feature";
      label.appendChild(input);
      form.appendChild(label);
      inputs.push(input);
    }
    container.appendChild(form);
    return function (notes) {
      var x = new Float64Array(g.size);
      inputs.forEach(function (inp, j) { x[j] = parseFloat(inp.value) || 0; });
      // one "channel" per feature: a per-feature mean/std list applies value by value, as in the handler
      return Float32Array.from(replay(steps, x, n, notes).slice(0, g.size));
    };
  }

  // A model of named inputs (the structured-data recipe: StringLookup/IntegerLookup written in
  // ONNX) takes each raw value as it is: one field per model input, its recorded vocabulary as the
  // choices, and one tensor per input of the graph's own dtype (string, int64, float32).
  function isNamed(data) {
    var inputs = data.inputs || [];
    return inputs.length > 1 || inputs.some(function (i) { return i && /^(str|string)$/.test(String(i.dtype)); });
  }

  function namedWidget(container, inputs) {
    var form = document.createElement("div");
    form.className = "mkb-infer-form";
    var fields = inputs.map(function (spec) {
      var label = document.createElement("label");
      label.textContent = String(spec.name);
      var text = /^(str|string)$/.test(String(spec.dtype));
      var field;
      if (Array.isArray(spec.choices) && spec.choices.length && spec.choices.length <= 200) {
        field = document.createElement("select");
        spec.choices.forEach(function (choice) {
          var option = document.createElement("option");
          option.value = String(choice); option.textContent = String(choice);
          field.appendChild(option);
        });
      } else {
        field = document.createElement("input");
        field.type = text ? "text" : "number";
        if (!text) { field.step = "any"; field.value = "0"; }
      }
      field.className = "mkb-infer-feature";
      field.setAttribute("data-input", String(spec.name));
      label.appendChild(field);
      form.appendChild(label);
      return { spec: spec, field: field, text: text };
    });
    container.appendChild(form);
    return function () {
      var feeds = {};
      fields.forEach(function (f) {
        var dims = (f.spec.shape || [null, 1]).map(function (d, i) { return i === 0 ? 1 : (typeof d === "number" && d > 0 ? d : 1); });
        var size = dims.reduce(function (a, b) { return a * b; }, 1);
        var value = f.field.value;
        var dtype = String(f.spec.dtype);
        if (f.text) feeds[f.spec.name] = new root.ort.Tensor("string", new Array(size).fill(value), dims);
        else if (/int64/.test(dtype)) feeds[f.spec.name] = new root.ort.Tensor("int64", new BigInt64Array(size).fill(BigInt(Math.trunc(parseFloat(value) || 0))), dims);
        else if (/int32/.test(dtype)) feeds[f.spec.name] = new root.ort.Tensor("int32", new Int32Array(size).fill(Math.trunc(parseFloat(value) || 0)), dims);
        else feeds[f.spec.name] = new root.ort.Tensor("float32", new Float32Array(size).fill(parseFloat(value) || 0), dims);
      });
      return { feeds: feeds };
    };
  }

  // The same text pipeline as the generated handler (serverless/preprocess_runtime.py): Keras
  // TextVectorization standardizes (ASCII lower case, its punctuation set stripped), splits on
  // whitespace and pads at the end; a pad step (pad_sequences) pads and truncates on its sides.
  var KERAS_PUNCTUATION = /[!"#$%&()*+,\-./:;<=>?@[\\\]^_`{|}~']/g;
  function textIds(text, tokenizer, vocab) {
    var tv = tokenizer && tokenizer.tokenizer === "TextVectorization";
    var standardize = tv ? (tokenizer.standardize === undefined ? "lower_and_strip_punctuation" : tokenizer.standardize) : "lower";
    if (standardize === "lower" || standardize === "lower_and_strip_punctuation") text = text.replace(/[A-Z]+/g, function (m) { return m.toLowerCase(); });
    if (standardize === "strip_punctuation" || standardize === "lower_and_strip_punctuation") text = text.replace(KERAS_PUNCTUATION, "");
    var words = tv && tokenizer.split === "character" ? Array.from(text) : text.split(/\s+/).filter(Boolean);
    var oov = tokenizer && typeof tokenizer.oov_index === "number" ? tokenizer.oov_index : 1;
    var ids = words.map(function (w) { var k = vocab.indexOf(w); return k < 0 ? oov : k; });
    if (tv && typeof tokenizer.output_sequence_length === "number") {
      ids = ids.slice(0, tokenizer.output_sequence_length);
      while (ids.length < tokenizer.output_sequence_length) ids.push(0);
    }
    return ids;
  }

  function fit(ids, length, pad) {
    var padding = pad && pad.padding === "post" ? "post" : "pre", truncating = pad && pad.truncating === "post" ? "post" : "pre";
    if (ids.length > length) ids = truncating === "post" ? ids.slice(0, length) : ids.slice(ids.length - length);
    var x = new Float64Array(length).fill(pad && typeof pad.value === "number" ? pad.value : 0);
    var start = padding === "post" ? 0 : length - ids.length;
    for (var i = 0; i < ids.length; i++) x[start + i] = ids[i];
    return x;
  }

  function textWidget(container, g, steps) {
    var area = document.createElement("textarea");
    area.rows = 4; area.cols = 60; area.id = "mkb-infer-text";
    area.placeholder = "Type some text";
    container.appendChild(area);
    var tokenizer = steps.filter(function (s) { return s.op === "tokenize"; })[0];
    var pad = steps.filter(function (s) { return s.op === "pad"; })[0];
    var vocab = tokenizer && Array.isArray(tokenizer.vocabulary) ? tokenizer.vocabulary : null;
    return function (notes) {
      var ids;
      if (vocab) ids = textIds(area.value, tokenizer, vocab);
      else if (/^\s*\[[\d\s,]*\]\s*$/.test(area.value)) ids = JSON.parse(area.value);  // token ids, as the handler takes them
      else {
        ids = Array.from(area.value).map(function (ch) { return ch.codePointAt(0) % 256; });
        notes.push("no tokenizer vocabulary recorded: characters are fed as codes (type token ids as [12, 7, 3])");
      }
      var length = g.shape.length > 1 ? g.shape[1] : ids.length;
      return fit(ids, length, pad);
    };
  }

  function toProbabilities(values) {
    var arr = Array.from(values, Number);
    if (arr.length === 1) {  // one output: a probability of class 1 (sigmoid head) or its logit
      var p = arr[0] >= 0 && arr[0] <= 1 ? arr[0] : 1 / (1 + Math.exp(-arr[0]));
      return [1 - p, p];
    }
    var sum = arr.reduce(function (a, b) { return a + b; }, 0);
    if (arr.every(function (v) { return v >= 0 && v <= 1; }) && Math.abs(sum - 1) < 1e-3) return arr;
    var max = Math.max.apply(null, arr);
    var exps = arr.map(function (v) { return Math.exp(v - max); });
    var total = exps.reduce(function (a, b) { return a + b; }, 0);
    return exps.map(function (v) { return v / total; });
  }

  function showResult(probs, classes) {
    var list = $("mkb-infer-result");
    list.textContent = "";
    var order = probs.map(function (p, i) { return i; }).sort(function (a, b) { return probs[b] - probs[a]; });
    order.slice(0, 10).forEach(function (i, rank) {
      var li = document.createElement("li");
      if (rank === 0) li.className = "mkb-top";
      li.setAttribute("data-class", String(i));
      li.setAttribute("data-p", String(probs[i]));
      var name = document.createElement("span");
      name.textContent = classes && classes[i] !== undefined ? String(classes[i]) : "class " + i;
      var bar = document.createElement("span");
      bar.className = "mkb-bar";
      bar.style.width = (probs[i] * 100).toFixed(1) + "%";
      var value = document.createElement("span");
      value.textContent = probs[i].toFixed(4);
      li.appendChild(name); li.appendChild(bar); li.appendChild(value);
      list.appendChild(li);
    });
    root.ModelKBInferResult = { probs: probs, top: order[0] };
  }

  // A regression model's outputs are values: shown as numbers, never as class probabilities.
  function showValues(values) {
    var list = $("mkb-infer-result");
    list.textContent = "";
    var outputs = Array.from(values, Number);
    outputs.slice(0, 20).forEach(function (v, i) {
      var li = document.createElement("li");
      li.setAttribute("data-output", String(i));
      li.setAttribute("data-value", String(v));
      var name = document.createElement("span");
      name.textContent = outputs.length > 1 ? "output " + i : "predicted value";
      var value = document.createElement("span");
      value.textContent = Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(4) : v.toFixed(4);
      li.appendChild(name); li.appendChild(value);
      list.appendChild(li);
    });
    root.ModelKBInferResult = { values: outputs };
  }

  function loadRuntime(base) {
    if (root.ort) return Promise.resolve(root.ort);
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = base + "ort.wasm.min.js";
      script.onload = function () { resolve(root.ort); };
      script.onerror = function () { reject(new Error("cannot load onnxruntime-web")); };
      document.head.appendChild(script);
    });
  }

  function run() {
    var notes = [];
    var built = state.build(notes);
    var g = state.geometry;
    var ort = root.ort;
    var feeds = {};
    if (built && built.feeds) feeds = built.feeds;
    else {
      var tensor;
      if (/int64/.test(g.dtype)) tensor = new ort.Tensor("int64", BigInt64Array.from(Array.from(built, function (v) { return BigInt(Math.trunc(v)); })), g.shape);
      else if (/int32/.test(g.dtype)) tensor = new ort.Tensor("int32", Int32Array.from(built), g.shape);
      else tensor = new ort.Tensor("float32", Float32Array.from(built), g.shape);
      feeds[state.session.inputNames[0]] = tensor;
    }
    return runFeeds(feeds, notes, "");
  }

  function runFeeds(feeds, notes, what) {
    var box = $("mkb-infer");
    box.setAttribute("data-state", "running");
    var t0 = performance.now();
    return state.session.run(feeds).then(function (outputs) {
      var output = outputs[state.session.outputNames[0]];
      if (state.data.task === "regression") showValues(output.data);
      else showResult(toProbabilities(output.data), state.data.dataset.classes);
      status(what + "Ran in " + (performance.now() - t0).toFixed(1) + " ms." + (notes.length ? " Note: " + notes.join("; ") + "." : ""));
      box.setAttribute("data-state", "done");
    }).catch(function (err) {
      status("Inference failed: " + err.message);
      box.setAttribute("data-state", "error");
    });
  }

  // The run's example inputs (experiments/<id>/examples.json, written by the build): each is
  // fed to the model exactly as recorded, one tensor per model input.
  var TYPED = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array };

  function exampleTensor(t) {
    var ort = root.ort;
    if (t.dtype === "string") return new ort.Tensor("string", t.data.map(String), t.dims);
    if (t.dtype === "int64") return new ort.Tensor("int64", BigInt64Array.from(t.data, function (v) { return BigInt(v); }), t.dims);
    return new ort.Tensor(t.dtype, TYPED[t.dtype].from(t.data), t.dims);
  }

  /** A thumbnail of an image example (its values stretched to black..white), or null. */
  function exampleImage(example) {
    var names = Object.keys(example.feeds);
    if (state.data.dataset.kind !== "image" || names.length !== 1) return null;
    var t = example.feeds[names[0]];
    var g = geometry({ inputs: [{ shape: t.dims }], dataset: state.data.dataset });
    if (!(g.h > 0 && g.w > 0) || (g.c !== 1 && g.c !== 3)) return null;
    var lo = Math.min.apply(null, t.data), hi = Math.max.apply(null, t.data), span = hi - lo || 1;
    var canvas = document.createElement("canvas");
    canvas.width = g.w; canvas.height = g.h; canvas.className = "mkb-example-image";
    var ctx = canvas.getContext("2d"), pixels = ctx.createImageData(g.w, g.h), hw = g.h * g.w;
    for (var p = 0; p < hw; p++) {
      for (var c = 0; c < 3; c++) {
        var channel = g.c === 3 ? c : 0;
        var v = g.layout === "NCHW" ? t.data[channel * hw + p] : t.data[p * g.c + channel];
        pixels.data[4 * p + c] = Math.round((v - lo) / span * 255);
      }
      pixels.data[4 * p + 3] = 255;
    }
    ctx.putImageData(pixels, 0, 0);
    return canvas;
  }

  function showExamples(examples) {
    var list = $("mkb-infer-example-list");
    examples.forEach(function (example, index) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button"; button.className = "mkb-example"; button.disabled = !state.session;
      button.setAttribute("data-example", String(index));
      var image = exampleImage(example);
      if (image) button.appendChild(image);
      var text = document.createElement("span");
      text.textContent = example.text;
      button.appendChild(text);
      if (example.label !== undefined) {
        var label = document.createElement("span");
        label.className = "mkb-example-label";
        label.textContent = "true label: " + example.label;
        button.appendChild(label);
      }
      button.addEventListener("click", function () {
        if (!state.session) return;
        var feeds = {};
        Object.keys(example.feeds).forEach(function (name) { feeds[name] = exampleTensor(example.feeds[name]); });
        var what = "Example " + (index + 1) + (example.label !== undefined ? " (true label " + example.label + ")" : "") + ": ";
        runFeeds(feeds, [], what);
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    $("mkb-infer-examples").hidden = false;
  }

  function loadExamples(data) {
    if (!data.examples || !root.fetch) return;
    fetch("examples.json").then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (found) { showExamples(found.examples || []); }).catch(function (err) {
      status("The run's example inputs could not be loaded (" + err.message + ").");
    });
  }

  function activate(data) {
    var box = $("mkb-infer");
    if (!box || state.ready) return;
    state.ready = true;
    state.data = data;
    var g = geometry(data);
    state.geometry = g;
    var steps = inferenceSteps(data.dataset.preprocessing);
    var inputs = $("mkb-infer-inputs");
    var kind = data.dataset.kind;
    if (isNamed(data)) state.build = namedWidget(inputs, data.inputs);
    else if ((kind === "image" || g.layout !== "flat") && g.h > 0) state.build = imageWidget(inputs, g, steps);
    else if (kind === "text") state.build = textWidget(inputs, g, steps);
    else state.build = tabularWidget(inputs, g, steps, data.dataset.features);
    loadExamples(data);
    var base = new URL(box.getAttribute("data-ort"), location.href).href;
    status("Loading onnxruntime-web and the model…");
    loadRuntime(base).then(function (ort) {
      ort.env.wasm.wasmPaths = base;
      ort.env.wasm.numThreads = 1;
      return ort.InferenceSession.create(new URL(box.getAttribute("data-model"), location.href).href, { executionProviders: ["wasm"] });
    }).then(function (session) {
      state.session = session;
      $("mkb-infer-example-list").querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      status((isNamed(data)
        ? "Model loaded (inputs " + session.inputNames.join(", ") + "). Fill in the fields, then run."
        : "Model loaded (input " + session.inputNames[0] + ", shape [" + g.shape.join(", ") + "]). Draw or upload, then run."
      ) + (data.examples ? " Or click one of the run's examples." : ""));
      box.setAttribute("data-state", "ready");
    }).catch(function (err) {
      status("Cannot load the model: " + err.message);
      box.setAttribute("data-state", "error");
    });
    $("mkb-infer-run").addEventListener("click", function () { if (state.session) run(); });
  }

  root.ModelKBInfer = { activate: activate, inferenceSteps: inferenceSteps, rawRange: rawRange, geometry: geometry };
})(this);
