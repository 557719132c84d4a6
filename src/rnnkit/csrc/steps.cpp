// The pointwise half of one time step of each cell, forward and backward, fused into one pass;
// minGRU's and minLSTM's whole (linear) recurrences over all steps; word2vec's sparse SGD step;
// and dropout masks.
//
// Shapes: B batch, H hidden size. Every tensor is a contiguous (B, ·) row block of float or double,
// except `keep`, which may also broadcast from (B, 1) or (1, 1). The GEMMs stay outside, in
// rnnkit/bptt.py, which calls these between them: the equations are those of rnnkit/cells.py, and
// tests/test_layers.py checks the results against autograd through the readable loop.
//
// Why: torch runs each pointwise op (sigmoid, add, mul, …) as its own call, ~3–15 µs each from
// Python at B = 32, H = 256; a GRU step has ~8 of them forward and ~12 backward beside one GEMM of
// ~90 µs. One pass over the row block costs ~5–10 µs.
//
// Built at first use (rnnkit/kernels.py) with -O3 -march=native -ffast-math, which lets gcc call
// glibc's vector tanh; σ(x) is written as (1 + tanh(x/2)) / 2, which never overflows. The loops are
// branch-free so that gcc vectorises them: an absent input (no peepholes, no zoneout, no layer norm)
// is read as a row of zeros or ones, which makes the same arithmetic exact identities, and those
// rows are kept per thread rather than allocated per call (at B = 1 allocations cost more than
// the arithmetic).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <optional>
#include <vector>

namespace {

template <typename T> inline T sigm(T x) { return T(0.5) * std::tanh(T(0.5) * x) + T(0.5); }

// torch.lerp(a, b, k) = a + k (b - a), exact at k = 0 and k = 1 (a frozen state stays bit-identical)
template <typename T> inline T lerp(T a, T b, T k) {
  return k == T(0) ? a : k == T(1) ? b : a + k * (b - a);
}

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "rnnkit steps: ", name,
              " must be a contiguous CPU tensor");
}

// Rows of 0s and of 1s that live as long as the thread: what an absent input reads. A kernel first
// calls constant_rows(n) with the most it will read, so that no later call moves the rows.
template <typename T> std::vector<T>* constant_rows(int64_t n) {
  thread_local std::vector<T> rows[2];
  for (int fill = 0; fill < 2; ++fill)
    if (static_cast<int64_t>(rows[fill].size()) < n) rows[fill].assign(n, T(fill));
  return rows;
}

template <typename T> const T* constant_row(int64_t n, int fill) {
  std::vector<T>* rows = constant_rows<T>(0);
  TORCH_CHECK(static_cast<int64_t>(rows[fill].size()) >= n, "rnnkit steps: constant rows unsized");
  return rows[fill].data();
}

// n values of scratch space per thread (slot: which of a kernel's scratch rows).
template <typename T> T* scratch_row(int64_t n, int slot) {
  thread_local std::vector<T> rows[2];
  std::vector<T>& v = rows[slot];
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  return v.data();
}

// An optional input of n contiguous values, or the constant row `fill` when absent.
template <typename T>
const T* data_or(const std::optional<at::Tensor>& t, int64_t n, int fill, const char* name) {
  if (!t || !t->defined()) return constant_row<T>(n, fill);
  check(*t, name);
  TORCH_CHECK(t->numel() == n, "rnnkit steps: ", name, " has ", t->numel(), " values, expected ", n);
  return t->data_ptr<T>();
}

// keep_t as a contiguous (B, H) block: broadcast from (B, 1) or (1, 1) into `hold`, or zeros.
template <typename T>
const T* keep_rows(const std::optional<at::Tensor>& keep, int64_t B, int64_t H, at::Tensor& hold) {
  if (!keep || !keep->defined()) return constant_row<T>(B * H, 0);
  hold = keep->numel() == B * H ? keep->contiguous() : keep->expand({B, H}).contiguous();
  return hold.data_ptr<T>();
}

// Calls body(b, j, i = b·H + j) over a (B, H) block, vectorised along H.
template <typename F> inline void for_each(int64_t B, int64_t H, F body) {
  for (int64_t b = 0; b < B; ++b) {
    _Pragma("omp simd")
    for (int64_t j = 0; j < H; ++j) body(b, j, b * H + j);
  }
}

// ---- Elman RNN ---------------------------------------------------------------------------------
// a (B, H) = W_hh h + b_hh, x (B, H) = x_proj: act_out = act(x + a); h_out = lerp(act_out, h, keep).
void rnn_forward(const at::Tensor& a, const at::Tensor& x, const at::Tensor& h,
                 const std::optional<at::Tensor>& keep, at::Tensor act_out, at::Tensor h_out,
                 bool relu) {
  check(a, "a"), check(x, "x"), check(h, "h"), check(act_out, "act_out"), check(h_out, "h_out");
  const int64_t B = h.size(0), H = h.size(1);
  at::Tensor hold;
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "rnn_forward", [&] {
    using T = scalar_t;
    constant_rows<T>(std::max<int64_t>(B, 4) * H);   // B·H or 4H values at most
    const T *kp = keep_rows<T>(keep, B, H, hold), *ap = a.data_ptr<T>(), *xp = x.data_ptr<T>();
    const T* hp = h.data_ptr<T>();
    T *y = act_out.data_ptr<T>(), *ho = h_out.data_ptr<T>();
    auto step = [&](auto act) {
      for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
        const T v = act(xp[i] + ap[i]);
        y[i] = v;
        ho[i] = lerp(v, hp[i], kp[i]);
      });
    };
    if (relu) step([](T v) { return v > T(0) ? v : T(0); });
    else step([](T v) { return std::tanh(v); });
  });
}

// d = dh + g_out; d_new = d (1 - keep); d_pre = d_new act'(new); carry = d keep.
void rnn_backward(const at::Tensor& dh, const std::optional<at::Tensor>& g_out,
                  const std::optional<at::Tensor>& keep, const at::Tensor& act, bool relu,
                  at::Tensor d_pre, at::Tensor carry) {
  check(dh, "dh"), check(act, "new"), check(d_pre, "d_pre"), check(carry, "carry");
  const int64_t B = act.size(0), H = act.size(1);
  at::Tensor hold;
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "rnn_backward", [&] {
    using T = scalar_t;
    constant_rows<T>(std::max<int64_t>(B, 4) * H);   // B·H or 4H values at most
    const T *kp = keep_rows<T>(keep, B, H, hold), *g = data_or<T>(g_out, B * H, 0, "g_out");
    const T *d0 = dh.data_ptr<T>(), *y = act.data_ptr<T>();
    T *dp = d_pre.data_ptr<T>(), *c = carry.data_ptr<T>();
    auto step = [&](auto slope) {
      for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
        const T d = d0[i] + g[i];
        dp[i] = d * (T(1) - kp[i]) * slope(y[i]);
        c[i] = d * kp[i];
      });
    };
    if (relu) step([](T v) { return v > T(0) ? T(1) : T(0); });
    else step([](T v) { return T(1) - v * v; });
  });
}

// ---- GRU, reset_after (torch's form) --------------------------------------------------------------
// a (B, 3H) = W_hh h + b_hh (after layer norm), x (B, 3H) = x_proj:
// r, z = σ(x_rz + a_rz); n = tanh(x_n + r a_n); h' = n + z (h - n); h_out = lerp(h', h, keep).
void gru_forward(const at::Tensor& a, const at::Tensor& x, const at::Tensor& h,
                 const std::optional<at::Tensor>& keep, at::Tensor rz_out, at::Tensor n_out,
                 at::Tensor a_n_out, at::Tensor h_out) {
  check(a, "a"), check(x, "x"), check(h, "h"), check(rz_out, "rz"), check(n_out, "n");
  check(a_n_out, "a_n"), check(h_out, "h_out");
  const int64_t B = h.size(0), H = h.size(1);
  at::Tensor hold;
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gru_forward", [&] {
    using T = scalar_t;
    constant_rows<T>(std::max<int64_t>(B, 4) * H);   // B·H or 4H values at most
    const T *kp = keep_rows<T>(keep, B, H, hold), *ap = a.data_ptr<T>(), *xp = x.data_ptr<T>();
    const T* hp = h.data_ptr<T>();
    T *rz = rz_out.data_ptr<T>(), *n = n_out.data_ptr<T>(), *an = a_n_out.data_ptr<T>();
    T* ho = h_out.data_ptr<T>();
    for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
      const int64_t g3 = b * 3 * H + j, g2 = b * 2 * H + j;
      const T r = sigm(xp[g3] + ap[g3]);
      const T z = sigm(xp[g3 + H] + ap[g3 + H]);
      const T a_n = ap[g3 + 2 * H];
      const T nn = std::tanh(xp[g3 + 2 * H] + r * a_n);
      const T hn = nn + z * (hp[i] - nn);
      rz[g2] = r, rz[g2 + H] = z, n[i] = nn, an[i] = a_n;
      ho[i] = lerp(hn, hp[i], kp[i]);
    });
  });
}

// d = dh + g_out, d_new = d (1 - keep). Writes d_x (B, 3H) = d (r, z, n pre-activations),
// d_a (B, 3H) = d (a_r, a_z, a_n) and carry (B, H) = the gradient reaching h_{t-1} directly.
void gru_backward(const at::Tensor& dh, const std::optional<at::Tensor>& g_out,
                  const std::optional<at::Tensor>& keep, const at::Tensor& rz,
                  const at::Tensor& n, const at::Tensor& a_n, const at::Tensor& h_prev,
                  at::Tensor d_x, at::Tensor d_a, at::Tensor carry) {
  check(dh, "dh"), check(rz, "rz"), check(n, "n"), check(a_n, "a_n"), check(h_prev, "h_prev");
  check(d_x, "d_x"), check(d_a, "d_a"), check(carry, "carry");
  const int64_t B = n.size(0), H = n.size(1);
  at::Tensor hold;
  AT_DISPATCH_FLOATING_TYPES(n.scalar_type(), "gru_backward", [&] {
    using T = scalar_t;
    constant_rows<T>(std::max<int64_t>(B, 4) * H);   // B·H or 4H values at most
    const T *kp = keep_rows<T>(keep, B, H, hold), *g = data_or<T>(g_out, B * H, 0, "g_out");
    const T *d0 = dh.data_ptr<T>(), *rzp = rz.data_ptr<T>();
    const T *np = n.data_ptr<T>(), *anp = a_n.data_ptr<T>(), *hp = h_prev.data_ptr<T>();
    T *dx = d_x.data_ptr<T>(), *da = d_a.data_ptr<T>(), *c = carry.data_ptr<T>();
    for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
      const int64_t g3 = b * 3 * H + j, g2 = b * 2 * H + j;
      const T d = d0[i] + g[i];
      const T dn = d * (T(1) - kp[i]);
      const T r = rzp[g2], z = rzp[g2 + H], nn = np[i];
      const T dn_pre = dn * (T(1) - z) * (T(1) - nn * nn);
      const T dz_pre = dn * (hp[i] - nn) * z * (T(1) - z);
      const T dr_pre = dn_pre * anp[i] * r * (T(1) - r);
      dx[g3] = dr_pre, dx[g3 + H] = dz_pre, dx[g3 + 2 * H] = dn_pre;
      da[g3] = dr_pre, da[g3 + H] = dz_pre, da[g3 + 2 * H] = dn_pre * r;
      c[i] = d * kp[i] + dn * z;
    });
  });
}

// ---- LSTM (peepholes and layer norm optional) -----------------------------------------------------
// a (B, 4H) = W_hh h + b_hh, x (B, 4H) = x_proj, c (B, H) the old cell; pre = LN_hh(a) + x:
// i = σ(pre_i + w_ci c), f = σ(pre_f + w_cf c), g = tanh(pre_g), c' = f c + i g,
// o = σ(pre_o + w_co c'), h' = o tanh(LN_c(c')); h_out = lerp(h', h, keep_h), c_out = lerp(c', c, keep_c).
// An absent norm runs as the identity (mean 0, 1/std 1, weight 1, bias 0: exact); a present one
// normalises each row (over 4H for a, over H for c') as F.layer_norm does (eps 1e-5) and writes
// the row's mean and 1/std into its (B, 2) stats for the backward pass.

// mean and 1/std of v[0..n), the variance about the mean (biased), as F.layer_norm
template <typename T> inline void row_stats(const T* v, int64_t n, T& mean, T& rstd) {
  T sum = 0, sq = 0;
  _Pragma("omp simd reduction(+:sum)")
  for (int64_t j = 0; j < n; ++j) sum += v[j];
  mean = sum / T(n);
  _Pragma("omp simd reduction(+:sq)")
  for (int64_t j = 0; j < n; ++j) sq += (v[j] - mean) * (v[j] - mean);
  rstd = T(1) / std::sqrt(sq / T(n) + T(1e-5));
}

// the layer norm's backward to its input: dx = rstd (dy w - mean(dy w) - x̂ mean(dy w x̂))
template <typename T> inline void row_norm_backward(const T* dy, const T* v, T mean, T rstd,
                                                     const T* w, int64_t n, T* dx) {
  T s1 = 0, s2 = 0;
  _Pragma("omp simd reduction(+:s1, s2)")
  for (int64_t j = 0; j < n; ++j) {
    const T dw = dy[j] * w[j];
    s1 += dw, s2 += dw * (v[j] - mean) * rstd;
  }
  s1 /= T(n), s2 /= T(n);
  _Pragma("omp simd")
  for (int64_t j = 0; j < n; ++j) dx[j] = rstd * (dy[j] * w[j] - s1 - (v[j] - mean) * rstd * s2);
}

void lstm_forward(const at::Tensor& a, const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                  const std::optional<at::Tensor>& w_ci, const std::optional<at::Tensor>& w_cf,
                  const std::optional<at::Tensor>& w_co, const std::optional<at::Tensor>& ln_hh_w,
                  const std::optional<at::Tensor>& ln_hh_b, const std::optional<at::Tensor>& ln_c_w,
                  const std::optional<at::Tensor>& ln_c_b, const std::optional<at::Tensor>& keep_h,
                  const std::optional<at::Tensor>& keep_c, at::Tensor gates_out,
                  at::Tensor c_new_out, at::Tensor tanh_c_out,
                  const std::optional<at::Tensor>& stats_hh, const std::optional<at::Tensor>& stats_c,
                  at::Tensor h_out, at::Tensor c_out) {
  check(a, "a"), check(x, "x"), check(h, "h"), check(c, "c"), check(gates_out, "gates");
  check(c_new_out, "c_new"), check(tanh_c_out, "tanh_c"), check(h_out, "h_out"), check(c_out, "c_out");
  const int64_t B = c.size(0), H = c.size(1);
  const bool norm_hh = ln_hh_w && ln_hh_w->defined(), norm_c = ln_c_w && ln_c_w->defined();
  TORCH_CHECK((!norm_hh || stats_hh) && (!norm_c || stats_c),
              "rnnkit steps: lstm_forward with a layer norm needs its (B, 2) stats output");
  at::Tensor hold_h, hold_c;
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "lstm_forward", [&] {
    using T = scalar_t;
    constant_rows<T>(std::max<int64_t>(B, 4) * H);   // B·H or 4H values at most
    const T *ap = a.data_ptr<T>(), *xp = x.data_ptr<T>(), *hp = h.data_ptr<T>(), *cp = c.data_ptr<T>();
    const T *wi = data_or<T>(w_ci, H, 0, "w_ci"), *wf = data_or<T>(w_cf, H, 0, "w_cf"),
            *wo = data_or<T>(w_co, H, 0, "w_co");
    const T *hw = data_or<T>(ln_hh_w, 4 * H, 1, "ln_hh_w"), *hb = data_or<T>(ln_hh_b, 4 * H, 0, "ln_hh_b");
    const T *lw = data_or<T>(ln_c_w, H, 1, "ln_c_w"), *lb = data_or<T>(ln_c_b, H, 0, "ln_c_b");
    const T *kp = keep_rows<T>(keep_h, B, H, hold_h), *kc = keep_rows<T>(keep_c, B, H, hold_c);
    T *gp = gates_out.data_ptr<T>(), *cn = c_new_out.data_ptr<T>(), *tc = tanh_c_out.data_ptr<T>();
    T *ho = h_out.data_ptr<T>(), *co = c_out.data_ptr<T>(), *ah = scratch_row<T>(4 * H, 0);
    T* sh = norm_hh ? stats_hh->data_ptr<T>() : nullptr;
    T* sc = norm_c ? stats_c->data_ptr<T>() : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      const T *ar = ap + b * 4 * H, *xr = xp + b * 4 * H, *cr = cp + b * H;
      T *gr = gp + b * 4 * H, *c1 = cn + b * H;
      T mh = 0, rh = 1, mc = 0, rc = 1;
      if (norm_hh) row_stats(ar, 4 * H, mh, rh), sh[2 * b] = mh, sh[2 * b + 1] = rh;
      _Pragma("omp simd")
      for (int64_t k = 0; k < 4 * H; ++k) ah[k] = (ar[k] - mh) * rh * hw[k] + hb[k] + xr[k];
      _Pragma("omp simd")
      for (int64_t j = 0; j < H; ++j) {
        const T ig = sigm(ah[j] + wi[j] * cr[j]);
        const T fg = sigm(ah[H + j] + wf[j] * cr[j]);
        const T gg = std::tanh(ah[2 * H + j]);
        gr[j] = ig, gr[H + j] = fg, gr[2 * H + j] = gg;
        c1[j] = fg * cr[j] + ig * gg;
      }
      if (norm_c) row_stats(c1, H, mc, rc), sc[2 * b] = mc, sc[2 * b + 1] = rc;
      _Pragma("omp simd")
      for (int64_t j = 0; j < H; ++j) {
        const int64_t i = b * H + j;
        const T og = sigm(ah[3 * H + j] + wo[j] * c1[j]);
        const T t = std::tanh((c1[j] - mc) * rc * lw[j] + lb[j]);
        gr[3 * H + j] = og, tc[i] = t;
        ho[i] = lerp(og * t, hp[i], kp[i]);
        co[i] = lerp(c1[j], cr[j], kc[i]);
      }
    }
  });
}

// d_h = dh + g_out and dc split by keep_h / keep_c. Writes d_pre (B, 4H) (d of pre = LN_hh(a) + x),
// carry_h (B, H) (what reaches h_{t-1} directly: d_h keep_h), dc_out (B, H) (d c_{t-1}), and
// with the norms d_c_norm (B, H) (d at LN_c's output, for its weights) and d_a (B, 4H) (d a).
void lstm_backward(const at::Tensor& dh, const std::optional<at::Tensor>& g_out,
                   const at::Tensor& dc, const std::optional<at::Tensor>& keep_h,
                   const std::optional<at::Tensor>& keep_c, const at::Tensor& gates,
                   const at::Tensor& tanh_c, const at::Tensor& c_prev,
                   const std::optional<at::Tensor>& w_ci, const std::optional<at::Tensor>& w_cf,
                   const std::optional<at::Tensor>& w_co, const std::optional<at::Tensor>& ln_c_w,
                   const std::optional<at::Tensor>& c_new, const std::optional<at::Tensor>& stats_c,
                   const std::optional<at::Tensor>& ln_hh_w, const std::optional<at::Tensor>& a,
                   const std::optional<at::Tensor>& stats_hh, at::Tensor d_pre,
                   const std::optional<at::Tensor>& d_c_norm, const std::optional<at::Tensor>& d_a,
                   at::Tensor carry_h, at::Tensor dc_out) {
  check(dh, "dh"), check(dc, "dc"), check(gates, "gates"), check(tanh_c, "tanh_c");
  check(c_prev, "c_prev"), check(d_pre, "d_pre"), check(carry_h, "carry_h"), check(dc_out, "dc_out");
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  const bool norm_hh = ln_hh_w && ln_hh_w->defined(), norm_c = ln_c_w && ln_c_w->defined();
  TORCH_CHECK(!norm_c || (c_new && stats_c && d_c_norm),
              "rnnkit steps: lstm_backward with ln_c_w needs c_new, stats_c and d_c_norm");
  TORCH_CHECK(!norm_hh || (a && stats_hh && d_a),
              "rnnkit steps: lstm_backward with ln_hh_w needs a, stats_hh and d_a");
  at::Tensor hold_h, hold_c;
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    constant_rows<T>(std::max<int64_t>(B, 4) * H);   // B·H or 4H values at most
    const T *d0 = dh.data_ptr<T>(), *g = data_or<T>(g_out, B * H, 0, "g_out"), *dcp = dc.data_ptr<T>();
    const T *gp = gates.data_ptr<T>(), *tc = tanh_c.data_ptr<T>(), *cp = c_prev.data_ptr<T>();
    const T *wi = data_or<T>(w_ci, H, 0, "w_ci"), *wf = data_or<T>(w_cf, H, 0, "w_cf"),
            *wo = data_or<T>(w_co, H, 0, "w_co");
    const T *lw = data_or<T>(ln_c_w, H, 1, "ln_c_w"), *hw = data_or<T>(ln_hh_w, 4 * H, 1, "ln_hh_w");
    const T *kp = keep_rows<T>(keep_h, B, H, hold_h), *kc = keep_rows<T>(keep_c, B, H, hold_c);
    const T* c1p = norm_c ? c_new->data_ptr<T>() : nullptr;
    const T* sc = norm_c ? stats_c->data_ptr<T>() : nullptr;
    const T* sh = norm_hh ? stats_hh->data_ptr<T>() : nullptr;
    const T* aa = norm_hh ? a->data_ptr<T>() : nullptr;
    T *dp = d_pre.data_ptr<T>(), *ch = carry_h.data_ptr<T>(), *dco = dc_out.data_ptr<T>();
    T* dap = norm_hh ? d_a->data_ptr<T>() : nullptr;
    // d at LN_c's output: its row of d_c_norm, or scratch without the norm; d c' via the norm
    T* dn_all = norm_c ? d_c_norm->data_ptr<T>() : nullptr;
    T* dc1 = scratch_row<T>(H, 1);
    for (int64_t b = 0; b < B; ++b) {
      const T* gr = gp + b * 4 * H;
      T *dr = dp + b * 4 * H, *dn = norm_c ? dn_all + b * H : dc1;
      _Pragma("omp simd")
      for (int64_t j = 0; j < H; ++j) {
        const int64_t i = b * H + j;
        const T d_h = (d0[i] + g[i]) * (T(1) - kp[i]);
        const T og = gr[3 * H + j], t = tc[i];
        dr[3 * H + j] = d_h * t * og * (T(1) - og);                       // d o_pre
        dn[j] = d_h * og * (T(1) - t * t);                               // d LN_c(c')
      }
      if (norm_c) row_norm_backward(dn, c1p + b * H, sc[2 * b], sc[2 * b + 1], lw, H, dc1);
      _Pragma("omp simd")
      for (int64_t j = 0; j < H; ++j) {                                 // dc1: d c' from h
        const int64_t i = b * H + j;
        const T ig = gr[j], fg = gr[H + j], gg = gr[2 * H + j];
        const T d_c = dcp[i] * (T(1) - kc[i]) + dc1[j] + wo[j] * dr[3 * H + j];
        const T d_i = d_c * gg * ig * (T(1) - ig);
        const T d_f = d_c * cp[i] * fg * (T(1) - fg);
        const T d_g = d_c * ig * (T(1) - gg * gg);
        dr[j] = d_i, dr[H + j] = d_f, dr[2 * H + j] = d_g;
        ch[i] = (d0[i] + g[i]) * kp[i];
        dco[i] = d_c * fg + wi[j] * d_i + wf[j] * d_f + dcp[i] * kc[i];
      }
      if (norm_hh)
        row_norm_backward(dr, aa + b * 4 * H, sh[2 * b], sh[2 * b + 1], hw, 4 * H, dap + b * 4 * H);
    }
  });
}

// ---- minGRU and minLSTM over a whole sequence (Feng et al. 2024) ----------------------------------
// The recurrence is linear, h_t = a_t h_{t-1} + b_t with a and b from x_t alone, so unlike the
// cells above the whole time loop runs here, one row of the batch after another, straight from the
// input projection x (B, T, G·H) to the states (B, T, H); past a row's length a = 1, b = 0.
//   minGRU  (G = 2, x = [k, p]):      z = σ(k),  a = 1 - z,  b = z g(p)
//   minLSTM (G = 3, x = [kf, ki, p]): Δ = softplus(-kf) - softplus(-ki), a = f' = σ(-Δ) = f/(f+i),
//                                     b = i' g(p) with i' = σ(Δ) (never 0/0, unlike f/(f+i))
// with g(p) = p + 1/2 (p ≥ 0) or σ(p).
template <typename T> inline T g_min(T p) { return p >= T(0) ? p + T(0.5) : sigm(p); }
template <typename T> inline T g_min_slope(T p) {
  const T s = sigm(p);
  return p >= T(0) ? T(1) : s * (T(1) - s);
}
template <typename T> inline T softplus(T v) {
  return (v > T(0) ? v : T(0)) + std::log1p(std::exp(-std::fabs(v)));
}

// Rows of the batch and blocks of hidden units never interact, so the work is split over
// (row, block of kColumns units) across torch's threads: at B = 16, H = 256 that is 64 pieces.
constexpr int64_t kColumns = 64;

// Runs body(b, j0, j1) for every row b and block [j0, j1) of the H units, on torch's threads when
// there is enough work (each piece at least ~64k element-steps).
template <typename F>
void over_rows_and_blocks(int64_t B, int64_t T, int64_t H, const F& body) {
  const int64_t blocks = (H + kColumns - 1) / kColumns, width = std::min(H, kColumns);
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, T * width));
  at::parallel_for(0, B * blocks, grain, [&](int64_t first, int64_t last) {
    for (int64_t piece = first; piece < last; ++piece) {
      const int64_t b = piece / blocks, j0 = (piece % blocks) * kColumns;
      body(b, j0, std::min(H, j0 + kColumns));
    }
  });
}

template <int G>
void min_rnn_forward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& lengths,
                     at::Tensor h_out) {
  check(x, "x"), check(h0, "h0"), check(lengths, "lengths"), check(h_out, "h_out");
  const int64_t B = x.size(0), T = x.size(1), H = h0.size(1);
  TORCH_CHECK(x.size(2) == G * H, "rnnkit steps: x must be (B, T, ", G, "·H)");
  const int64_t* len = lengths.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "min_rnn_forward", [&] {
    using T_ = scalar_t;
    const T_ *xp = x.data_ptr<T_>(), *hp0 = h0.data_ptr<T_>();
    T_* hp = h_out.data_ptr<T_>();
    over_rows_and_blocks(B, T, H, [&](int64_t b, int64_t j0, int64_t j1) {
      const T_* prev = hp0 + b * H;
      for (int64_t t = 0; t < T; ++t) {
        const T_* xr = xp + (b * T + t) * G * H;
        T_* h = hp + (b * T + t) * H;
        const T_ on = t < len[b] ? T_(1) : T_(0);        // 0 past the length: the state stays
        _Pragma("omp simd")
        for (int64_t j = j0; j < j1; ++j) {
          T_ a, c;     // c: b's weight on g(p): z (minGRU) or i' (minLSTM)
          if constexpr (G == 2) {
            c = on * sigm(xr[j]);
            a = T_(1) - c;
          } else {
            const T_ d = softplus(-xr[j]) - softplus(-xr[H + j]);
            a = on * sigm(-d) + (T_(1) - on);
            c = on * sigm(d);
          }
          h[j] = a * prev[j] + c * g_min(xr[(G - 1) * H + j]);
        }
        prev = h;
      }
    });
  });
}

// grad_h (B, T, H): the whole gradient reaching each state. G_t = grad_h_t + a_{t+1} G_{t+1};
// d a_t = G_t h_{t-1}, d b_t = G_t, through the coefficients above to d x; d h_0 = a_0 G_0.
template <int G>
void min_rnn_backward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& lengths,
                      const at::Tensor& h, const at::Tensor& grad_h, at::Tensor d_x,
                      at::Tensor d_h0) {
  check(x, "x"), check(h0, "h0"), check(lengths, "lengths"), check(h, "h"), check(grad_h, "grad_h");
  check(d_x, "d_x"), check(d_h0, "d_h0");
  const int64_t B = x.size(0), T = x.size(1), H = h0.size(1);
  const int64_t* len = lengths.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "min_rnn_backward", [&] {
    using T_ = scalar_t;
    const T_ *xp = x.data_ptr<T_>(), *hp0 = h0.data_ptr<T_>(), *hp = h.data_ptr<T_>();
    const T_* gp = grad_h.data_ptr<T_>();
    T_ *dxp = d_x.data_ptr<T_>(), *dh0 = d_h0.data_ptr<T_>();
    over_rows_and_blocks(B, T, H, [&](int64_t b, int64_t j0, int64_t j1) {
      T_ G_next[kColumns] = {}, a_next[kColumns] = {};   // G_{t+1} and a_{t+1} of this block
      T_ *Gp = G_next - j0, *an = a_next - j0;           // indexed by unit j in [j0, j1)
      for (int64_t t = T - 1; t >= 0; --t) {
        const T_ *xr = xp + (b * T + t) * G * H, *gh = gp + (b * T + t) * H;
        const T_* prev = t > 0 ? hp + (b * T + t - 1) * H : hp0 + b * H;
        T_* dx = dxp + (b * T + t) * G * H;
        const T_ on = t < len[b] ? T_(1) : T_(0);
        _Pragma("omp simd")
        for (int64_t j = j0; j < j1; ++j) {
          const T_ Gt = gh[j] + an[j] * Gp[j];
          const T_ p = xr[(G - 1) * H + j], gv = g_min(p);
          if constexpr (G == 2) {
            const T_ s = sigm(xr[j]), z = on * s;
            dx[j] = on * Gt * (gv - prev[j]) * s * (T_(1) - s);
            dx[H + j] = Gt * z * g_min_slope(p);
            an[j] = T_(1) - z;
          } else {
            const T_ d = softplus(-xr[j]) - softplus(-xr[H + j]);
            const T_ fp = sigm(-d), ip = sigm(d);
            const T_ dd = on * Gt * fp * ip * (gv - prev[j]);   // d Δ
            dx[j] = -dd * sigm(-xr[j]);                          // dΔ/dkf = -σ(-kf)
            dx[H + j] = dd * sigm(-xr[H + j]);                   // dΔ/dki = σ(-ki)
            dx[2 * H + j] = on * Gt * ip * g_min_slope(p);
            an[j] = on * fp + (T_(1) - on);
          }
          Gp[j] = Gt;
        }
      }
      _Pragma("omp simd")
      for (int64_t j = j0; j < j1; ++j) dh0[b * H + j] = an[j] * Gp[j];
    });
  });
}

// ---- word2vec: one batch of sparse SGD (negative sampling or NCE) ---------------------------------
// The same step as Word2Vec.sgd_step, in one pass over the batch: every score and gradient from the
// tables as they were (phase 1), then the updates (phase 2, in order, since rows repeat).
// inputs (B,) centre words or (B, C) context words (-1: padding); positive (B,);
// noise (G, K), shared by each group of S = B / G consecutive examples. With g = label - σ(s) and
// lr folded in:  w_out[t] += g_t v,  v += Σ_t g_t u_t (CBOW: split over the context words).
// NCE scores are s - log(K P_n(w)) with a bias per word. Returns the batch's mean loss, or NaN
// without with_loss.
double w2v_sgd(at::Tensor w_in, at::Tensor w_out, at::Tensor b_out, const at::Tensor& log_noise,
               const at::Tensor& inputs, const at::Tensor& positive, const at::Tensor& noise,
               double lr, bool nce, bool with_loss) {
  check(w_in, "w_in"), check(w_out, "w_out"), check(b_out, "b_out"), check(log_noise, "log_noise");
  check(inputs, "inputs"), check(positive, "positive"), check(noise, "noise");
  const int64_t B = positive.size(0), E = w_in.size(1), G = noise.size(0), K = noise.size(1);
  const int64_t S = B / G, C = inputs.dim() == 2 ? inputs.size(1) : 0;
  TORCH_CHECK(G * S == B, "rnnkit steps: w2v_sgd needs whole groups (B % G == 0)");
  const int64_t *in = inputs.data_ptr<int64_t>(), *pos = positive.data_ptr<int64_t>();
  const int64_t* nz = noise.data_ptr<int64_t>();
  const int64_t V = w_in.size(0);
  auto ids_in_range = [V](const int64_t* ids, int64_t n, int64_t lowest) {
    for (int64_t i = 0; i < n; ++i)
      TORCH_CHECK(ids[i] >= lowest && ids[i] < V, "rnnkit steps: w2v_sgd: word id ", ids[i],
                  " outside the vocabulary of ", V);
  };
  ids_in_range(in, inputs.numel(), C > 0 ? -1 : 0), ids_in_range(pos, B, 0);
  ids_in_range(nz, G * K, 0);
  double loss = 0;
  AT_DISPATCH_FLOATING_TYPES(w_in.scalar_type(), "w2v_sgd", [&] {
    using T = scalar_t;
    T *wi = w_in.data_ptr<T>(), *wo = w_out.data_ptr<T>(), *bo = b_out.data_ptr<T>();
    const T* ln = log_noise.data_ptr<T>();
    const T log_k = std::log(T(K));
    // scratch kept per thread across calls: fresh buffers would cost page faults at every batch
    thread_local std::vector<T> v, grad_v, g_pos, g_neg, count;
    v.resize(B * E), grad_v.resize(B * E), g_pos.resize(B), g_neg.resize(B * K);
    count.assign(B, T(1));
    for (int64_t b = 0; b < B; ++b) {                // phase 1: scores and gradients
      T* vb = v.data() + b * E;
      if (C == 0) {
        const T* row = wi + in[b] * E;
        for (int64_t e = 0; e < E; ++e) vb[e] = row[e];
      } else {                    // CBOW: the mean of the valid context vectors
        int64_t n = 0;
        std::fill(vb, vb + E, T(0));
        for (int64_t c = 0; c < C; ++c) {
          const int64_t w = in[b * C + c];
          if (w < 0) continue;
          const T* row = wi + w * E;
          _Pragma("omp simd")
          for (int64_t e = 0; e < E; ++e) vb[e] += row[e];
          ++n;
        }
        count[b] = T(n > 0 ? n : 1);
        for (int64_t e = 0; e < E; ++e) vb[e] /= count[b];
      }
      auto score = [&](int64_t w) {
        const T* u = wo + w * E;
        T d = 0;
        _Pragma("omp simd reduction(+:d)")
        for (int64_t e = 0; e < E; ++e) d += vb[e] * u[e];
        return nce ? d + bo[w] - ln[w] - log_k : d;
      };
      T* gv = grad_v.data() + b * E;
      const T sp = score(pos[b]);
      g_pos[b] = (T(1) - T(1) / (T(1) + std::exp(-sp))) * T(lr);
      const T* up = wo + pos[b] * E;
      for (int64_t e = 0; e < E; ++e) gv[e] = g_pos[b] * up[e];
      double l = with_loss ? softplus(-static_cast<double>(sp)) : 0.0;   // -log σ(s)
      const int64_t* nk = nz + (b / S) * K;
      for (int64_t k = 0; k < K; ++k) {
        const T sn = score(nk[k]);
        const T gn = -T(lr) / (T(1) + std::exp(-sn));
        g_neg[b * K + k] = gn;
        const T* un = wo + nk[k] * E;
        _Pragma("omp simd")
        for (int64_t e = 0; e < E; ++e) gv[e] += gn * un[e];
        if (with_loss) l += softplus(static_cast<double>(sn));                  // -log σ(-s)
      }
      loss += l;
    }
    for (int64_t b = 0; b < B; ++b) {               // phase 2: the updates, in order
      const T* vb = v.data() + b * E;
      T* up = wo + pos[b] * E;
      _Pragma("omp simd")
      for (int64_t e = 0; e < E; ++e) up[e] += g_pos[b] * vb[e];
      const int64_t* nk = nz + (b / S) * K;
      for (int64_t k = 0; k < K; ++k) {
        T* un = wo + nk[k] * E;
        const T gn = g_neg[b * K + k];
        _Pragma("omp simd")
        for (int64_t e = 0; e < E; ++e) un[e] += gn * vb[e];
        if (nce) bo[nk[k]] += gn;
      }
      if (nce) bo[pos[b]] += g_pos[b];
      const T* gv = grad_v.data() + b * E;
      if (C == 0) {
        T* row = wi + in[b] * E;
        _Pragma("omp simd")
        for (int64_t e = 0; e < E; ++e) row[e] += gv[e];
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const int64_t w = in[b * C + c];
          if (w < 0) continue;
          T* row = wi + w * E;
          _Pragma("omp simd")
          for (int64_t e = 0; e < E; ++e) row[e] += gv[e] / count[b];
        }
      }
    }
  });
  return with_loss ? loss / static_cast<double>(B) : std::nan("");
}

// ---- Dropout masks -----------------------------------------------------------------------------
// mask[i] = 1/(1 - p) where u_i >= p, else 0; u_i is the top 24 bits of splitmix64(seed + (i+1)·γ)
// as a fraction of 2^24 (the resolution of torch.rand in float32). A counter-based draw has no
// sequential state, so the loop vectorises: torch's CPU generator is a sequential Mersenne twister
// at ~5 ns a value, a third of a 2×512 LSTM step's time went to its two dropout masks. The seed is
// drawn from torch's generator (rnnkit/layers.py: dropout), so torch.manual_seed and a resumed
// run's restored RNG state fix every mask.
void dropout_mask(at::Tensor mask, int64_t seed, double p) {
  check(mask, "mask");
  TORCH_CHECK(p >= 0 && p < 1, "rnnkit steps: dropout probability must be in [0, 1), got ", p);
  const uint64_t threshold = static_cast<uint64_t>(std::ceil(p * 16777216.0));  // u >= p
  const uint64_t s = static_cast<uint64_t>(seed);
  const int64_t n = mask.numel();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, mask.scalar_type(), "dropout_mask", [&] {
    // written as bit patterns (an unsigned integer of T's size), which vectorises for bfloat16 too
    using Bits = std::conditional_t<sizeof(scalar_t) == 2, uint16_t,
                                    std::conditional_t<sizeof(scalar_t) == 4, uint32_t, uint64_t>>;
    const scalar_t scale_value = static_cast<scalar_t>(1.0 / (1.0 - p));
    Bits scale, zero = 0;                                            // +0.0 is all zero bits
    std::memcpy(&scale, &scale_value, sizeof(Bits));
    Bits* out = reinterpret_cast<Bits*>(mask.data_ptr<scalar_t>());
    _Pragma("omp simd")
    for (int64_t i = 0; i < n; ++i) {
      uint64_t z = s + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      z ^= z >> 31;
      out[i] = (z >> 40) >= threshold ? scale : zero;
    }
  });
}

}  // namespace

TORCH_LIBRARY(rnnkit_steps, m) {
  m.def("rnn_forward(Tensor a, Tensor x, Tensor h, Tensor? keep, Tensor(a!) act, Tensor(b!) h_out, "
        "bool relu) -> ()", rnn_forward);
  m.def("rnn_backward(Tensor dh, Tensor? g_out, Tensor? keep, Tensor act, bool relu, "
        "Tensor(a!) d_pre, Tensor(b!) carry) -> ()", rnn_backward);
  m.def("gru_forward(Tensor a, Tensor x, Tensor h, Tensor? keep, Tensor(a!) rz, Tensor(b!) n, "
        "Tensor(c!) a_n, Tensor(d!) h_out) -> ()", gru_forward);
  m.def("gru_backward(Tensor dh, Tensor? g_out, Tensor? keep, Tensor rz, Tensor n, Tensor a_n, "
        "Tensor h_prev, Tensor(a!) d_x, Tensor(b!) d_a, Tensor(c!) carry) -> ()", gru_backward);
  m.def("lstm_forward(Tensor a, Tensor x, Tensor h, Tensor c, Tensor? w_ci, Tensor? w_cf, "
        "Tensor? w_co, Tensor? ln_hh_w, Tensor? ln_hh_b, Tensor? ln_c_w, Tensor? ln_c_b, "
        "Tensor? keep_h, Tensor? keep_c, Tensor(a!) gates, Tensor(b!) c_new, Tensor(c!) tanh_c, "
        "Tensor(d!)? stats_hh, Tensor(e!)? stats_c, Tensor(f!) h_out, Tensor(g!) c_out) -> ()",
        lstm_forward);
  m.def("lstm_backward(Tensor dh, Tensor? g_out, Tensor dc, Tensor? keep_h, Tensor? keep_c, "
        "Tensor gates, Tensor tanh_c, Tensor c_prev, Tensor? w_ci, Tensor? w_cf, Tensor? w_co, "
        "Tensor? ln_c_w, Tensor? c_new, Tensor? stats_c, Tensor? ln_hh_w, Tensor? a, "
        "Tensor? stats_hh, Tensor(a!) d_pre, Tensor(b!)? d_c_norm, Tensor(c!)? d_a, "
        "Tensor(d!) carry_h, Tensor(e!) dc_out) -> ()", lstm_backward);
  m.def("mingru_forward(Tensor x, Tensor h0, Tensor lengths, Tensor(a!) h_out) -> ()",
        min_rnn_forward<2>);
  m.def("mingru_backward(Tensor x, Tensor h0, Tensor lengths, Tensor h, Tensor grad_h, "
        "Tensor(a!) d_x, Tensor(b!) d_h0) -> ()", min_rnn_backward<2>);
  m.def("minlstm_forward(Tensor x, Tensor h0, Tensor lengths, Tensor(a!) h_out) -> ()",
        min_rnn_forward<3>);
  m.def("minlstm_backward(Tensor x, Tensor h0, Tensor lengths, Tensor h, Tensor grad_h, "
        "Tensor(a!) d_x, Tensor(b!) d_h0) -> ()", min_rnn_backward<3>);
  m.def("w2v_sgd(Tensor(a!) w_in, Tensor(b!) w_out, Tensor(c!) b_out, Tensor log_noise, "
        "Tensor inputs, Tensor positive, Tensor noise, float lr, bool nce, bool with_loss) -> float",
        w2v_sgd);
  m.def("dropout_mask(Tensor(a!) mask, int seed, float p) -> ()", dropout_mask);
}
