#include "eval/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "io/text_file.h"
#include "starattn/error.h"

namespace starattn::eval {
namespace {

namespace fs = std::filesystem;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string duration(double s) {
  const auto t = static_cast<long long>(std::llround(s));
  char buf[64];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", t / 3600, t / 60 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm %02llds", t / 60, t % 60);
  }
  return buf;
}

// Mean score (0-100), count and times of one cell.
struct Cell {
  double sum = 0;
  int n = 0;
  std::vector<double> seconds;  // per sample
  double mean() const { return n ? 100.0 * sum / n : 0.0; }
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

}  // namespace

nlohmann::json to_json(const Record& r) {
  nlohmann::json j;
  j["id"] = r.id;
  j["task"] = r.task;
  j["length"] = r.length;
  j["index"] = r.index;
  j["method"] = r.method;
  j["fingerprint"] = r.fingerprint;
  j["attn"] = r.attn;
  j["block_size"] = r.block_size;
  j["anchor_size"] = r.anchor_size;
  j["anchor_mode"] = r.anchor_mode;
  j["anchor_source"] = r.anchor_source;
  j["ranks"] = r.ranks;
  j["context_tokens"] = r.context_tokens;
  j["query_tokens"] = r.query_tokens;
  j["max_new_tokens"] = r.max_new_tokens;
  j["gen_tokens"] = r.gen_tokens;
  j["pred"] = r.pred;
  j["outputs"] = r.refs;
  j["score"] = r.score;
  j["phase1_s"] = r.phase1_s;
  j["query_s"] = r.query_s;
  j["decode_s"] = r.decode_s;
  return j;
}

namespace {

using nlohmann::json;

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

const json* field(const json& j, const char* key, bool required) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    SA_CHECK(!required, "result line without the field \"", key, "\"");
    return nullptr;
  }
  return &*it;
}

// An integer field in [lo, hi]. A float (77.9, 1e300) or a value out of range is the file's
// error: nlohmann's get<int64_t>() would truncate the one and make the other undefined.
int64_t int_field(const json& j, const char* key, int64_t lo, int64_t hi, bool required,
                  int64_t def = 0) {
  const json* v = field(j, key, required);
  if (!v) return def;
  SA_CHECK(v->is_number_integer(), "\"", key, "\" is ", v->dump(), ", not an integer");
  // Unsigned values are compared as unsigned, so one above int64's range cannot wrap.
  const bool in_range = v->is_number_unsigned()
                            ? v->get<uint64_t>() <= static_cast<uint64_t>(hi) &&
                                  static_cast<int64_t>(v->get<uint64_t>()) >= lo
                            : v->get<int64_t>() >= lo && v->get<int64_t>() <= hi;
  SA_CHECK(in_range, "\"", key, "\" = ", v->dump(), " is outside [", lo, ", ", hi, "]");
  return v->get<int64_t>();
}

// A finite number field in [lo, hi].
double number_field(const json& j, const char* key, double lo, double hi, bool required) {
  const json* v = field(j, key, required);
  if (!v) return 0.0;
  SA_CHECK(v->is_number(), "\"", key, "\" is ", v->dump(), ", not a number");
  const double x = v->get<double>();
  SA_CHECK(std::isfinite(x) && x >= lo && x <= hi, "\"", key, "\" = ", v->dump(), " is outside [",
           lo, ", ", hi, "]");
  return x;
}

std::string string_field(const json& j, const char* key, bool required) {
  const json* v = field(j, key, required);
  if (!v) return "";
  SA_CHECK(v->is_string(), "\"", key, "\" is ", v->dump(), ", not a string");
  return v->get<std::string>();
}

}  // namespace

Record record_from_json(const json& j) {
  SA_CHECK(j.is_object(), "a result line is not a JSON object");
  Record r;
  r.id = string_field(j, "id", true);
  r.task = string_field(j, "task", true);
  r.length = int_field(j, "length", 1, kMaxInt, true);
  r.index = int_field(j, "index", 0, kMaxInt, true);
  r.method = string_field(j, "method", true);
  r.fingerprint = string_field(j, "fingerprint", true);
  r.attn = string_field(j, "attn", true);
  r.block_size = int_field(j, "block_size", 0, kMaxInt, false);
  r.anchor_size = int_field(j, "anchor_size", 0, kMaxInt, false);
  r.anchor_mode = string_field(j, "anchor_mode", false);
  r.anchor_source = string_field(j, "anchor_source", false);
  if (r.anchor_source.empty()) r.anchor_source = "first";
  r.ranks = static_cast<int>(int_field(j, "ranks", 1, kMaxInt, false, 1));
  r.context_tokens = int_field(j, "context_tokens", 0, kMaxInt, false);
  r.query_tokens = int_field(j, "query_tokens", 0, kMaxInt, false);
  r.max_new_tokens = static_cast<int>(int_field(j, "max_new_tokens", 0, kMaxInt, false));
  r.gen_tokens = static_cast<int>(int_field(j, "gen_tokens", 0, kMaxInt, false));
  r.pred = string_field(j, "pred", true);
  const json* refs = field(j, "outputs", true);
  SA_CHECK(refs->is_array(), "\"outputs\" is not a list of strings");
  for (const json& x : *refs) {
    SA_CHECK(x.is_string(), "\"outputs\" holds ", x.dump(), ", not a string");
    r.refs.push_back(x.get<std::string>());
  }
  r.score = number_field(j, "score", 0.0, 1.0, true);
  // Seconds: finite and non-negative, at most a year.
  constexpr double kMaxSeconds = 366.0 * 24 * 3600;
  r.phase1_s = number_field(j, "phase1_s", 0.0, kMaxSeconds, false);
  r.query_s = number_field(j, "query_s", 0.0, kMaxSeconds, false);
  r.decode_s = number_field(j, "decode_s", 0.0, kMaxSeconds, false);
  return r;
}

std::vector<Record> read_records(const std::string& path, bool* dropped_tail) {
  if (dropped_tail) *dropped_tail = false;
  std::vector<Record> out;
  std::error_code ec;
  if (!fs::exists(path, ec) && !ec) return out;  // no results yet
  // A regular file within the cap: a results path naming a FIFO or /dev/zero is refused.
  std::istringstream f(read_regular_file(path, "results file", kMaxTextFileBytes));
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto j = json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() && i + 1 == lines.size()) {
      if (dropped_tail) *dropped_tail = true;  // the run was killed while writing this line
      break;
    }
    SA_CHECK(!j.is_discarded(), path, ":", i + 1, ": not a JSON line");
    try {
      out.push_back(record_from_json(j));
    } catch (const nlohmann::json::exception& e) {
      fail(path, ":", i + 1, ": ", e.what());
    } catch (const Error& e) {
      fail(path, ":", i + 1, ": ", e.what());
    }
  }
  return out;
}

void append_record(const std::string& path, const Record& r) {
  // Every line is written whole with its newline, so a file that does not end in one holds the
  // start of a line from a killed run: cut it off before appending.
  std::error_code ec;
  if (fs::exists(path, ec) && fs::file_size(path, ec) > 0) {
    std::ifstream in(path, std::ios::binary);
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (all.back() != '\n') {
      const size_t keep = all.rfind('\n');
      in.close();
      fs::resize_file(path, keep == std::string::npos ? 0 : keep + 1, ec);
      SA_CHECK(!ec, "cannot cut the partial last line of ", path, ": ", ec.message());
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::app);
  SA_CHECK(out.good(), "cannot write ", path);
  // A model may emit invalid UTF-8; keep the line valid JSON rather than fail the run.
  out << to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  out.flush();
  SA_CHECK(out.good(), "cannot write ", path);
}

std::string summary_markdown(const std::vector<Record>& records) {
  std::vector<std::string> methods, tasks;  // in order of first appearance
  std::set<int64_t> lengths;
  std::map<std::string, std::string> attn_of;
  for (const Record& r : records) {
    if (std::find(methods.begin(), methods.end(), r.method) == methods.end()) {
      methods.push_back(r.method);
      attn_of[r.method] = r.attn;
    }
    if (std::find(tasks.begin(), tasks.end(), r.task) == tasks.end()) tasks.push_back(r.task);
    lengths.insert(r.length);
  }
  // cells[length][task][method]
  std::map<int64_t, std::map<std::string, std::map<std::string, Cell>>> cells;
  for (const Record& r : records) {
    Cell& c = cells[r.length][r.task][r.method];
    c.sum += r.score;
    c.n += 1;
    c.seconds.push_back(r.phase1_s + r.query_s + r.decode_s);
  }
  const auto dense_it = std::find_if(methods.begin(), methods.end(),
                                     [&](const std::string& m) { return attn_of[m] == "dense"; });
  const std::string dense = dense_it == methods.end() ? "" : *dense_it;

  std::ostringstream s;
  std::map<std::string, std::map<int64_t, double>> averages;
  for (int64_t len : lengths) {
    auto& by_task = cells[len];
    std::vector<std::string> common;  // tasks every column has: the average compares like with like
    for (const auto& t : tasks) {
      if (!by_task.count(t)) continue;
      if (std::all_of(methods.begin(), methods.end(),
                      [&](const std::string& m) { return by_task[t].count(m) > 0; })) {
        common.push_back(t);
      }
    }
    s << "### " << len << " tokens\n\n| task |";
    for (const auto& m : methods) s << ' ' << m << " |";
    s << "\n|---|";
    for (size_t i = 0; i < methods.size(); ++i) s << "---:|";
    s << '\n';
    std::map<std::string, std::set<int>> counts;
    std::map<std::string, std::vector<double>> times;
    for (const auto& t : tasks) {
      if (!by_task.count(t)) continue;
      s << "| " << t << " |";
      for (const auto& m : methods) {
        const auto it = by_task[t].find(m);
        if (it == by_task[t].end()) {
          s << " - |";
          continue;
        }
        s << ' ' << fmt("%.1f", it->second.mean()) << " |";
        counts[m].insert(it->second.n);
        times[m].insert(times[m].end(), it->second.seconds.begin(), it->second.seconds.end());
      }
      s << '\n';
    }
    s << "| **average** |";
    for (const auto& m : methods) {
      if (common.empty()) {
        s << " - |";
        continue;
      }
      double sum = 0;
      for (const auto& t : common) sum += by_task[t][m].mean();
      averages[m][len] = sum / static_cast<double>(common.size());
      s << " **" << fmt("%.1f", averages[m][len]) << "** |";
    }
    if (!dense.empty() && !common.empty()) {
      s << "\n| % of dense |";
      for (const auto& m : methods) {
        const double d = averages[dense][len];
        s << ' ' << (d > 0 ? fmt("%.0f%%", 100.0 * averages[m][len] / d) : std::string("-"))
          << " |";
      }
    }
    s << "\n| samples per task |";
    for (const auto& m : methods) {
      std::string c;
      for (int n : counts[m]) {
        if (!c.empty()) c.push_back('/');
        c.append(std::to_string(n));
      }
      s << ' ' << (c.empty() ? "-" : c) << " |";
    }
    s << "\n| run time |";
    for (const auto& m : methods) {
      double total = 0;
      for (double t : times[m]) total += t;
      s << ' ' << duration(total) << " |";
    }
    s << "\n| median s / sample |";
    for (const auto& m : methods) s << ' ' << fmt("%.1f", median(times[m])) << " |";
    s << "\n\n";
    size_t with_data = 0;
    for (const auto& t : tasks) with_data += by_task.count(t);
    if (common.size() < with_data) {
      std::string list;
      for (const auto& t : common) list += (list.empty() ? "" : ", ") + t;
      s << "Average and % of dense over the tasks every column has: "
        << (list.empty() ? std::string("none") : list) << ".\n\n";
    }
  }

  if (lengths.size() > 1) {
    s << "### Average over tasks\n\n| method |";
    for (int64_t len : lengths) s << ' ' << len << " |";
    s << " mean |\n|---|";
    for (size_t i = 0; i <= lengths.size(); ++i) s << "---:|";
    s << '\n';
    for (const auto& m : methods) {
      s << "| " << m << " |";
      double sum = 0;
      int n = 0;
      for (int64_t len : lengths) {
        const auto it = averages[m].find(len);
        if (it == averages[m].end()) {
          s << " - |";
          continue;
        }
        s << ' ' << fmt("%.1f", it->second) << " |";
        sum += it->second;
        ++n;
      }
      s << ' ' << (n ? fmt("%.1f", sum / n) : std::string("-")) << " |\n";
    }
    s << '\n';
  }
  return s.str();
}

}  // namespace starattn::eval
