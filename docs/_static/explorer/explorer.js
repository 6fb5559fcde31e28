/* initbook signal-propagation explorer: controls, URL state and SVG plots (plain JS, no dependencies).
 *
 * Embed with
 *   <div class="initbook-explorer" data-state="act=tanh&sw2=1.76&sb2=0.05"></div>
 *   <script src="../_static/explorer/theory.js"></script><script src="../_static/explorer/explorer.js"></script>
 * data-url-state="true" makes the widget read its state from the page URL and write it back (the full page).
 */
(function () {
  "use strict";

  const T = window.InitbookTheory;
  const SVGNS = "http://www.w3.org/2000/svg";

  const LIMITS = {
    sw2: { min: 0.01, max: 8, step: 0.01, label: "σ_w²" },
    sb2: { min: 0, max: 2, step: 0.01, label: "σ_b²" },
    depth: { min: 1, max: 500, step: 1, label: "depth", integer: true },
    width: { min: 2, max: 2048, step: 1, label: "width", integer: true },
    c0: { min: -1, max: 1, step: 0.01, label: "input correlation c⁰" },
    seed: { min: 0, max: 4294967295, step: 1, label: "seed", integer: true },
  };
  const DEFAULTS = { act: "tanh", init: "custom", sw2: 1.76, sb2: 0.05, depth: 50, c0: 0.5, mc: false, width: 128, seed: 1 };
  const NETWORKS = 12; // Monte-Carlo samples drawn per setting
  const ACT_LABELS = {
    linear: "linear",
    relu: "ReLU",
    leaky_relu: `leaky ReLU (slope ${T.LEAKY_SLOPE})`,
    tanh: "tanh",
    selu: "SELU",
    gelu: "GELU",
    erf: "erf",
  };
  const PRESETS = {
    custom: { label: "custom", sw2: null },
    pytorch: { label: "PyTorch default (nn.Linear): σ_w² = 1/3", sw2: 1 / 3 },
    lecun: { label: "LeCun: σ_w² = 1", sw2: 1 },
    xavier: { label: "Xavier/Glorot, fan_in = fan_out: σ_w² = 1", sw2: 1 },
    he: { label: "He/Kaiming (ReLU): σ_w² = 2", sw2: 2 },
    gain53: { label: "tanh gain 5/3: σ_w² = 25/9", sw2: 25 / 9 },
  };

  // -------------------------------------------------------------------------------------------------
  // State: parse, validate (falling back to the nearest valid setting), serialize
  // -------------------------------------------------------------------------------------------------

  function fmt(x, digits = 4) {
    if (typeof x !== "number") return String(x);
    if (Number.isNaN(x)) return "undefined";
    if (x === Infinity) return "∞";
    if (x === -Infinity) return "−∞";
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2).replace("e", "×10^").replace("+", "");
    return String(Number(x.toPrecision(digits)));
  }

  function parseState(query) {
    const params = new URLSearchParams(query);
    const state = Object.assign({}, DEFAULTS);
    const notes = [];
    if (params.has("act")) {
      const v = params.get("act");
      if (T.NAMES.includes(v)) state.act = v;
      else notes.push(`unknown activation “${v}” (valid: ${T.NAMES.join(", ")}); using ${DEFAULTS.act}`);
    }
    if (params.has("init")) {
      const v = params.get("init");
      if (Object.prototype.hasOwnProperty.call(PRESETS, v)) {
        state.init = v;
        if (PRESETS[v].sw2 !== null) state.sw2 = PRESETS[v].sw2;
      } else notes.push(`unknown initializer “${v}” (valid: ${Object.keys(PRESETS).join(", ")}); using custom`);
    }
    for (const key of ["sw2", "sb2", "depth", "c0", "width", "seed"]) {
      if (!params.has(key)) continue;
      const lim = LIMITS[key];
      const raw = params.get(key);
      let v = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(v)) {
        notes.push(`${lim.label} = “${raw}” is not a finite number; using ${fmt(DEFAULTS[key])}`);
        continue;
      }
      if (lim.integer && !Number.isInteger(v)) {
        const r = Math.round(v);
        notes.push(`${lim.label} = ${raw} is not a whole number; using ${r}`);
        v = r;
      }
      if (v < lim.min) {
        notes.push(`${lim.label} = ${raw} is below the minimum ${lim.min}; using ${lim.min}`);
        v = lim.min;
      } else if (v > lim.max) {
        notes.push(`${lim.label} = ${raw} is above the maximum ${lim.max}; using ${lim.max}`);
        v = lim.max;
      }
      state[key] = v;
    }
    if (params.has("sw2") && state.init !== "custom" && Math.abs(PRESETS[state.init].sw2 - state.sw2) > 1e-12) {
      state.init = "custom";
    }
    if (params.has("mc")) {
      const v = params.get("mc");
      if (v === "1" || v === "true") state.mc = true;
      else if (v === "0" || v === "false") state.mc = false;
      else notes.push(`mc = “${v}” is not 0 or 1; using 0 (theory only)`);
    }
    return { state, notes };
  }

  function serialize(state) {
    const p = new URLSearchParams();
    p.set("act", state.act);
    if (state.init !== "custom") p.set("init", state.init);
    else p.set("sw2", String(Number(state.sw2.toPrecision(6))));
    p.set("sb2", String(Number(state.sb2.toPrecision(6))));
    p.set("depth", String(state.depth));
    p.set("c0", String(state.c0));
    if (state.mc) {
      p.set("mc", "1");
      p.set("width", String(state.width));
      p.set("seed", String(state.seed));
    }
    return p.toString();
  }

  // -------------------------------------------------------------------------------------------------
  // SVG plots
  // -------------------------------------------------------------------------------------------------

  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    const step0 = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || 10 * mag;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) ticks.push(Math.abs(t) < 1e-12 * step ? 0 : t);
    return ticks;
  }

  const W = 360;
  const H = 230;
  const M = { l: 52, r: 10, t: 24, b: 38 };

  /* Draw line plots. series: [{x: [], y: [], cls}], log: y axis in log10. Returns nothing. */
  function drawPlot(svg, spec) {
    while (svg.lastChild) svg.removeChild(svg.lastChild);
    const title = el("title", {}, svg);
    title.textContent = spec.description;
    const tr = (v) => (spec.log ? (v > 0 && Number.isFinite(v) ? Math.log10(v) : NaN) : v);
    let ylo = Infinity;
    let yhi = -Infinity;
    for (const s of spec.series) {
      for (const v of s.y) {
        const t = tr(v);
        if (Number.isFinite(t)) {
          ylo = Math.min(ylo, t);
          yhi = Math.max(yhi, t);
        }
      }
    }
    if (spec.ylim) [ylo, yhi] = spec.ylim;
    if (!Number.isFinite(ylo)) [ylo, yhi] = [0, 1];
    const minSpan = spec.log ? 1 : 0.1;
    if (yhi - ylo < minSpan) {
      const mid = 0.5 * (yhi + ylo);
      ylo = mid - minSpan / 2;
      yhi = mid + minSpan / 2;
    }
    const pad = 0.04 * (yhi - ylo);
    ylo -= pad;
    yhi += pad;
    const [xlo, xhi] = spec.xlim;
    const px = (x) => M.l + ((x - xlo) / (xhi - xlo)) * (W - M.l - M.r);
    const py = (y) => H - M.b - ((y - ylo) / (yhi - ylo)) * (H - M.t - M.b);
    const axes = el("g", { class: "ie-axes" }, svg);
    el("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, class: "ie-frame" }, axes);
    for (const t of niceTicks(xlo, xhi, 5)) {
      el("line", { x1: px(t), x2: px(t), y1: M.t, y2: H - M.b, class: "ie-grid" }, axes);
      const lab = el("text", { x: px(t), y: H - M.b + 14, class: "ie-tick", "text-anchor": "middle" }, axes);
      lab.textContent = fmt(t, 3);
    }
    let yt;
    if (spec.log) {
      // decades, thinned to at most 6; within less than two decades also 2x and 5x
      const span = yhi - ylo;
      const step = Math.max(1, Math.ceil(span / 6));
      yt = [];
      for (let k = Math.floor(ylo); k <= Math.ceil(yhi); k++) {
        if (k % step === 0) yt.push({ t: k, text: k === 0 ? "1" : Math.abs(k) <= 2 ? fmt(Math.pow(10, k)) : `1e${k}` });
        if (span < 2) {
          for (const m of [2, 5]) yt.push({ t: k + Math.log10(m), text: fmt(m * Math.pow(10, k)) });
        }
      }
      yt = yt.filter((o) => o.t >= ylo && o.t <= yhi);
    } else yt = niceTicks(ylo, yhi, 4).map((t) => ({ t, text: fmt(t, 3) }));
    for (const { t, text } of yt) {
      el("line", { x1: M.l, x2: W - M.r, y1: py(t), y2: py(t), class: "ie-grid" }, axes);
      const lab = el("text", { x: M.l - 4, y: py(t) + 4, class: "ie-tick", "text-anchor": "end" }, axes);
      lab.textContent = text;
    }
    const xl = el("text", { x: (M.l + W - M.r) / 2, y: H - 6, class: "ie-label", "text-anchor": "middle" }, axes);
    xl.textContent = spec.xlabel;
    const yl = el("text", { x: M.l, y: M.t - 8, class: "ie-label", "text-anchor": "start" }, axes);
    yl.textContent = spec.ylabel;
    const clipId = `${svg.id}-clip`;
    const defs = el("defs", {}, svg);
    const clip = el("clipPath", { id: clipId }, defs);
    el("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b }, clip);
    const g = el("g", { "clip-path": `url(#${clipId})` }, svg);
    for (const s of spec.series) {
      let d = "";
      let pen = false;
      for (let i = 0; i < s.y.length; i++) {
        const t = tr(s.y[i]);
        const x = s.x ? s.x[i] : i;
        if (!Number.isFinite(t) || !Number.isFinite(x)) {
          pen = false;
          continue;
        }
        const yy = Math.max(-1e4, Math.min(1e4, py(Math.max(ylo - 10 * (yhi - ylo), Math.min(yhi + 10 * (yhi - ylo), t)))));
        d += `${pen ? "L" : "M"}${px(x).toFixed(1)},${yy.toFixed(1)}`;
        pen = true;
      }
      if (d) el("path", { d, class: s.cls }, g);
    }
    for (const m of spec.markers || []) {
      el("circle", { cx: px(m.x), cy: py(tr(m.y)), r: 5, class: m.cls }, g);
    }
    for (const t of spec.texts || []) {
      const e = el("text", { x: px(t.x), y: py(t.y), class: "ie-region", "text-anchor": "middle" }, g);
      e.textContent = t.text;
    }
    svg.__map = { px, py, xlo, xhi, ylo, yhi };
  }

  // -------------------------------------------------------------------------------------------------
  // The widget
  // -------------------------------------------------------------------------------------------------

  let instances = 0;

  function create(tag, attrs, parent, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function Explorer(root) {
    const id = `ie${++instances}`;
    const useUrl = root.dataset.urlState === "true";
    const fullPage = root.dataset.fullPage || "explorer.html";
    const query = useUrl && window.location.search ? window.location.search : root.dataset.state || "";
    const parsed = parseState(query);
    const state = parsed.state;
    const critCache = new Map();
    const pointCache = new Map();
    const mapCache = new Map();
    let generation = 0;
    const mc = { gen: -1, runs: [] };
    const self = { root, state, lastUpdateMs: NaN, notes: parsed.notes.slice(), mc };

    root.classList.add("ie-root");
    root.innerHTML = "";
    const notice = create("div", { class: "ie-notice", role: "status", id: `${id}-notice` }, root);
    if (parsed.notes.length) {
      notice.textContent = `The link's setting was adjusted to the nearest valid one: ${parsed.notes.join("; ")}.`;
    } else notice.hidden = true;

    const form = create("form", { class: "ie-controls", "aria-label": "Explorer settings" }, root);
    form.addEventListener("submit", (e) => e.preventDefault());

    function field(labelText, input, hint) {
      const wrap = create("div", { class: "ie-field" }, form);
      const lab = create("label", { for: input.id }, wrap, labelText);
      wrap.appendChild(input);
      if (hint) {
        const h = create("span", { class: "ie-hint", id: `${input.id}-hint` }, wrap, hint);
        input.setAttribute("aria-describedby", h.id);
      }
      void lab;
      return wrap;
    }

    const actSel = create("select", { id: `${id}-act` });
    for (const n of T.NAMES) create("option", { value: n }, actSel, ACT_LABELS[n]);
    field("Activation", actSel);

    const initSel = create("select", { id: `${id}-init` });
    for (const [k, p] of Object.entries(PRESETS)) create("option", { value: k }, initSel, p.label);
    field("Initializer", initSel);

    function slider(key, text, hint) {
      const lim = LIMITS[key];
      const wrap = create("div", { class: "ie-field ie-slider" }, form);
      const range = create("input", {
        type: "range",
        id: `${id}-${key}`,
        min: lim.min,
        max: lim.max,
        step: lim.step,
      });
      const num = create("input", {
        type: "number",
        id: `${id}-${key}-num`,
        min: lim.min,
        max: lim.max,
        step: lim.step,
        inputmode: "decimal",
        "aria-label": `${text} (number)`,
      });
      create("label", { for: range.id }, wrap, text);
      const row = create("div", { class: "ie-row" }, wrap);
      row.appendChild(range);
      row.appendChild(num);
      const h = create("span", { class: "ie-hint", id: `${range.id}-hint` }, wrap, hint);
      range.setAttribute("aria-describedby", h.id);
      num.setAttribute("aria-describedby", h.id);
      return { range, num, wrap };
    }

    const sliders = {
      sw2: slider("sw2", "Weight variance σ_w² (× fan-in)", `${LIMITS.sw2.min} to ${LIMITS.sw2.max}`),
      sb2: slider("sb2", "Bias variance σ_b²", `${LIMITS.sb2.min} to ${LIMITS.sb2.max}`),
      depth: slider("depth", "Depth L (layers)", `1 to ${LIMITS.depth.max} (limit of this page)`),
      c0: slider("c0", "Correlation c⁰ of the two inputs", "−1 to 1"),
    };

    const mcWrap = create("div", { class: "ie-field ie-mc" }, form);
    const mcBox = create("input", { type: "checkbox", id: `${id}-mc` }, mcWrap);
    create("label", { for: mcBox.id }, mcWrap, `Monte Carlo: ${NETWORKS} random networks of finite width`);
    const widthSl = slider("width", "Width n (units per layer)", `2 to ${LIMITS.width.max} (limit of this page)`);

    const status = create("p", { class: "ie-status", "aria-live": "polite", id: `${id}-status` }, root);

    const readout = create("dl", { class: "ie-readout", "aria-label": "Fixed points and depth scales" }, root);
    function readoutItem(term) {
      create("dt", {}, readout, term);
      return create("dd", {}, readout);
    }
    const rd = {
      phase: readoutItem("Phase"),
      q: readoutItem("q* (fixed point of the length map)"),
      chi: readoutItem("χ₁ (per-layer gain at q*)"),
      c: readoutItem("c* (fixed point of the correlation map)"),
      xic: readoutItem("ξ_c (correlation depth scale)"),
      xig: readoutItem("ξ_∇ (gradient depth scale)"),
    };

    const plotsDiv = create("div", { class: "ie-plots" }, root);
    function svgPlot(name, label) {
      const fig = create("div", { class: "ie-plot" }, plotsDiv);
      const svg = el("svg", {
        id: `${id}-${name}`,
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        "aria-label": label,
        preserveAspectRatio: "xMidYMid meet",
      });
      fig.appendChild(svg);
      return svg;
    }
    const svgQ = svgPlot("q", "Length map: pre-activation variance q per layer");
    const svgC = svgPlot("c", "Correlation of the two inputs per layer");
    const svgG = svgPlot("g", "Jacobian gain per layer");
    const svgP = svgPlot("phase", "Phase diagram with the critical line");
    svgP.classList.add("ie-clickable");

    const legend = create("p", { class: "ie-legend" }, root);
    const linkP = create("p", { class: "ie-link" }, root);
    const link = create("a", {}, linkP, useUrl ? "Link to this setting" : "Open this setting in the full explorer");

    // --- wiring
    function syncControls() {
      actSel.value = state.act;
      initSel.value = state.init;
      for (const key of ["sw2", "sb2", "depth", "c0"]) {
        sliders[key].range.value = state[key];
        sliders[key].num.value = Number(state[key].toPrecision(6));
      }
      mcBox.checked = state.mc;
      widthSl.range.value = state.width;
      widthSl.num.value = state.width;
      widthSl.wrap.hidden = !state.mc;
    }

    function setNumber(key, raw) {
      const lim = LIMITS[key];
      let v = Number(raw);
      if (raw === "" || !Number.isFinite(v)) return false;
      if (lim.integer) v = Math.round(v);
      v = Math.min(lim.max, Math.max(lim.min, v));
      state[key] = v;
      return true;
    }

    function onChange() {
      syncControls();
      update();
    }

    actSel.addEventListener("change", () => {
      state.act = actSel.value;
      onChange();
    });
    initSel.addEventListener("change", () => {
      state.init = initSel.value;
      if (PRESETS[state.init].sw2 !== null) state.sw2 = PRESETS[state.init].sw2;
      onChange();
    });
    for (const key of ["sw2", "sb2", "depth", "c0"]) {
      sliders[key].range.addEventListener("input", () => {
        if (setNumber(key, sliders[key].range.value)) {
          if (key === "sw2") state.init = "custom";
          onChange();
        }
      });
      sliders[key].num.addEventListener("change", () => {
        if (setNumber(key, sliders[key].num.value)) {
          if (key === "sw2") state.init = "custom";
        }
        onChange();
      });
    }
    widthSl.range.addEventListener("input", () => {
      if (setNumber("width", widthSl.range.value)) onChange();
    });
    widthSl.num.addEventListener("change", () => {
      setNumber("width", widthSl.num.value);
      onChange();
    });
    mcBox.addEventListener("change", () => {
      state.mc = mcBox.checked;
      onChange();
    });
    svgP.addEventListener("click", (ev) => {
      const m = svgP.__map;
      if (!m) return;
      const pt = svgP.createSVGPoint();
      pt.x = ev.clientX;
      pt.y = ev.clientY;
      const p = pt.matrixTransform(svgP.getScreenCTM().inverse());
      const x = m.xlo + ((p.x - M.l) / (W - M.l - M.r)) * (m.xhi - m.xlo);
      const y = m.ylo + ((H - M.b - p.y) / (H - M.t - M.b)) * (m.yhi - m.ylo);
      setNumber("sw2", x.toFixed(2));
      setNumber("sb2", y.toFixed(2));
      state.init = "custom";
      onChange();
    });

    /* The critical line of the activation: 25 bisections, computed once per activation and after the first
       paint (an activation change draws the other plots at once and the line a moment later). */
    let pendingLine = null;
    function drawPhase() {
      const { act, sw2, sb2 } = state;
      const line = critCache.get(act);
      if (!line && pendingLine !== act) {
        pendingLine = act;
        setTimeout(() => {
          if (!critCache.has(act)) {
            const sb = [];
            for (let i = 0; i <= 24; i++) sb.push((LIMITS.sb2.max * i) / 24);
            critCache.set(act, { sb, sw: T.criticalLine(sb, act) });
          }
          pendingLine = null;
          if (state.act === act) drawPhase();
        }, 0);
      }
      drawPlot(svgP, {
        description: `Phase diagram: the critical line of ${ACT_LABELS[act]} and the current point σ_w² = ${fmt(sw2)}, σ_b² = ${fmt(sb2)}`,
        xlabel: "σ_w²",
        ylabel: "σ_b²  (click to choose)",
        xlim: [0, LIMITS.sw2.max],
        ylim: [0, LIMITS.sb2.max],
        series: line ? [{ x: line.sw, y: line.sb, cls: "ie-critical" }] : [],
        markers: [{ x: sw2, y: sb2, cls: "ie-point" }],
        texts: [
          { x: 0.9, y: 1.75, text: "ordered" },
          { x: 6.8, y: 1.75, text: "chaotic" },
        ],
      });
      svgP.dataset.line = line ? act : "";
    }

    function scaleText(s, what) {
      switch (s.kind) {
        case "finite":
          return `${fmt(s.value)} layers${s.value < 0 ? ` (negative: ${what} grow by e every ${fmt(-s.value)} layers)` : ""}`;
        case "critical":
          return "∞ (on the critical line: power-law, not exponential, decay)";
        case "power":
          return "∞: with σ_b² = 0 (or q* = ∞) a positively homogeneous φ has a correlation map that does not depend on q, with slope 1 at c = 1; c approaches 1 only as a power of the depth";
        case "frozen":
          return "undefined: q* = 0, the signal shrinks to 0 where φ is linear, and c stops changing instead of approaching a fixed point";
        case "identity":
          return "undefined: a linear network without biases keeps every correlation, c^ℓ = c⁰";
        default:
          return "undefined: q grows without bound (no fixed point)";
      }
    }

    function update() {
      const t0 = performance.now();
      const gen = ++generation;
      const { act, sw2, sb2, depth, c0 } = state;
      // what depends only on (activation, sigma_w^2, sigma_b^2) is kept, so depth and c0 changes are cheap
      const key = `${act}|${sw2}|${sb2}`;
      let point = pointCache.get(key);
      if (!point) {
        const fixed = T.fixedPointC(sw2, sb2, act);
        point = {
          fixed,
          chi: T.chi1(sw2, sb2, act),
          xic: T.correlationDepthScale(sw2, sb2, act, fixed),
          xig: T.gradientDepthScale(sw2, sb2, act),
          crit: T.criticalLine([sb2], act)[0],
        };
        if (pointCache.size > 256) pointCache.clear();
        pointCache.set(key, point);
      }
      const mapKey = `${key}|${c0}`;
      let cached = mapCache.get(mapKey);
      if (!cached || cached.depth < depth) {
        cached = { depth, maps: T.iterateMaps(1.0, c0, sw2, sb2, depth, act) };
        if (mapCache.size > 64) mapCache.clear();
        mapCache.set(mapKey, cached);
      }
      const maps = {
        q: cached.maps.q.subarray(0, depth + 1),
        c: cached.maps.c.subarray(0, depth + 1),
        gain: cached.maps.gain.subarray(0, depth + 1),
      };
      const { fixed, chi, xic, xig, crit } = point;
      const { q: qstar, c: cstar } = fixed;

      let phase;
      if (Number.isNaN(chi)) phase = "undefined (q grows without bound)";
      else if (Math.abs(chi - 1) < 1e-9) phase = "critical (χ₁ = 1, the edge of chaos)";
      else if (chi < 1) phase = "ordered (χ₁ < 1: inputs converge, gradients vanish)";
      else phase = "chaotic (χ₁ > 1: inputs decorrelate, gradients explode)";
      rd.phase.textContent = `${phase}; critical σ_w² at this σ_b²: ${Number.isNaN(crit) ? "none in range" : fmt(crit)}`;
      rd.q.textContent = fmt(qstar);
      rd.chi.textContent = fmt(chi);
      rd.c.textContent = Math.abs(cstar) < 1e-12 ? `0 (to rounding: ${fmt(cstar)})` : fmt(cstar);
      rd.xic.textContent = scaleText(xic, "correlations");
      rd.xig.textContent =
        scaleText(xig, "gradients") +
        (qstar === 0 && xig.kind === "finite" ? " (q* = 0: the signal dies out and gradients shrink by χ₁ = σ_w² φ′(0)² per layer)" : "");

      const layers = Array.from({ length: depth + 1 }, (_, i) => i);
      const mcRuns = state.mc && mc.gen === gen ? mc.runs : [];
      const sampleSeries = (key) => mcRuns.map((r) => ({ x: layers, y: r[key], cls: "ie-mc-line" }));
      const last = depth;
      drawPlot(svgQ, {
        description: `Pre-activation variance q per layer (log scale); theory q at layer ${last}: ${fmt(maps.q[last])}`,
        xlabel: "layer ℓ",
        ylabel: "variance q of the pre-activations (log scale)",
        xlim: [0, depth],
        log: true,
        series: [...sampleSeries("q"), { x: layers, y: maps.q, cls: "ie-theory" }],
      });
      drawPlot(svgC, {
        description: `Correlation of two inputs per layer; theory c at layer ${last}: ${fmt(maps.c[last])}`,
        xlabel: "layer ℓ",
        ylabel: "correlation c of two inputs",
        xlim: [0, depth],
        ylim: [Math.min(0, ...Array.from(maps.c).filter(Number.isFinite)), 1],
        series: [...sampleSeries("c"), { x: layers, y: maps.c, cls: "ie-theory" }],
      });
      drawPlot(svgG, {
        description: `Squared Jacobian gain through the first ℓ layers (log scale); theory at layer ${last}: ${fmt(maps.gain[last])}`,
        xlabel: "layer ℓ",
        ylabel: "Jacobian gain ∏ χ(q) over ℓ layers (log scale)",
        xlim: [0, depth],
        log: true,
        series: [...sampleSeries("gain"), { x: layers, y: maps.gain, cls: "ie-theory" }],
      });
      drawPhase();

      legend.textContent = state.mc
        ? `Thick line: wide-network theory. Thin lines: ${NETWORKS} sampled networks of width ${state.width} (seed ${state.seed}).`
        : "Thick line: wide-network theory (turn on Monte Carlo to see finite networks).";
      const qs = serialize(state);
      link.setAttribute("href", `${useUrl ? "" : fullPage}?${qs}`);
      if (useUrl) {
        const url = `${window.location.pathname}?${qs}${window.location.hash}`;
        if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) {
          window.history.replaceState(null, "", url);
        }
      }
      root.dataset.state = qs;
      self.lastUpdateMs = performance.now() - t0;
      if (state.mc && mc.gen !== gen) startMonteCarlo(gen);
      else if (!state.mc) status.textContent = "";
      return maps;
    }

    function startMonteCarlo(gen) {
      mc.gen = gen;
      mc.runs = [];
      const { act, sw2, sb2, depth, c0, width, seed } = state;
      status.textContent = `Monte Carlo: sampling ${NETWORKS} networks…`;
      let k = 0;
      const step = () => {
        if (generation !== gen || !state.mc) return; // the setting changed: a newer run takes over
        const t0 = performance.now();
        while (k < NETWORKS && performance.now() - t0 < 30) {
          mc.runs.push(T.sampleNetwork(sw2, sb2, width, depth, act, 1.0, c0, seed * 1000 + k));
          k++;
        }
        generation--; // redraw without starting a new run
        update();
        status.textContent =
          k < NETWORKS ? `Monte Carlo: ${k} of ${NETWORKS} networks…` : `Monte Carlo: ${NETWORKS} networks of width ${width} sampled.`;
        if (k < NETWORKS) setTimeout(step, 0);
        else root.dataset.mcDone = String(gen);
      };
      setTimeout(step, 0);
    }

    // keep generation and mc.gen in step when update() is called for a redraw
    syncControls();
    update();
    self.update = () => {
      syncControls();
      return update();
    };
    return self;
  }

  function init() {
    if (!T) return;
    window.initbookExplorers = window.initbookExplorers || [];
    for (const root of document.querySelectorAll("div.initbook-explorer")) {
      if (root.__explorer) continue;
      root.__explorer = Explorer(root);
      window.initbookExplorers.push(root.__explorer);
    }
  }

  window.InitbookExplorer = { parseState, serialize, LIMITS, DEFAULTS, init };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
