// Prints the merge-precision tables of docs/ACCURACY.md ("Merge precision"): for each input kind,
// the worst error of the merged output against one fp64 attention over the union of the keys,
// for H = 2..64 ranks and every combination of the partials' formats (out fp32/bf16/fp16, lse
// fp32/bf16) and merge order (sequential, tree, sequential with an fp32 accumulator, two-pass).
// Build and run from the repository root: bash bench/merge_precision/run.sh (README.md here).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "attention/merge.h"
#include "merge_study.h"

namespace ms = starattn::merge_study;

namespace {

constexpr int kHeadDim = 64, kKeysPerRank = 16;
const std::vector<int> kRanks = {2, 4, 8, 16, 32, 64};

// starattn's CPU merge itself, rank by rank, on fp32 partials with fp32 lse.
std::vector<float> starattn_cpu_merge(const ms::Row& r) {
  ms::State acc = ms::stored_partial(r, 0, ms::Fmt::F32, ms::Fmt::F32);
  for (int h = 1; h < r.ranks; ++h) {
    const ms::State p = ms::stored_partial(r, h, ms::Fmt::F32, ms::Fmt::F32);
    starattn::merge_attention(acc.out.data(), &acc.lse, p.out.data(), &p.lse, 1, 1, kHeadDim);
  }
  return acc.out;
}

std::string cell(double err) {
  if (!std::isfinite(err)) return "NaN/inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", err);
  return buf;
}

struct Line {
  std::string name;
  ms::Fmt out, lse;
  std::function<std::vector<float>(const ms::Row&)> merge;
};

}  // namespace

int main(int argc, char** argv) {
  const int rows = argc > 1 ? std::atoi(argv[1]) : 200;  // query rows per cell
  std::vector<Line> lines = {
      {"starattn CPU: merge_attention itself, out fp32, lse fp32, sequential", ms::Fmt::F32,
       ms::Fmt::F32, starattn_cpu_merge}};
  for (ms::Fmt lse : {ms::Fmt::F32, ms::Fmt::BF16}) {
    for (ms::Fmt out : {ms::Fmt::F32, ms::Fmt::BF16, ms::Fmt::F16}) {
      for (auto [order, fp32_acc] :
           {std::pair{ms::Order::Sequential, false}, std::pair{ms::Order::Tree, false},
            std::pair{ms::Order::Sequential, true}, std::pair{ms::Order::TwoPass, true}}) {
        // fp32 partials gain nothing from an fp32 accumulator.
        if (out == ms::Fmt::F32 && fp32_acc && order == ms::Order::Sequential) continue;
        const ms::Config c{out, lse, order, fp32_acc};
        lines.push_back(
            {c.name(), out, lse, [c](const ms::Row& r) { return ms::merge_row(r, c); }});
      }
    }
  }
  std::printf(
      "Worst max_d |merged_d - exact_d| over %d query rows of %d dims, %d keys per rank, values "
      "in [-1, 1]; exact = one fp64 attention over the union of the keys. Unit roundoff u: fp32 "
      "%.1e, bf16 %.1e, fp16 %.1e.\n\n",
      rows, kHeadDim, kKeysPerRank, ms::unit_roundoff(ms::Fmt::F32),
      ms::unit_roundoff(ms::Fmt::BF16), ms::unit_roundoff(ms::Fmt::F16));
  auto header = [&](const char* first) {
    std::printf("| %s |", first);
    for (int h : kRanks) std::printf(" H=%d |", h);
    std::printf("\n|---|");
    for (size_t i = 0; i < kRanks.size(); ++i) std::printf("---:|");
    std::printf("\n");
  };
  // ratio[line][column]: the worst err / (u_out + u_lse * max|lse_h|) over every input kind.
  std::vector<std::vector<double>> ratio(lines.size(), std::vector<double>(kRanks.size(), 0.0));
  for (ms::Input kind : ms::all_inputs()) {
    std::printf("### %s\n\n", ms::input_name(kind));
    header("configuration");
    std::vector<std::vector<ms::Row>> data;  // the same rows for every configuration
    for (int h : kRanks) {
      std::mt19937_64 rng(1000 * static_cast<int>(kind) + h);
      data.emplace_back();
      for (int i = 0; i < rows; ++i)
        data.back().push_back(ms::make_row(kind, h, kKeysPerRank, kHeadDim, rng));
    }
    for (size_t l = 0; l < lines.size(); ++l) {
      std::printf("| %s |", lines[l].name.c_str());
      for (size_t col = 0; col < data.size(); ++col) {
        double worst = 0;
        for (const ms::Row& r : data[col]) {
          const double e = ms::max_abs_error(lines[l].merge(r), r.ref);
          worst = std::max(worst, e);
          const double unit = ms::unit_roundoff(lines[l].out) +
                              ms::unit_roundoff(lines[l].lse) * ms::max_abs_lse(r);
          ratio[l][col] = std::max(ratio[l][col], e / unit);
        }
        std::printf(" %s |", cell(worst).c_str());
      }
      std::printf("\n");
    }
    std::printf("\n");
  }
  std::printf("### Every input kind, as a multiple of u_out + u_lse * max_h |lse_h| (per row)\n\n");
  header("configuration");
  for (size_t l = 0; l < lines.size(); ++l) {
    std::printf("| %s |", lines[l].name.c_str());
    for (double r : ratio[l]) {
      if (std::isfinite(r)) {
        std::printf(" %.2f |", r);
      } else {
        std::printf(" NaN/inf |");
      }
    }
    std::printf("\n");
  }
  return 0;
}
