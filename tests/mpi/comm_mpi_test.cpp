// Multi-rank checks of the MPI Comm; run under `mpirun -np K` for K = 1..4 (tests/CMakeLists.txt).
// Every check runs on all ranks; the ranks agree on pass/fail with an allreduce, so one rank's
// failure is counted once. Failures print on the failing rank; rank 0 prints the summary.
// Each suite runs twice: with the default 1 GiB pieces and with 1000-byte pieces, so that every
// chunked path (MPI counts are int) is exercised with small buffers.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "starattn/error.h"

namespace starattn {
namespace {

#define EXPECT(cond, ...) SA_CHECK(cond, "expected ", #cond, " (line ", __LINE__, ") ", __VA_ARGS__)

// Byte i of rank r's test pattern: distinct across ranks and positions, never constant.
unsigned char pattern(int r, size_t i) {
  return static_cast<unsigned char>(r * 37 + i * 11 + 5);
}

std::vector<unsigned char> make_pattern(int r, size_t n) {
  std::vector<unsigned char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = pattern(r, i);
  return v;
}

class Runner {
 public:
  explicit Runner(Comm& comm) : comm_(comm) {}

  void run(const std::string& name, const std::function<void()>& check) {
    std::string error;
    try {
      check();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty())
      std::fprintf(stderr, "[rank %d] %s: %s\n", comm_.rank(), name.c_str(), error.c_str());
    float failed_anywhere = error.empty() ? 0.0f : 1.0f;
    comm_.allreduce_max(&failed_anywhere, 1);
    (failed_anywhere > 0 ? failed_ : passed_) += 1;
    if (comm_.rank() == 0)
      std::printf("%s %s\n", failed_anywhere > 0 ? "FAIL" : "ok  ", name.c_str());
  }

  int finish() {
    if (comm_.rank() == 0)
      std::printf("%d passed, %d failed (%d ranks)\n", passed_, failed_, comm_.size());
    return failed_ == 0 ? 0 : 1;
  }

 private:
  Comm& comm_;
  int passed_ = 0, failed_ = 0;
};

void check_broadcast(Comm& c) {
  for (int root = 0; root < c.size(); ++root) {
    std::vector<unsigned char> v =
        c.rank() == root ? make_pattern(root, 2501) : std::vector<unsigned char>(2501, 0);
    c.broadcast(v.data(), v.size(), root);
    EXPECT(v == make_pattern(root, 2501), "root ", root);
  }
  std::vector<int> ids;
  if (c.rank() == c.size() - 1) ids = {1, 128000, 42, -7};
  broadcast_vector(c, ids, c.size() - 1);
  EXPECT((ids == std::vector<int>{1, 128000, 42, -7}), "");
  std::string s = c.rank() == 0 ? std::string(3333, 'x') + "end" : "other";
  broadcast_string(c, s, 0);
  EXPECT(s == std::string(3333, 'x') + "end", "");
}

void check_allreduce(Comm& c) {
  const size_t n = 3001;  // 12004 bytes: 13 pieces of 1000 bytes in the chunked suite
  std::vector<float> mx(n);
  for (size_t i = 0; i < n; ++i)
    mx[i] = static_cast<float>((c.rank() * 7 + i) % 5) - 2.0f;  // negative values too
  c.allreduce_max(mx.data(), n);
  const int p = c.size();
  for (size_t i = 0; i < n; ++i) {
    float want_max = -1e30f;
    for (int r = 0; r < p; ++r)
      want_max = std::max(want_max, static_cast<float>((r * 7 + i) % 5) - 2.0f);
    EXPECT(mx[i] == want_max, "max at ", i, " = ", mx[i]);
  }
}

void check_gathers(Comm& c) {
  const size_t each = 2500;  // 1000 + 1000 + 500 in the chunked suite
  const int p = c.size();
  std::vector<unsigned char> all(p * each, 0);
  const std::vector<unsigned char> mine = make_pattern(c.rank(), each);
  c.allgather(mine.data(), all.data(), each);
  for (int r = 0; r < p; ++r) {
    EXPECT(std::equal(all.begin() + r * each, all.begin() + (r + 1) * each,
                      make_pattern(r, each).begin()),
           "allgather block ", r);
  }
  std::vector<unsigned char> in_place(p * each, 0);
  std::copy(mine.begin(), mine.end(), in_place.begin() + c.rank() * each);
  c.allgather(in_place.data() + c.rank() * each, in_place.data(), each);
  EXPECT(in_place == all, "in-place allgather");
}

// The ring baseline's step: after k steps a rank holds rank (r - k)'s data; after size steps, its
// own.
void check_ring(Comm& c) {
  const int p = c.size(), r = c.rank();
  const int next = (r + 1) % p, prev = (r + p - 1) % p;
  const size_t n = 1203;  // ints
  std::vector<int> cur(n), tmp(n);
  for (size_t i = 0; i < n; ++i) cur[i] = static_cast<int>(r * 100000 + i);
  for (int step = 1; step <= p; ++step) {
    c.sendrecv(cur.data(), n * sizeof(int), next, tmp.data(), n * sizeof(int), prev, 7);
    std::swap(cur, tmp);
    const int owner = ((r - step) % p + p) % p;
    EXPECT(cur[0] == owner * 100000 && cur[n - 1] == static_cast<int>(owner * 100000 + n - 1),
           "step ", step);
  }
  // Unequal sizes: rank r sends (r+1)*1100 bytes, so it receives prev's (prev+1)*1100.
  const auto out = make_pattern(r, (r + 1) * 1100);
  std::vector<unsigned char> in((prev + 1) * 1100);
  c.sendrecv(out.data(), out.size(), next, in.data(), in.size(), prev, 8);
  EXPECT(in == make_pattern(prev, (prev + 1) * 1100), "unequal sizes");
  // Zero bytes one way round is still a matched message.
  c.sendrecv(nullptr, 0, next, nullptr, 0, prev, 9);
}

// A receiver that expects more or fewer bytes than were sent gets an Error, not silent garbage.
// Ranks 0 and 1 exchange: 1 sends 20 bytes and takes 0 bytes back, 0 expects `want` from it.
void check_size_mismatch(Comm& c) {
  if (c.size() < 2 || c.rank() > 1) return;
  std::vector<unsigned char> buf(64), in(64);
  for (size_t want : {size_t{40}, size_t{10}}) {  // fewer sent than expected, then more
    if (c.rank() == 1) {
      c.sendrecv(buf.data(), 20, 0, nullptr, 0, 0, 11);
      continue;
    }
    bool threw = false;
    try {
      c.sendrecv(nullptr, 0, 1, in.data(), want, 1, 11);
    } catch (const Error&) {
      threw = true;
    }
    EXPECT(threw, "a receive of ", want, " bytes when 20 were sent");
  }
}

void check_bad_arguments(Comm& c) {
  auto throws = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error&) {
      return true;
    }
    return false;
  };
  int x = 0;
  EXPECT(throws([&] { c.broadcast(&x, sizeof x, c.size()); }), "root == size");
  int y = 0;
  EXPECT(throws([&] { c.sendrecv(&x, sizeof x, -1, &y, sizeof y, 0, 0); }), "peer -1");
  EXPECT(throws([&] { c.sendrecv(&x, sizeof x, 0, &y, sizeof y, 0, -5); }), "negative tag");
  EXPECT(throws([&] { c.allreduce_max(nullptr, 3); }), "null buffer");
  EXPECT(throws([&] { c.sendrecv(&x, sizeof x, 0, &x, sizeof x, 0, 0); }), "overlapping buffers");
}

void check_same_values(Comm& c) {
  check_same_on_all_ranks(c, "args", "--attn star --block 4096");
  if (c.size() < 2) return;
  // Rank size-1 differs in content; then ranks >= 1 differ in length. Every rank must throw.
  const int bad = c.size() - 1;
  const std::string cases[2][2] = {{"--attn star --block 4096", "--attn star --block 4097"},
                                   {"--attn star", "--attn star --anchor 0"}};
  for (int k = 0; k < 2; ++k) {
    const bool differ = k == 0 ? c.rank() == bad : c.rank() >= 1;
    std::string msg;
    try {
      check_same_on_all_ranks(c, "args", cases[k][differ ? 1 : 0]);
    } catch (const Error& e) {
      msg = e.what();
    }
    const std::string who = "rank " + std::to_string(k == 0 ? bad : 1) + " has";
    EXPECT(msg.find(who) != std::string::npos && msg.find("args differs") != std::string::npos,
           "case ", k, ": '", msg, "'");
  }
}

void check_large(Comm& c) {
  const size_t bytes = 64u << 20;
  const int p = c.size(), r = c.rank();
  std::vector<unsigned char> big =
      r == p - 1 ? make_pattern(p - 1, bytes) : std::vector<unsigned char>(bytes, 0);
  c.broadcast(big.data(), bytes, p - 1);
  EXPECT(big == make_pattern(p - 1, bytes), "64 MB broadcast");
  std::vector<unsigned char> in(bytes);
  const auto out = make_pattern(r, bytes);
  c.sendrecv(out.data(), bytes, (r + 1) % p, in.data(), bytes, (r + p - 1) % p, 1);
  EXPECT(in == make_pattern((r + p - 1) % p, bytes), "64 MB ring step");
  std::vector<float> f(bytes / sizeof(float), static_cast<float>(r));
  c.allreduce_max(f.data(), f.size());
  EXPECT(f.front() == p - 1 && f.back() == p - 1, "64 MB allreduce");
}

void run_suite(Runner& t, Comm& c, const std::string& label) {
  t.run(label + " broadcast", [&] { check_broadcast(c); });
  t.run(label + " allreduce max", [&] { check_allreduce(c); });
  t.run(label + " allgather", [&] { check_gathers(c); });
  t.run(label + " sendrecv ring", [&] { check_ring(c); });
  t.run(label + " size mismatch", [&] { check_size_mismatch(c); });
  t.run(label + " bad arguments", [&] { check_bad_arguments(c); });
  t.run(label + " check_same_on_all_ranks", [&] { check_same_values(c); });
  t.run(label + " barrier", [&] { c.barrier(); });
}

int run_all(std::unique_ptr<Comm>& comm) {
  Runner t(*comm);
  t.run("default comm is MPI of the same size", [&] {
    EXPECT(make_default_comm()->size() == comm->size(), "");
    int r = comm->rank();
    std::vector<int> ranks(comm->size());
    comm->allgather(&r, ranks.data(), sizeof r);
    for (int i = 0; i < comm->size(); ++i) EXPECT(ranks[i] == i, "rank ", i);
  });
  run_suite(t, *comm, "[1 GiB pieces]");
  {
    auto small = make_mpi_comm(MpiCommOptions{.max_chunk_bytes = 1000});
    run_suite(t, *small, "[1000-byte pieces]");
  }
  t.run("64 MB transfers", [&] { check_large(*comm); });
  return t.finish();
}

}  // namespace
}  // namespace starattn

int main() {
  std::unique_ptr<starattn::Comm> comm;
  try {
    comm = starattn::make_mpi_comm();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "comm_mpi_test: %s\n", e.what());
    return 2;
  }
  try {
    return starattn::run_all(comm);
  } catch (const std::exception& e) {  // outside any check: the ranks may disagree, end them all
    comm->abort_all(std::string("comm_mpi_test: ") + e.what(), 2);
  }
}
