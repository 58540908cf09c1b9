#include "eval/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

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

Record record_from_json(const nlohmann::json& j) {
  for (const char* f : {"id", "task", "length", "index", "method", "fingerprint", "attn", "score",
                        "outputs", "pred"}) {
    SA_CHECK(j.contains(f), "result line without the field \"", f, "\"");
  }
  Record r;
  r.id = j["id"];
  r.task = j["task"];
  r.length = j["length"];
  r.index = j["index"];
  r.method = j["method"];
  r.fingerprint = j["fingerprint"];
  r.attn = j["attn"];
  r.block_size = j.value("block_size", int64_t{0});
  r.anchor_size = j.value("anchor_size", int64_t{0});
  r.anchor_mode = j.value("anchor_mode", std::string());
  r.anchor_source = j.value("anchor_source", std::string("first"));
  r.ranks = j.value("ranks", 1);
  r.context_tokens = j.value("context_tokens", int64_t{0});
  r.query_tokens = j.value("query_tokens", int64_t{0});
  r.max_new_tokens = j.value("max_new_tokens", 0);
  r.gen_tokens = j.value("gen_tokens", 0);
  r.pred = j["pred"];
  r.refs = j["outputs"].get<std::vector<std::string>>();
  r.score = j["score"];
  r.phase1_s = j.value("phase1_s", 0.0);
  r.query_s = j.value("query_s", 0.0);
  r.decode_s = j.value("decode_s", 0.0);
  return r;
}

std::vector<Record> read_records(const std::string& path, bool* dropped_tail) {
  if (dropped_tail) *dropped_tail = false;
  std::vector<Record> out;
  std::ifstream f(path, std::ios::binary);
  if (!f.good()) return out;
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
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
