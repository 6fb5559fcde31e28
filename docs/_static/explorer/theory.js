/* initbook signal-propagation explorer: the mean-field theory of initbook.theory, in plain JavaScript.
 *
 * The same maps as the Python library (initbook/theory/_meanfield.py, initbook/_activations.py): length
 * map, correlation map, chi1, the fixed points q* and c*, the critical line and the depth scales, with the same root-finding (bisection with the
 * same brackets and stopping rule), so that the browser shows the book's numbers. Gaussian expectations are
 *   - closed forms for linear, ReLU, leaky ReLU and erf (the same formulas as the Python library);
 *   - for tanh, GELU and SELU in one dimension, composite Gauss-Legendre quadrature on [-12, 0] and [0, 12]
 *     (panels that shrink geometrically (by 2) towards the kink at 0 and scale with 1/sqrt(q)), nodes computed at
 *     load time by Newton's method on the Legendre polynomial;
 *   - in two dimensions, E[phi(u1) phi(u2)] = E_z1[phi(sqrt(q) z1) G(sqrt(q) c z1)] with
 *     G(x) = E_z2[phi(x + sigma z2)], sigma = sqrt(q (1 - c^2)): G in closed form for GELU and SELU (so the
 *     kinks of SELU cost no accuracy), and for tanh a tensor-product midpoint rule like initbook.theory's.
 * Also a finite-width Monte-Carlo sampler (seeded) that draws the exact distribution of a random MLP's
 * layer outputs without forming the weight matrices (initbook.stats.mean_field_network(method="gram")).
 * No dependencies. Exposed as window.InitbookTheory.
 */
(function (root) {
  "use strict";

  const SQRT2 = Math.SQRT2;
  const SQRT_PI = Math.sqrt(Math.PI);
  const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
  // The rules stop at |z| = 10, where the normal density is below 1e-22 (initbook.theory goes to 12).
  const Z_MAX = 10.0;
  const MAX_NODES_2D = 1200; // as initbook._activations._MAX_NODES_2D
  const LEAKY_SLOPE = 0.01; // PyTorch's default negative slope
  // SELU's constants, from Klambauer et al. (2017) as in torch.nn.SELU
  const SELU_ALPHA = 1.6732632423543772848170429916717;
  const SELU_LAMBDA = 1.0507009873554804934193349852946;

  // ---------------------------------------------------------------------------------------------------
  // Special functions: erf, erfc, erfcx (scaled), the normal cdf
  // ---------------------------------------------------------------------------------------------------

  /* erf(x) for small |x| by the series 2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1} / (2n+1)!! (positive terms). */
  function erfSeries(x) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 0; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 3);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return (2 / SQRT_PI) * Math.exp(-x2) * sum;
  }

  /* erfcx(x) = e^{x^2} erfc(x) for x >= 0 by Weideman's rational series ("Computation of the complex error
     function", SIAM J. Numer. Anal. 1994): erfcx(x) = 2 p(Z)/(L + x)^2 + 1/(sqrt(pi) (L + x)) with
     Z = (L - x)/(L + x), L = sqrt(N/sqrt(2)), and p a polynomial of degree N - 1 whose coefficients are a
     discrete Fourier transform, computed here at load time. N = 40 gives a relative error below 1e-15 on
     [0, inf) (checked against scipy.special.erfcx by the browser test). */
  const WEIDEMAN = (function () {
    const N = 40;
    const M = 2 * N;
    const L = Math.sqrt(N / Math.SQRT2);
    // f on k = -M+1..M-1 with a leading 0, then fftshift: g[i] = f[(i + M) mod 2M]
    const f = new Float64Array(2 * M);
    for (let k = -M + 1; k <= M - 1; k++) {
      const t = L * Math.tan((k * Math.PI) / M / 2);
      f[k + M] = Math.exp(-t * t) * (L * L + t * t);
    }
    const g = new Float64Array(2 * M);
    for (let i = 0; i < 2 * M; i++) g[i] = f[(i + M) % (2 * M)];
    const b = new Float64Array(N);
    for (let n = 0; n < N; n++) {
      let re = 0;
      for (let i = 0; i < 2 * M; i++) re += g[i] * Math.cos((2 * Math.PI * i * (n + 1)) / (2 * M));
      b[n] = re / (2 * M);
    }
    return { L, b };
  })();

  /* e^{x^2} erfc(x) for x >= 0. */
  function erfcx(x) {
    const { L, b } = WEIDEMAN;
    const d = L + x;
    const Z = (L - x) / d;
    let p = 0;
    for (let n = b.length - 1; n >= 0; n--) p = p * Z + b[n];
    return (2 * p) / (d * d) + 1 / (SQRT_PI * d);
  }

  function erfc(x) {
    if (Number.isNaN(x)) return NaN;
    if (x >= 0) return x > 27 ? 0 : erfcx(x) * Math.exp(-x * x);
    return x < -6 ? 2 : 2 - erfcx(-x) * Math.exp(-x * x);
  }

  function erf(x) {
    if (Number.isNaN(x)) return NaN;
    if (Math.abs(x) < 0.5) return x < 0 ? -erfSeries(-x) : erfSeries(x);
    return x > 0 ? 1 - erfc(x) : erfc(-x) - 1;
  }

  function normCdf(x) {
    return 0.5 * erfc(-x / SQRT2);
  }

  function normPdf(x) {
    return INV_SQRT_2PI * Math.exp(-0.5 * x * x);
  }

  /* E[e^y 1(y <= 0)] for y ~ N(x, s^2), s > 0: e^{x + s^2/2} Phi(-(x + s^2)/s), without overflow. */
  function expBelowZero(x, s) {
    const t = (x + s * s) / s;
    if (t <= 0) return Math.exp(x + 0.5 * s * s) * normCdf(-t);
    return 0.5 * erfcx(t / SQRT2) * Math.exp((-x * x) / (2 * s * s));
  }

  // ---------------------------------------------------------------------------------------------------
  // Quadrature
  // ---------------------------------------------------------------------------------------------------

  /* n-point Gauss-Legendre nodes and weights on [-1, 1] by Newton's method on P_n. */
  function gaussLegendre(n) {
    const x = new Float64Array(n);
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
      let dp = 0;
      for (let it = 0; it < 100; it++) {
        let p0 = 1;
        let p1 = z;
        for (let k = 2; k <= n; k++) {
          const p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = (n * (z * p1 - p0)) / (z * z - 1);
        const dz = p1 / dp;
        z -= dz;
        if (Math.abs(dz) < 1e-16) break;
      }
      x[i] = z;
      w[i] = 2 / ((1 - z * z) * dp * dp);
    }
    return { x, w };
  }

  const GL = gaussLegendre(12);

  /* Panel boundaries on [0, Z_MAX]: geometric from `start` up to 1 (resolving the scale 1/sqrt(q) on which
     phi(sqrt(q) z) changes near the kink at 0), then unit steps (the Gaussian weight). */
  function panels(start) {
    const b = [0];
    let t = Math.max(start, 1e-300);
    while (t < 1) {
      b.push(t);
      t *= 2;
    }
    for (let u = 1; u <= Z_MAX + 1e-12; u += 1) b.push(u);
    return b;
  }

  const panelCache = new Map();

  /* Nodes z > 0 and weights (including the normal density) of the composite rule on [0, Z_MAX]; by symmetry
     the same rule with -z covers [-Z_MAX, 0]. E[f(z)] ~ sum_i w_i (f(z_i) + f(-z_i)). */
  function halfLineRule(start) {
    const key = start;
    let rule = panelCache.get(key);
    if (rule) return rule;
    const b = panels(start);
    const n = (b.length - 1) * GL.x.length;
    const z = new Float64Array(n);
    const w = new Float64Array(n);
    let k = 0;
    for (let p = 0; p + 1 < b.length; p++) {
      const mid = 0.5 * (b[p] + b[p + 1]);
      const half = 0.5 * (b[p + 1] - b[p]);
      for (let i = 0; i < GL.x.length; i++) {
        z[k] = mid + half * GL.x[i];
        w[k] = half * GL.w[i] * normPdf(z[k]);
        k++;
      }
    }
    // normalize as initbook.theory does (weights / their sum), so that E[1] = 1 exactly: 2 sum w = 1
    let total = 0;
    for (let i = 0; i < n; i++) total += 2 * w[i];
    for (let i = 0; i < n; i++) w[i] /= total;
    rule = { z, w };
    if (panelCache.size > 64) panelCache.clear();
    panelCache.set(key, rule);
    return rule;
  }

  /* The scale below which phi(sqrt(q) z) can change: a power of two, so rules are shared between q's. */
  function startScale(q, extra) {
    let s = 0.25 / Math.sqrt(Math.max(q, 1));
    if (extra !== undefined && extra > 0) s = Math.min(s, 0.25 * extra);
    return Math.pow(2, Math.floor(Math.log2(s)));
  }

  /* E[f(sqrt(q) z)], z ~ N(0, 1). */
  function expect1(f, q) {
    const r = halfLineRule(startScale(q));
    const sq = Math.sqrt(q);
    let sum = 0;
    for (let i = 0; i < r.z.length; i++) sum += r.w[i] * (f(sq * r.z[i]) + f(-sq * r.z[i]));
    return sum;
  }

  /* E[f(u1) g(u2)] with u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2), given the smoothed
     G(x, s) = E[g(x + s z)]: a one-dimensional integral over z1. */
  function expect2Smoothed(f, G, g, q, c) {
    const sc = Math.sqrt(Math.max(0, 1 - c * c));
    const sq = Math.sqrt(q);
    const s = sq * sc;
    const r = halfLineRule(startScale(q, sc));
    let sum = 0;
    for (let i = 0; i < r.z.length; i++) {
      const u = sq * r.z[i];
      const x = c * u;
      const gp = s > 0 ? G(x, s) : g(x);
      const gm = s > 0 ? G(-x, s) : g(-x);
      sum += r.w[i] * (f(u) * gp + f(-u) * gm);
    }
    return sum;
  }

  /* A tensor-product midpoint rule as in initbook._activations._Activation._e2, for tanh: step
     h = 0.3/sqrt(max(q, 1)) on [-10, 10]. tanh(sqrt(q) z) has its poles at distance pi/(2 sqrt(q)) from the
     real axis, so the rule's error falls like exp(-2 pi (pi / (2 sqrt q)) / h) = exp(-pi^2 / 0.3) ~ 5e-15
     times a constant that grows near the poles (Trefethen and Weideman, SIAM Review 2014; about 1e-11 for
     the double poles of tanh'^2 at c = 0.99), with 0.69 times the library's nodes per dimension (its step is
     0.25/sqrt q on [-12, 12]).
     tanh and tanh' are odd resp. even: the pairs (z1, z2) and (-z1, -z2) give the same product, so half the
     rows. */
  const gridCache = new Map();
  function midpointGrid(q) {
    const m = Math.min(Math.ceil((Z_MAX * Math.sqrt(Math.max(q, 1.0))) / 0.3), Math.floor(MAX_NODES_2D / 2));
    let g = gridCache.get(m);
    if (g) return g;
    const h = Z_MAX / m;
    const z = new Float64Array(2 * m);
    const w = new Float64Array(2 * m);
    let total = 0;
    for (let k = 0; k < 2 * m; k++) {
      z[k] = (k - m + 0.5) * h;
      w[k] = Math.exp(-0.5 * z[k] * z[k]);
      total += w[k];
    }
    for (let k = 0; k < 2 * m; k++) w[k] /= total;
    g = { m, z, w };
    gridCache.set(m, g);
    return g;
  }

  function expect2Grid(f, q, c) {
    const { m, z, w } = midpointGrid(q);
    const sq = Math.sqrt(q);
    const sc = Math.sqrt(Math.max(0, 1 - c * c));
    const n = 2 * m;
    let sum = 0;
    for (let i = m; i < n; i++) {
      const f1 = f(sq * z[i]);
      if (f1 === 0) continue;
      const a = sq * c * z[i];
      const b = sq * sc;
      let row = 0;
      for (let j = 0; j < n; j++) row += w[j] * f(a + b * z[j]);
      sum += w[i] * f1 * row;
    }
    return 2 * sum;
  }

  // ---------------------------------------------------------------------------------------------------
  // Activations
  // ---------------------------------------------------------------------------------------------------

  function reluKernel(q, c) {
    const theta = Math.acos(c);
    return (q / (2 * Math.PI)) * (Math.sqrt(Math.max(0, 1 - c * c)) + (Math.PI - theta) * c);
  }

  function leaky(a) {
    return {
      meanSq: (q) => ((1 + a * a) / 2) * q,
      dmeanSq: () => (1 + a * a) / 2,
      cross: (q, c) => (1 + a * a) * reluKernel(q, c) - 2 * a * reluKernel(q, -c),
      dcross: (q, c) => {
        const theta = Math.acos(c);
        return ((1 + a * a) * (Math.PI - theta) + 2 * a * theta) / (2 * Math.PI);
      },
      homogeneous: true,
    };
  }

  const tanhD = (x) => {
    const t = Math.tanh(x);
    return 1 - t * t;
  };
  const sq = (f) => (x) => {
    const v = f(x);
    return v * v;
  };

  const selu = (x) => (x > 0 ? SELU_LAMBDA * x : SELU_LAMBDA * SELU_ALPHA * Math.expm1(x));
  const seluD = (x) => (x > 0 ? SELU_LAMBDA : SELU_LAMBDA * SELU_ALPHA * Math.exp(x));
  // E[selu(x + s z)] and E[selu'(x + s z)], s > 0
  const seluG = (x, s) =>
    SELU_LAMBDA * (x * normCdf(x / s) + s * normPdf(x / s)) +
    SELU_LAMBDA * SELU_ALPHA * (expBelowZero(x, s) - normCdf(-x / s));
  const seluDG = (x, s) => SELU_LAMBDA * normCdf(x / s) + SELU_LAMBDA * SELU_ALPHA * expBelowZero(x, s);

  const gelu = (x) => x * normCdf(x);
  const geluD = (x) => normCdf(x) + x * normPdf(x);
  // E[gelu(y)] and E[gelu'(y)] for y ~ N(x, s^2): Phi smoothed by a Gaussian is Phi(x / sqrt(1 + s^2))
  const geluG = (x, s) => {
    const r = Math.sqrt(1 + s * s);
    return x * normCdf(x / r) + ((s * s) / r) * normPdf(x / r);
  };
  const geluDG = (x, s) => {
    const r = Math.sqrt(1 + s * s);
    return normCdf(x / r) + (x / (r * r * r)) * normPdf(x / r);
  };

  /* c = +-1 by the one-dimensional rule, so that the correlation map is exactly 1 at c = 1 (and -1 at
     c = -1 for odd phi), as the bisection for c* needs. */
  function smoothActivation(f, df, G, DG) {
    const two = (g, GG, q, c) => {
      if (c >= 1) return expect1(sq(g), q);
      if (c <= -1) return expect1((x) => g(x) * g(-x), q);
      return GG ? expect2Smoothed(g, GG, g, q, c) : expect2Grid(g, q, c);
    };
    return {
      f,
      df,
      // at q = 0 every node sits at 0: phi(0)^2 and phi'(0)^2 exactly (chi1 = sigma_w^2 for tanh at q* = 0)
      meanSq: (q) => (q === 0 ? f(0) ** 2 : expect1(sq(f), q)),
      dmeanSq: (q) => (q === 0 ? df(0) ** 2 : expect1(sq(df), q)),
      cross: (q, c) => two(f, G, q, c),
      dcross: (q, c) => two(df, DG, q, c),
      homogeneous: false,
    };
  }

  const ACTIVATIONS = {
    linear: Object.assign(
      { f: (x) => x, df: () => 1 },
      {
        meanSq: (q) => q,
        dmeanSq: () => 1,
        cross: (q, c) => c * q,
        dcross: () => 1,
        homogeneous: true,
      },
    ),
    relu: Object.assign({ f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : 0) }, leaky(0)),
    leaky_relu: Object.assign(
      { f: (x) => (x > 0 ? x : LEAKY_SLOPE * x), df: (x) => (x > 0 ? 1 : LEAKY_SLOPE) },
      leaky(LEAKY_SLOPE),
    ),
    tanh: smoothActivation(Math.tanh, tanhD, null, null),
    selu: smoothActivation(selu, seluD, seluG, seluDG),
    gelu: smoothActivation(gelu, geluD, geluG, geluDG),
    erf: {
      f: erf,
      df: (x) => (2 / SQRT_PI) * Math.exp(-x * x),
      meanSq: (q) => (2 / Math.PI) * Math.asin((2 * q) / (1 + 2 * q)),
      dmeanSq: (q) => 4 / Math.PI / Math.sqrt(1 + 4 * q),
      cross: (q, c) => (2 / Math.PI) * Math.asin((2 * c * q) / (1 + 2 * q)),
      dcross: (q, c) => 4 / Math.PI / Math.sqrt((1 + 2 * q) ** 2 - (2 * c * q) ** 2),
      homogeneous: false,
    },
  };
  const NAMES = Object.keys(ACTIVATIONS);

  function act(name) {
    const a = ACTIVATIONS[name];
    if (!a) throw new Error(`unknown activation ${JSON.stringify(name)}: use one of ${NAMES.join(", ")}`);
    return a;
  }

  // ---------------------------------------------------------------------------------------------------
  // Mean-field maps (initbook.theory: length_map, correlation_map, fixed_point_q, chi1, fixed_point_c,
  // critical_line, correlation_depth_scale, gradient_depth_scale, iterate_maps)
  // ---------------------------------------------------------------------------------------------------

  const BISECT_ITERS = 200;

  /* initbook.theory._meanfield._bisect, step for step. */
  function bisect(f, lo, hi, rtol = 1e-13) {
    const loSign = f(lo) >= 0;
    for (let i = 0; i < BISECT_ITERS; i++) {
      const mid = 0.5 * (lo + hi);
      if (hi - lo <= rtol * Math.max(1.0, Math.abs(mid)) || mid === lo || mid === hi) break;
      if (f(mid) >= 0 === loSign) lo = mid;
      else hi = mid;
    }
    return 0.5 * (lo + hi);
  }

  function lengthMap(q, sw2, sb2, name) {
    return sw2 * act(name).meanSq(q) + sb2;
  }

  function correlationMap(c, q, sw2, sb2, name) {
    const a = act(name);
    const newQ = sw2 * a.meanSq(q) + sb2;
    if (!(newQ > 0)) return NaN; // all pre-activations are 0: the correlation is undefined
    return (sw2 * a.cross(q, c) + sb2) / newQ;
  }

  function fixedPointQ(sw2, sb2, name, q0 = 1.0) {
    const a = act(name);
    if (name === "linear" || name === "relu") {
      const s = sw2 * a.dmeanSq(0);
      if (s < 1) return sb2 / (1 - s);
      if (sb2 === 0 && (s === 1 || q0 === 0)) return q0;
      return Infinity;
    }
    const g = (q) => sw2 * a.meanSq(q) + sb2 - q;
    const g0 = g(q0);
    if (g0 === 0) return q0;
    if (g0 < 0) {
      const q = bisect(g, 0, q0);
      return q <= 1e-12 && g(0) === 0 ? 0 : q;
    }
    let lo = q0;
    let hi = 2 * Math.max(q0, 1);
    while (g(hi) >= 0) {
      lo = hi;
      hi = 2 * hi;
      if (hi > 1e12) return Infinity;
    }
    return bisect(g, lo, hi);
  }

  /* sigma_w^2 E[phi'(sqrt(q) z)^2] at q (default: the fixed point q*); NaN where q* is infinite. */
  function chi1(sw2, sb2, name, q) {
    const a = act(name);
    if (a.homogeneous) return sw2 * a.dmeanSq(1); // E[phi'^2] does not depend on q
    if (q === undefined || q === null) q = fixedPointQ(sw2, sb2, name);
    if (!Number.isFinite(q)) return NaN;
    return sw2 * a.dmeanSq(q);
  }

  function fixedPointC(sw2, sb2, name) {
    const q = fixedPointQ(sw2, sb2, name);
    if (!Number.isFinite(q) || chi1(sw2, sb2, name, q) <= 1) return { q, c: 1 };
    const f = (c) => correlationMap(c, q, sw2, sb2, name) - c;
    for (let k = 1; k <= 40; k++) {
      const hi = 1 - Math.pow(2, -k);
      const fhi = f(hi);
      if (fhi < 0) return { q, c: rootInBracket(f, -1, hi, fhi) };
    }
    return { q, c: 1 };
  }

  /* The root of f in [lo, hi] that initbook.theory._meanfield._bisect finds (f(lo) >= 0 > f(hi)), in fewer evaluations
     (each is a two-dimensional quadrature): bisection steps until f is strictly positive at the lower end
     (at c = -1, itself a fixed point for odd phi without bias, f is 0), then the Illinois variant of
     regula falsi, which converges superlinearly, down to the same bracket width of 1e-13. */
  function rootInBracket(f, lo, hi, fhi) {
    let flo = f(lo);
    for (let i = 0; i < 60 && !(flo > 0); i++) {
      const mid = 0.5 * (lo + hi);
      const fm = f(mid);
      if (fm >= 0) {
        lo = mid;
        flo = fm;
      } else {
        hi = mid;
        fhi = fm;
      }
      if (hi - lo <= 1e-13 * Math.max(1, Math.abs(mid))) return 0.5 * (lo + hi);
    }
    let side = 0;
    for (let i = 0; i < 200; i++) {
      if (hi - lo <= 1e-13 * Math.max(1, Math.abs(lo))) break;
      let x = (lo * fhi - hi * flo) / (fhi - flo);
      if (!(x > lo && x < hi)) x = 0.5 * (lo + hi);
      const fx = f(x);
      if (fx === 0) return x;
      if (fx > 0) {
        lo = x;
        flo = fx;
        if (side === 1) fhi /= 2;
        side = 1;
      } else {
        hi = x;
        fhi = fx;
        if (side === -1) flo /= 2;
        side = -1;
      }
    }
    return 0.5 * (lo + hi);
  }

  function criticalLine(sb2s, name) {
    const a = act(name);
    if (name === "linear" || name === "relu" || name === "leaky_relu") return sb2s.map(() => 1 / a.dmeanSq(1));
    const biasOnLine = (q) => q - a.meanSq(q) / a.dmeanSq(q);
    return sb2s.map((target) => {
      let q;
      if (target === 0) q = 0;
      else {
        let hi = 1;
        while (biasOnLine(hi) < target) {
          hi *= 2;
          if (hi > 1e4) return NaN; // beyond initbook.theory's quadrature limit
        }
        q = bisect((x) => biasOnLine(x) - target, 0, hi);
      }
      return 1 / a.dmeanSq(q);
    });
  }

  /* The correlation depth scale xi_c with the reason when there is no finite one (then the value is
     Infinity, as initbook.theory.correlation_depth_scale returns):
     {value, kind}: kind "finite", "critical" (chi_c = 1: infinite), "frozen" (q* = 0: the pre-activations
     shrink to 0, where a smooth phi is linear, and c stops changing: no approach to a fixed point at all),
     "power" (phi positively homogeneous and sigma_b^2 = 0, or q* infinite: C does not depend on q and its
     slope at c = 1 is 1, so c^l approaches 1 as a power of l), "identity" (linear, sigma_b^2 = 0: c^l = c^0). */
  function correlationDepthScale(sw2, sb2, name, fixed) {
    const a = act(name);
    const { q, c } = fixed || fixedPointC(sw2, sb2, name);
    if (name === "linear" && sb2 === 0) return { value: Infinity, kind: "identity" };
    // linear with a bias and q growing without bound: geometrically (sigma_w^2 > 1), C(c) -> c and the
    // correlations freeze; linearly (sigma_w^2 = 1), 1 - c ~ 1/l, a power law
    if (name === "linear" && !Number.isFinite(q)) {
      return { value: Infinity, kind: sw2 === 1 ? "power" : "unbounded" };
    }
    if (a.homogeneous && (sb2 === 0 || !Number.isFinite(q))) return { value: Infinity, kind: "power" };
    if (!Number.isFinite(q)) return { value: Infinity, kind: "unbounded" };
    if (q === 0) return { value: Infinity, kind: "frozen" };
    const chiC = c === 1 ? chi1(sw2, sb2, name, q) : sw2 * a.dcross(q, c);
    if (chiC >= 1) return { value: Infinity, kind: "critical" };
    if (chiC <= 0) return { value: 0, kind: "finite" };
    return { value: -1 / Math.log(chiC), kind: "finite" };
  }

  /* xi_grad = -1/ln chi1: positive when gradients vanish, negative when they explode. */
  function gradientDepthScale(sw2, sb2, name) {
    const chi = chi1(sw2, sb2, name);
    if (Number.isNaN(chi)) return { value: NaN, kind: "unbounded" };
    if (chi === 1) return { value: Infinity, kind: "critical" };
    if (chi === 0) return { value: 0, kind: "finite" };
    return { value: -1 / Math.log(chi), kind: "finite" };
  }

  /* initbook.theory.iterate_maps plus the Jacobian gain prod_{k<l} chi(q^k): arrays of length depth + 1. */
  function iterateMaps(q0, c0, sw2, sb2, depth, name) {
    const a = act(name);
    const qs = new Float64Array(depth + 1);
    const cs = new Float64Array(depth + 1);
    const gain = new Float64Array(depth + 1);
    let q = q0;
    let c = c0;
    let g = 1;
    qs[0] = q;
    cs[0] = c;
    gain[0] = 1;
    let l = 1;
    for (; l <= depth; l++) {
      const newQ = sw2 * a.meanSq(q) + sb2;
      if (Number.isNaN(c) || !(newQ > 0) || !Number.isFinite(newQ)) c = NaN;
      else c = Math.min(1, Math.max(-1, (sw2 * a.cross(q, c) + sb2) / newQ));
      g *= sw2 * a.dmeanSq(q);
      // both maps at a fixed point to rounding error: the remaining layers are constant
      const same = Math.abs(newQ - q) <= 1e-15 * q && Math.abs(c - cs[l - 1]) <= 1e-15;
      q = newQ;
      qs[l] = q;
      cs[l] = c;
      gain[l] = g;
      if (same) break;
    }
    if (l < depth) {
      const chi = sw2 * a.dmeanSq(q);
      for (let k = l + 1; k <= depth; k++) {
        qs[k] = q;
        cs[k] = c;
        g *= chi;
        gain[k] = g;
      }
    }
    return { q: qs, c: cs, gain };
  }

  // ---------------------------------------------------------------------------------------------------
  // Finite width: Monte Carlo
  // ---------------------------------------------------------------------------------------------------

  /* mulberry32: a small seeded 32-bit generator; normals by Box-Muller. */
  function rng(seed) {
    let s = seed >>> 0;
    let spare = null;
    const uniform = () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const normal = () => {
      if (spare !== null) {
        const v = spare;
        spare = null;
        return v;
      }
      let u = 0;
      while (u === 0) u = uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      const th = 2 * Math.PI * uniform();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    };
    return { uniform, normal };
  }

  /* One random MLP of width n and the given depth, on two inputs with pre-activation variance q0 and
     correlation c0 and a tangent vector u (a Jacobian-vector product: E||u^l||^2 / ||u^{l-1}||^2 = chi(q^{l-1}),
     the same mean squared singular value as the backpropagated gradient). Each layer draws W X for the n x 3
     matrix X = [phi(h_a), phi(h_b), phi'(h_a) u] exactly as (sigma_w / sqrt(n)) Z R with R^T R = X^T X
     (Gram-Schmidt), O(n) work instead of O(n^2); the distribution is that of a network with fresh Gaussian
     weights in every layer. Returns per-layer q (input a), c and the gain ||u^l||^2 / ||u^0||^2. */
  function sampleNetwork(sw2, sb2, width, depth, name, q0, c0, seed) {
    const a = act(name);
    const { normal } = rng(seed);
    const n = width;
    let ha = new Float64Array(n);
    let hb = new Float64Array(n);
    let u = new Float64Array(n);
    const sc0 = Math.sqrt(Math.max(0, 1 - c0 * c0));
    const sq0 = Math.sqrt(q0);
    let u0 = 0;
    for (let i = 0; i < n; i++) {
      const z1 = normal();
      const z2 = normal();
      ha[i] = sq0 * z1;
      hb[i] = sq0 * (c0 * z1 + sc0 * z2);
      u[i] = normal();
      u0 += u[i] * u[i];
    }
    const out = { q: new Float64Array(depth + 1), c: new Float64Array(depth + 1), gain: new Float64Array(depth + 1) };
    const stats = (l, un) => {
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let i = 0; i < n; i++) {
        saa += ha[i] * ha[i];
        sbb += hb[i] * hb[i];
        sab += ha[i] * hb[i];
      }
      out.q[l] = saa / n;
      out.c[l] = saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
      out.gain[l] = un / u0;
    };
    stats(0, u0);
    const x = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    const qv = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    const scale = Math.sqrt(sw2 / n);
    const sb = Math.sqrt(sb2);
    for (let l = 1; l <= depth; l++) {
      for (let i = 0; i < n; i++) {
        x[0][i] = a.f(ha[i]);
        x[1][i] = a.f(hb[i]);
        x[2][i] = a.df(ha[i]) * u[i];
      }
      // modified Gram-Schmidt: X = Q R, R upper triangular (a dependent column gets a zero diagonal)
      const R = [
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
      ];
      for (let k = 0; k < 3; k++) {
        const v = qv[k];
        v.set(x[k]);
        let norm0 = 0;
        for (let i = 0; i < n; i++) norm0 += v[i] * v[i];
        for (let j = 0; j < k; j++) {
          if (R[j][j] === 0) continue;
          let d = 0;
          for (let i = 0; i < n; i++) d += qv[j][i] * v[i];
          R[j][k] = d;
          for (let i = 0; i < n; i++) v[i] -= d * qv[j][i];
        }
        let norm = 0;
        for (let i = 0; i < n; i++) norm += v[i] * v[i];
        norm = Math.sqrt(norm);
        if (norm > 1e-13 * Math.sqrt(norm0) && norm > 0) {
          R[k][k] = norm;
          for (let i = 0; i < n; i++) v[i] /= norm;
        } else {
          R[k][k] = 0;
        }
      }
      let un = 0;
      for (let i = 0; i < n; i++) {
        const z0 = normal();
        const z1 = normal();
        const z2 = normal();
        const bias = sb * normal();
        ha[i] = scale * z0 * R[0][0] + bias;
        hb[i] = scale * (z0 * R[0][1] + z1 * R[1][1]) + bias;
        u[i] = scale * (z0 * R[0][2] + z1 * R[1][2] + z2 * R[2][2]);
        un += u[i] * u[i];
      }
      stats(l, un);
    }
    return out;
  }

  root.InitbookTheory = {
    NAMES,
    LEAKY_SLOPE,
    SELU_ALPHA,
    SELU_LAMBDA,
    erf,
    erfc,
    erfcx,
    normCdf,
    gaussLegendre,
    lengthMap,
    correlationMap,
    fixedPointQ,
    fixedPointC,
    chi1,
    criticalLine,
    correlationDepthScale,
    gradientDepthScale,
    iterateMaps,
    sampleNetwork,
    meanSq: (q, name) => act(name).meanSq(q),
    dmeanSq: (q, name) => act(name).dmeanSq(q),
    cross: (q, c, name) => act(name).cross(q, c),
    dcross: (q, c, name) => act(name).dcross(q, c),
    activation: (x, name) => act(name).f(x),
  };
})(typeof window !== "undefined" ? window : globalThis);
