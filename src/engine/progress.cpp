#include "engine/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace starattn {

double forward_work(const ModelConfig& c, int64_t n, int64_t keys_before) {
  const double tokens = static_cast<double>(n);
  const double pairs = tokens * static_cast<double>(keys_before) + tokens * (tokens + 1) / 2;
  return projection_work(c, n) + attention_work(c, pairs);
}

double projection_work(const ModelConfig& c, int64_t n) {
  const double d = c.d_model;
  const double weights = d * (2.0 * c.q_dim() + 2.0 * c.kv_dim()) + 3.0 * d * c.d_ffn;
  return 2.0 * weights * c.n_layers * static_cast<double>(n);
}

double attention_work(const ModelConfig& c, double pairs) {
  return 4.0 * c.q_dim() * static_cast<double>(c.n_layers) * pairs;
}

std::optional<double> eta_seconds(double elapsed, double work_done, double work_total) {
  if (!(work_done > 0) || !(elapsed > 0)) return std::nullopt;
  return std::max(0.0, elapsed * (work_total - work_done) / work_done);
}

std::string short_duration(double seconds) {
  const long long t = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  char buf[32];
  if (t < 60) {
    std::snprintf(buf, sizeof buf, "%llds", t);
  } else if (t < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t / 60 % 60);
  }
  return buf;
}

std::string progress_frame(const std::string& label, const Progress& p, double elapsed, int ranks) {
  const double frac = p.work_total > 0 ? std::clamp(p.work_done / p.work_total, 0.0, 1.0) : 0.0;
  constexpr int kWidth = 30;
  std::string bar(static_cast<size_t>(frac * kWidth), '#');
  bar.resize(kWidth, '.');
  char head[160];
  std::snprintf(head, sizeof head, "%s [%s] %d%%", label.c_str(), bar.c_str(),
                static_cast<int>(frac * 100));
  std::string out = head;
  out += ranks > 1 ? " of the slowest of " + std::to_string(ranks) + " ranks, rank 0: " : ", ";
  out += std::to_string(p.tokens_done) + "/" + std::to_string(p.tokens_total) + " tokens";
  const std::optional<double> eta = eta_seconds(elapsed, p.work_done, p.work_total);
  if (!eta) return out;
  char rate[64];
  std::snprintf(rate, sizeof rate, ", %.0f tok/s", static_cast<double>(p.tokens_done) / elapsed);
  return out + rate + ", ETA " + short_duration(*eta);
}

}  // namespace starattn
