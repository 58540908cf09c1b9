// The precision of the phase-2 merge: H ranks each hold a partial attention result (out, lse) over
// their own keys, and the merge combines them into the attention over all the keys,
//   lse = log sum_h exp(lse_h),   out = sum_h exp(lse_h - lse) * out_h   (natural log).
// This header builds such partials in fp64 for chosen score distributions, stores them in a chosen
// format (the partials' out in fp32, bf16 or fp16, their lse in fp32 or bf16), merges them in a
// chosen order with fp32 arithmetic, and measures the result against one fp64 attention over the
// union of the keys. Used by tests/merge_precision_test.cpp (bounds) and by
// bench/merge_precision/merge_precision.cpp (the full table).
//
// The partials are exact up to their storage rounding: the error of the attention kernel that made
// them (its fp32 sums over the rank's keys) is left out, so what is measured is the merge's own.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace starattn::merge_study {

enum class Fmt { F32, BF16, F16 };

inline const char* fmt_name(Fmt f) {
  return f == Fmt::F32 ? "fp32" : f == Fmt::BF16 ? "bf16" : "fp16";
}
inline int significand_bits(Fmt f) {  // the hidden bit included
  return f == Fmt::F32 ? 24 : f == Fmt::BF16 ? 8 : 11;
}
// Unit roundoff u = 2^-p: round-to-nearest moves a normal value by at most u of itself.
inline double unit_roundoff(Fmt f) {
  return std::ldexp(1.0, -significand_bits(f));
}

// x rounded to the nearest value of format f, ties to even, with f's subnormals and overflow to
// +-inf (what a float -> bf16/fp16 store does). NaN, +-inf and zeros pass through.
inline double round_to(double x, Fmt f) {
  if (!std::isfinite(x) || x == 0) return x;
  const int p = significand_bits(f);
  const int emin = f == Fmt::F16 ? -14 : -126;
  const double max = f == Fmt::F16 ? 65504.0 : std::ldexp(2.0 - std::ldexp(1.0, 1 - p), 127);
  const int e = std::max(std::ilogb(x), emin);  // below emin the spacing stays fixed
  const double ulp = std::ldexp(1.0, e - p + 1);
  // x / ulp is exact (a power of two); nearbyint rounds ties to even in the default mode.
  const double r = std::nearbyint(x / ulp) * ulp;
  return std::fabs(r) > max ? std::copysign(INFINITY, x) : r;
}
inline float store(float x, Fmt f) {
  return f == Fmt::F32 ? x : static_cast<float>(round_to(x, f));
}

// ---- inputs -------------------------------------------------------------------------------------

enum class Input {
  Ordinary,    // scores ~ N(0, 2^2), the range attention logits usually have
  Spread1e2,   // scores uniform in [-50, 50]: a max logit spread of 1e2
  Spread1e4,   // scores uniform in [-5000, 5000]: a spread of 1e4, near one-hot
  LargeLse,    // scores 1e4 + N(0, 2^2): every rank matters and |lse| is about 1e4
  EmptyRanks,  // ordinary, but every 4th rank (rank 0 first) has no keys: lse -inf, out 0
  Dominant,    // ordinary, one random rank's scores raised by 10 (it holds ~all the weight)
};
inline const std::vector<Input>& all_inputs() {
  static const std::vector<Input> v = {Input::Ordinary, Input::Spread1e2,  Input::Spread1e4,
                                       Input::LargeLse, Input::EmptyRanks, Input::Dominant};
  return v;
}
inline const char* input_name(Input k) {
  switch (k) {
    case Input::Ordinary:
      return "ordinary N(0,2)";
    case Input::Spread1e2:
      return "spread 1e2";
    case Input::Spread1e4:
      return "spread 1e4";
    case Input::LargeLse:
      return "1e4 + N(0,2)";
    case Input::EmptyRanks:
      return "empty ranks";
    case Input::Dominant:
      return "one rank +10";
  }
  return "?";
}

// One query row split over H ranks: the partials and the truth, all in fp64.
struct Row {
  int ranks = 0, head_dim = 0;
  std::vector<double> lse;  // [ranks]; -inf for a rank without keys
  std::vector<double> out;  // [ranks, head_dim]; 0 for a rank without keys
  std::vector<double> ref;  // [head_dim] softmax(scores) @ values over the union of the keys
};

inline Row make_row(Input kind, int ranks, int keys_per_rank, int head_dim, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 2.0);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  Row r;
  r.ranks = ranks;
  r.head_dim = head_dim;
  r.lse.assign(ranks, -INFINITY);
  r.out.assign(static_cast<size_t>(ranks) * head_dim, 0.0);
  const int boosted = static_cast<int>(rng() % static_cast<uint64_t>(ranks));
  // Values in [-1, 1] around a per-dimension centre, so the output stays of order 1 however many
  // keys it averages (with centred values it would shrink, and its rounding errors with it).
  std::vector<double> centre(head_dim);
  for (double& c : centre) c = 0.5 * unit(rng);
  std::vector<double> scores, values;  // every key of the union, [keys] and [keys, head_dim]
  for (int h = 0; h < ranks; ++h) {
    if (kind == Input::EmptyRanks && h % 4 == 0) continue;
    const size_t first = scores.size();
    for (int j = 0; j < keys_per_rank; ++j) {
      double s = 0;
      switch (kind) {
        case Input::Spread1e2:
          s = 50.0 * unit(rng);
          break;
        case Input::Spread1e4:
          s = 5000.0 * unit(rng);
          break;
        case Input::LargeLse:
          s = 1e4 + normal(rng);
          break;
        default:
          s = normal(rng) + (kind == Input::Dominant && h == boosted ? 10.0 : 0.0);
      }
      scores.push_back(s);
      for (int d = 0; d < head_dim; ++d) values.push_back(centre[d] + 0.5 * unit(rng));
    }
    // The rank's partial, as an attention kernel defines it (max subtracted).
    const double m = *std::max_element(scores.begin() + first, scores.end());
    double l = 0;
    for (size_t j = first; j < scores.size(); ++j) {
      const double w = std::exp(scores[j] - m);
      l += w;
      for (int d = 0; d < head_dim; ++d) r.out[h * head_dim + d] += w * values[j * head_dim + d];
    }
    for (int d = 0; d < head_dim; ++d) r.out[h * head_dim + d] /= l;
    r.lse[h] = m + std::log(l);
  }
  r.ref.assign(head_dim, 0.0);
  if (scores.empty()) return r;
  const double m = *std::max_element(scores.begin(), scores.end());
  double l = 0;
  for (size_t j = 0; j < scores.size(); ++j) {
    const double w = std::exp(scores[j] - m);
    l += w;
    for (int d = 0; d < head_dim; ++d) r.ref[d] += w * values[j * head_dim + d];
  }
  for (double& x : r.ref) x /= l;
  return r;
}

// ---- merges -------------------------------------------------------------------------------------

// A partial result as stored: out [head_dim] and lse, float values representable in their formats.
struct State {
  std::vector<float> out;
  float lse = -INFINITY;
};

inline State stored_partial(const Row& r, int h, Fmt out_fmt, Fmt lse_fmt) {
  State s;
  for (int d = 0; d < r.head_dim; ++d) {
    s.out.push_back(static_cast<float>(round_to(r.out[h * r.head_dim + d], out_fmt)));
  }
  s.lse = static_cast<float>(round_to(r.lse[h], lse_fmt));
  return s;
}

// Folds b into a with the arithmetic of starattn::merge_attention (src/attention/merge.cpp), then
// stores the result in (out_fmt, lse_fmt). The CUDA kernel computes its weights as ea / (ea + eb)
// instead of multiplying by 1 / (ea + eb): a last-place fp32 difference, far below bf16's.
inline void merge_into(State& a, const State& b, Fmt out_fmt, Fmt lse_fmt) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (b.lse == neg_inf) return;
  if (a.lse == neg_inf) {
    a = b;
    return;
  }
  const float m = std::fmax(a.lse, b.lse);
  const float wa = std::exp(a.lse - m), wb = std::exp(b.lse - m);
  const float inv = 1.0f / (wa + wb);
  for (size_t d = 0; d < a.out.size(); ++d) {
    a.out[d] = store((wa * a.out[d] + wb * b.out[d]) * inv, out_fmt);
  }
  a.lse = store(m + std::log(wa + wb), lse_fmt);
}

enum class Order {
  Sequential,  // rank 0, then 1, 2, ... folded in (what starattn does)
  Tree,        // pairwise: (0,1), (2,3), ... then pairs of those
  TwoPass,     // the global lse first, then sum_h exp(lse_h - lse) out_h (an allreduce's shape)
};
inline const char* order_name(Order o) {
  return o == Order::Sequential ? "sequential" : o == Order::Tree ? "tree" : "two-pass";
}

struct Config {
  Fmt out = Fmt::F32;  // the partials' out, as each rank stores and sends it
  Fmt lse = Fmt::F32;  // the partials' lse
  Order order = Order::Sequential;
  // false: every intermediate result is stored in the partials' formats (starattn's kernels merge
  // in place into the first partial's buffer); true: kept in fp32, the output rounded to `out`
  // once at the end. TwoPass always accumulates in fp32.
  bool fp32_accumulator = false;
  std::string name() const {
    std::string s =
        std::string("out ") + fmt_name(out) + ", lse " + fmt_name(lse) + ", " + order_name(order);
    if (fp32_accumulator && order != Order::TwoPass) s += ", fp32 accumulator";
    return s;
  }
};

// The merged out [head_dim] of row r under configuration c.
inline std::vector<float> merge_row(const Row& r, const Config& c) {
  std::vector<State> parts;
  for (int h = 0; h < r.ranks; ++h) parts.push_back(stored_partial(r, h, c.out, c.lse));
  const Fmt acc_out = c.fp32_accumulator ? Fmt::F32 : c.out;
  const Fmt acc_lse = c.fp32_accumulator ? Fmt::F32 : c.lse;
  State res;
  if (c.order == Order::Sequential) {
    res = parts[0];
    for (int h = 1; h < r.ranks; ++h) merge_into(res, parts[h], acc_out, acc_lse);
  } else if (c.order == Order::Tree) {
    while (parts.size() > 1) {
      std::vector<State> next;
      for (size_t i = 0; i + 1 < parts.size(); i += 2) {
        merge_into(parts[i], parts[i + 1], acc_out, acc_lse);
        next.push_back(std::move(parts[i]));
      }
      if (parts.size() % 2) next.push_back(std::move(parts.back()));
      parts = std::move(next);
    }
    res = std::move(parts[0]);
  } else {
    float m = -INFINITY;
    for (const State& p : parts) m = std::fmax(m, p.lse);
    res.out.assign(r.head_dim, 0.0f);
    if (m != -INFINITY) {
      float l = 0;
      for (const State& p : parts) l += p.lse == -INFINITY ? 0.0f : std::exp(p.lse - m);
      res.lse = m + std::log(l);
      for (const State& p : parts) {
        // A rank without keys is skipped, not multiplied by 0: its out may be anything.
        if (p.lse == -INFINITY) continue;
        const float w = std::exp(p.lse - res.lse);
        for (int d = 0; d < r.head_dim; ++d) res.out[d] += w * p.out[d];
      }
    }
  }
  for (float& x : res.out) x = store(x, c.out);
  return res.out;
}

// max_d |out_d - ref_d|: the values are in [-1, 1], so this is also relative to their scale.
// NaN gives +inf, so a NaN never passes a bound.
inline double max_abs_error(const std::vector<float>& out, const std::vector<double>& ref) {
  double e = 0;
  for (size_t d = 0; d < ref.size(); ++d) {
    if (!std::isfinite(out[d])) return INFINITY;
    e = std::max(e, std::fabs(out[d] - ref[d]));
  }
  return e;
}

// The largest |lse_h| over the ranks that hold keys: an lse stored with unit roundoff u is off by
// up to u * |lse_h| in absolute terms, which scales that rank's weight by up to exp(u * |lse_h|).
inline double max_abs_lse(const Row& r) {
  double m = 0;
  for (double l : r.lse) {
    if (std::isfinite(l)) m = std::max(m, std::fabs(l));
  }
  return m;
}

}  // namespace starattn::merge_study
