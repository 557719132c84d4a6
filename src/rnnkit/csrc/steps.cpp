// The pointwise half of one time step of each cell, forward and backward, fused into one pass.
//
// Shapes: B batch, H hidden size. Every tensor is a contiguous (B, ·) row block of float or double,
// except `keep`, which may broadcast ((B, 1) or (1, 1) views of a (T, ·, ·) tensor) and is read
// through its strides. The GEMMs stay outside, in rnnkit/bptt.py, which calls these between them:
// the equations are those of rnnkit/cells.py, and tests/test_layers.py checks the results against
// autograd through the readable loop.
//
// Why: torch runs each pointwise op (sigmoid, add, mul, …) as its own call, ~3–15 µs each from
// Python at B = 32, H = 256; a GRU step has ~8 of them forward and ~12 backward beside one GEMM of
// ~90 µs. One pass over the row block costs ~5–10 µs.
//
// Built at first use (rnnkit/kernels.py) with -O3 -march=native -ffast-math, which lets gcc call
// glibc's vector tanh; σ(x) is written as (1 + tanh(x/2)) / 2, which never overflows.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <optional>

namespace {

template <typename T> inline T sigm(T x) { return T(0.5) * std::tanh(T(0.5) * x) + T(0.5); }

// torch.lerp(a, b, k) = a + k (b - a), exact at k = 0 and k = 1 (a frozen state stays bit-identical)
template <typename T> inline T lerp(T a, T b, T k) {
  return k == T(0) ? a : k == T(1) ? b : a + k * (b - a);
}

// keep_t as a contiguous (B, H) block: broadcast from (B, 1) or (1, 1), or zeros when absent.
at::Tensor keep_block(const std::optional<at::Tensor>& keep, const at::Tensor& like) {
  return keep && keep->defined() ? keep->expand(like.sizes()).contiguous() : at::zeros_like(like);
}

// Calls body(b, j, i = b·H + j) over a (B, H) block. One loop shape with a branch-free, inlined
// body, so that gcc vectorises it (tanh included, through glibc's vector maths).
template <typename F>
inline void for_each(int64_t B, int64_t H, F body) {
  for (int64_t b = 0; b < B; ++b) {
    _Pragma("omp simd")
    for (int64_t j = 0; j < H; ++j) body(b, j, b * H + j);
  }
}

// An optional tensor, or zeros shaped like `like` (absent g_out or peepholes add nothing).
at::Tensor or_zeros(const std::optional<at::Tensor>& t, const at::Tensor& like) {
  return t && t->defined() ? t->contiguous() : at::zeros_like(like);
}

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "rnnkit steps: ", name,
              " must be a contiguous CPU tensor");
}

// ---- Elman RNN ---------------------------------------------------------------------------------
// a (B, H) = W_hh h + b_hh, x (B, H) = x_proj: act_out = act(x + a); h_out = lerp(act_out, h, keep).
void rnn_forward(const at::Tensor& a, const at::Tensor& x, const at::Tensor& h,
                 const std::optional<at::Tensor>& keep, at::Tensor act_out, at::Tensor h_out,
                 bool relu) {
  check(a, "a"), check(x, "x"), check(h, "h"), check(act_out, "act_out"), check(h_out, "h_out");
  const int64_t B = h.size(0), H = h.size(1);
  const at::Tensor k_t = keep_block(keep, h);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "rnn_forward", [&] {
    using T = scalar_t;
    const T *kp = k_t.data_ptr<T>(), *ap = a.data_ptr<T>(), *xp = x.data_ptr<T>();
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
  const at::Tensor g_t = or_zeros(g_out, dh), k_t = keep_block(keep, dh);
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "rnn_backward", [&] {
    using T = scalar_t;
    const T* kp = k_t.data_ptr<T>();
    const T *d0 = dh.data_ptr<T>(), *g = g_t.data_ptr<T>(), *y = act.data_ptr<T>();
    T *dp = d_pre.data_ptr<T>(), *c = carry.data_ptr<T>();
    auto step = [&](auto slope) {
      for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
        const T k = kp[i];
        const T d = d0[i] + g[i];
        dp[i] = d * (T(1) - k) * slope(y[i]);
        c[i] = d * k;
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
  const at::Tensor k_t = keep_block(keep, h);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gru_forward", [&] {
    using T = scalar_t;
    const T* kp = k_t.data_ptr<T>();
    const T *ap = a.data_ptr<T>(), *xp = x.data_ptr<T>(), *hp = h.data_ptr<T>();
    T *rz = rz_out.data_ptr<T>(), *n = n_out.data_ptr<T>(), *an = a_n_out.data_ptr<T>();
    T* ho = h_out.data_ptr<T>();
    for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
      const T k = kp[i];
      const int64_t g3 = b * 3 * H + j, g2 = b * 2 * H + j;
      const T r = sigm(xp[g3] + ap[g3]);
      const T z = sigm(xp[g3 + H] + ap[g3 + H]);
      const T a_n = ap[g3 + 2 * H];
      const T nn = std::tanh(xp[g3 + 2 * H] + r * a_n);
      const T hn = nn + z * (hp[i] - nn);
      rz[g2] = r, rz[g2 + H] = z, n[i] = nn, an[i] = a_n;
      ho[i] = lerp(hn, hp[i], k);
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
  const at::Tensor g_t = or_zeros(g_out, dh), k_t = keep_block(keep, dh);
  AT_DISPATCH_FLOATING_TYPES(n.scalar_type(), "gru_backward", [&] {
    using T = scalar_t;
    const T* kp = k_t.data_ptr<T>();
    const T *d0 = dh.data_ptr<T>(), *g = g_t.data_ptr<T>(), *rzp = rz.data_ptr<T>();
    const T *np = n.data_ptr<T>(), *anp = a_n.data_ptr<T>(), *hp = h_prev.data_ptr<T>();
    T *dx = d_x.data_ptr<T>(), *da = d_a.data_ptr<T>(), *c = carry.data_ptr<T>();
    for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
      const T k = kp[i];
      const int64_t g3 = b * 3 * H + j, g2 = b * 2 * H + j;
      const T d = d0[i] + g[i];
      const T dn = d * (T(1) - k);
      const T r = rzp[g2], z = rzp[g2 + H], nn = np[i];
      const T dn_pre = dn * (T(1) - z) * (T(1) - nn * nn);
      const T dz_pre = dn * (hp[i] - nn) * z * (T(1) - z);
      const T dr_pre = dn_pre * anp[i] * r * (T(1) - r);
      dx[g3] = dr_pre, dx[g3 + H] = dz_pre, dx[g3 + 2 * H] = dn_pre;
      da[g3] = dr_pre, da[g3 + H] = dz_pre, da[g3 + 2 * H] = dn_pre * r;
      c[i] = d * k + dn * z;
    });
  });
}

// ---- LSTM (peepholes optional; no layer norm on the cell) --------------------------------------------
// pre = a + x: a (B, 4H) = W_hh h + b_hh (after layer norm), x (B, 4H) = x_proj; c (B, H) old cell:
// i = σ(pre_i + w_ci c), f = σ(pre_f + w_cf c), g = tanh(pre_g), c' = f c + i g,
// o = σ(pre_o + w_co c'), h' = o tanh(c'); h_out = lerp(h', h, keep_h), c_out = lerp(c', c, keep_c).
// Absent peepholes are zeros.
void lstm_forward(const at::Tensor& a, const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                  const std::optional<at::Tensor>& w_ci, const std::optional<at::Tensor>& w_cf,
                  const std::optional<at::Tensor>& w_co, const std::optional<at::Tensor>& keep_h,
                  const std::optional<at::Tensor>& keep_c, at::Tensor gates_out,
                  at::Tensor c_new_out, at::Tensor tanh_c_out, at::Tensor h_out, at::Tensor c_out) {
  check(a, "a"), check(x, "x"), check(h, "h"), check(c, "c"), check(gates_out, "gates");
  check(c_new_out, "c_new"), check(tanh_c_out, "tanh_c"), check(h_out, "h_out"), check(c_out, "c_out");
  const int64_t B = c.size(0), H = c.size(1);
  const at::Tensor zero_w = at::zeros({H}, c.options());
  const at::Tensor wi_t = or_zeros(w_ci, zero_w), wf_t = or_zeros(w_cf, zero_w),
                   wo_t = or_zeros(w_co, zero_w);
  const at::Tensor k_t = keep_block(keep_h, c), kc_t = keep_block(keep_c, c);
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "lstm_forward", [&] {
    using T = scalar_t;
    const T *ap = a.data_ptr<T>(), *xp = x.data_ptr<T>(), *hp = h.data_ptr<T>(), *cp = c.data_ptr<T>();
    const T *wi = wi_t.data_ptr<T>(), *wf = wf_t.data_ptr<T>(), *wo = wo_t.data_ptr<T>();
    const T *kp = k_t.data_ptr<T>(), *kc = kc_t.data_ptr<T>();
    T *gp = gates_out.data_ptr<T>(), *cn = c_new_out.data_ptr<T>(), *tc = tanh_c_out.data_ptr<T>();
    T *ho = h_out.data_ptr<T>(), *co = c_out.data_ptr<T>();
    for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
      const T k = kp[i];
      const int64_t g4 = b * 4 * H + j;
      const T c0 = cp[i];
      const T ig = sigm(ap[g4] + xp[g4] + wi[j] * c0);
      const T fg = sigm(ap[g4 + H] + xp[g4 + H] + wf[j] * c0);
      const T gg = std::tanh(ap[g4 + 2 * H] + xp[g4 + 2 * H]);
      const T c1 = fg * c0 + ig * gg;
      const T og = sigm(ap[g4 + 3 * H] + xp[g4 + 3 * H] + wo[j] * c1);
      const T t = std::tanh(c1);
      gp[g4] = ig, gp[g4 + H] = fg, gp[g4 + 2 * H] = gg, gp[g4 + 3 * H] = og;
      cn[i] = c1, tc[i] = t;
      ho[i] = lerp(og * t, hp[i], k);
      co[i] = lerp(c1, c0, kc[i]);
    });
  });
}

// d_h = dh + g_out and dc split by keep_h / keep_c; writes d_pre (B, 4H) (d of pre as above),
// carry_h (B, H) (what reaches h_{t-1} directly: d_h keep_h) and dc_out (B, H) (d c_{t-1}).
void lstm_backward(const at::Tensor& dh, const std::optional<at::Tensor>& g_out,
                   const at::Tensor& dc, const std::optional<at::Tensor>& keep_h,
                   const std::optional<at::Tensor>& keep_c, const at::Tensor& gates,
                   const at::Tensor& tanh_c, const at::Tensor& c_prev,
                   const std::optional<at::Tensor>& w_ci, const std::optional<at::Tensor>& w_cf,
                   const std::optional<at::Tensor>& w_co, at::Tensor d_pre, at::Tensor carry_h,
                   at::Tensor dc_out) {
  check(dh, "dh"), check(dc, "dc"), check(gates, "gates"), check(tanh_c, "tanh_c");
  check(c_prev, "c_prev"), check(d_pre, "d_pre");
  check(carry_h, "carry_h"), check(dc_out, "dc_out");
  const int64_t B = c_prev.size(0), H = c_prev.size(1);
  const at::Tensor g_t = or_zeros(g_out, dh);
  const at::Tensor zero_w = at::zeros({H}, c_prev.options());
  const at::Tensor wi_t = or_zeros(w_ci, zero_w), wf_t = or_zeros(w_cf, zero_w),
                   wo_t = or_zeros(w_co, zero_w);
  const at::Tensor k_t = keep_block(keep_h, c_prev), kc_t = keep_block(keep_c, c_prev);
  AT_DISPATCH_FLOATING_TYPES(c_prev.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    const T *d0 = dh.data_ptr<T>(), *g = g_t.data_ptr<T>(), *dcp = dc.data_ptr<T>();
    const T *gp = gates.data_ptr<T>(), *tc = tanh_c.data_ptr<T>(), *cp = c_prev.data_ptr<T>();
    const T *wi = wi_t.data_ptr<T>(), *wf = wf_t.data_ptr<T>(), *wo = wo_t.data_ptr<T>();
    const T *kp = k_t.data_ptr<T>(), *kc = kc_t.data_ptr<T>();
    T *dp = d_pre.data_ptr<T>(), *ch = carry_h.data_ptr<T>(), *dco = dc_out.data_ptr<T>();
    for_each(B, H, [&](int64_t b, int64_t j, int64_t i) __attribute__((always_inline)) {
      const T k = kp[i];
      const int64_t g4 = b * 4 * H + j;
      const T d = d0[i] + g[i];
      const T d_h = d * (T(1) - k);
      const T ig = gp[g4], fg = gp[g4 + H], gg = gp[g4 + 2 * H], og = gp[g4 + 3 * H];
      const T t = tc[i];
      const T d_o = d_h * t * og * (T(1) - og);
      const T d_c = dcp[i] * (T(1) - kc[i]) + d_h * og * (T(1) - t * t) + wo[j] * d_o;
      const T d_i = d_c * gg * ig * (T(1) - ig);
      const T d_f = d_c * cp[i] * fg * (T(1) - fg);
      const T d_g = d_c * ig * (T(1) - gg * gg);
      dp[g4] = d_i, dp[g4 + H] = d_f, dp[g4 + 2 * H] = d_g, dp[g4 + 3 * H] = d_o;
      ch[i] = d * k;
      dco[i] = d_c * fg + wi[j] * d_i + wf[j] * d_f + dcp[i] * kc[i];
    });
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
  m.def("lstm_forward(Tensor a, Tensor x, Tensor h, Tensor c, Tensor? w_ci, Tensor? w_cf, Tensor? w_co, "
        "Tensor? keep_h, Tensor? keep_c, Tensor(a!) gates, Tensor(b!) c_new, Tensor(c!) tanh_c, "
        "Tensor(d!) h_out, Tensor(e!) c_out) -> ()", lstm_forward);
  m.def("lstm_backward(Tensor dh, Tensor? g_out, Tensor dc, Tensor? keep_h, Tensor? keep_c, "
        "Tensor gates, Tensor tanh_c, Tensor c_prev, Tensor? w_ci, Tensor? w_cf, "
        "Tensor? w_co, Tensor(a!) d_pre, Tensor(b!) carry_h, Tensor(c!) dc_out) -> ()",
        lstm_backward);
}
