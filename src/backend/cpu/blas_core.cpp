#include "backend/cpu/blas_core.h"

#include <cblas.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace starattn::cpu {
namespace {

// Environment variables of the start-up choice (blas_core.h). kChosen carries the note across the
// exec; kProbe marks a child that only checks a core.
constexpr const char* kCoreType = "OPENBLAS_CORETYPE";
constexpr const char* kChosen = "STARATTN_BLAS_CHOSEN";
constexpr const char* kProbe = "STARATTN_BLAS_PROBE";
constexpr const char* kAuto = "STARATTN_BLAS_AUTOCORE";
constexpr const char* kTestCpu = "STARATTN_BLAS_TEST_CPU";
constexpr const char* kTestBad = "STARATTN_BLAS_TEST_BAD_CORE";

// Instruction sets, as a bit mask.
enum Isa : unsigned {
  kAvx = 1,
  kAvx2Fma = 2,
  kFma4 = 4,
  kAvx512 = 8,  // F, BW, DQ, VL, CD: what OpenBLAS's SkylakeX kernels use
  kAvx512Bf16 = 16,
};

// OpenBLAS's x86-64 core names (as openblas_get_corename() spells them), what their kernels need
// and how fast they are (1 SSE, 2 AVX, 3 AVX2, 4 AVX-512).
struct CoreInfo {
  const char* name;
  unsigned needs;
  int tier;
};
constexpr CoreInfo kCores[] = {
    {"Katmai", 0, 1},
    {"Coppermine", 0, 1},
    {"Northwood", 0, 1},
    {"Prescott", 0, 1},
    {"Banias", 0, 1},
    {"Atom", 0, 1},
    {"Core2", 0, 1},
    {"Penryn", 0, 1},
    {"Dunnington", 0, 1},
    {"Nehalem", 0, 1},
    {"Athlon", 0, 1},
    {"Opteron", 0, 1},
    {"Opteron_SSE3", 0, 1},
    {"Barcelona", 0, 1},
    {"Nano", 0, 1},
    {"Bobcat", 0, 1},
    {"Sandybridge", kAvx, 2},
    {"Bulldozer", kAvx | kFma4, 2},
    {"Piledriver", kAvx | kFma4, 2},
    {"Steamroller", kAvx | kFma4, 2},
    {"Excavator", kAvx2Fma, 2},
    {"Haswell", kAvx | kAvx2Fma, 3},
    {"Zen", kAvx | kAvx2Fma, 3},
    {"SkylakeX", kAvx | kAvx2Fma | kAvx512, 4},
    {"Cooperlake", kAvx | kAvx2Fma | kAvx512 | kAvx512Bf16, 4},
    {"SapphireRapids", kAvx | kAvx2Fma | kAvx512 | kAvx512Bf16, 4},
};

const CoreInfo* core_info(const char* name) {
  for (const CoreInfo& c : kCores)
    if (name && strcasecmp(c.name, name) == 0) return &c;
  return nullptr;
}

struct Cpu {
  unsigned isa = 0;
  bool amd = false;
  int tier() const { return isa & kAvx512 ? 4 : isa & kAvx2Fma ? 3 : isa & kAvx ? 2 : 1; }
  std::string features() const {
    return isa & kAvx512 ? "AVX-512" : isa & kAvx2Fma ? "AVX2/FMA" : isa & kAvx ? "AVX" : "SSE";
  }
};

Cpu detect_cpu() {
  Cpu c;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx")) c.isa |= kAvx;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) c.isa |= kAvx2Fma;
  if (__builtin_cpu_supports("fma4")) c.isa |= kFma4;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd"))
    c.isa |= kAvx512;
  if ((c.isa & kAvx512) && __builtin_cpu_supports("avx512bf16")) c.isa |= kAvx512Bf16;
  c.amd = __builtin_cpu_is("amd");
#endif
  // Test hook: take the CPU to have at most these features.
  if (const char* cap = std::getenv(kTestCpu)) {
    const std::string s = cap;
    const unsigned keep = s == "avx2" ? (kAvx | kAvx2Fma) : s == "avx" ? kAvx : 0u;
    c.isa &= keep;
  }
  return c;
}

bool cpu_runs(const Cpu& cpu, const CoreInfo& core) {
  return (core.needs & ~cpu.isa) == 0;
}

// The cores to try on this CPU, best first.
std::vector<const char*> candidates(const Cpu& cpu) {
  std::vector<const char*> out;
  const char* order_intel[] = {"Cooperlake", "SkylakeX", "Haswell", "Sandybridge", "Prescott"};
  const char* order_amd[] = {"Zen", "Haswell", "Sandybridge", "Prescott"};
  for (const char* n :
       cpu.amd ? std::vector<const char*>(std::begin(order_amd), std::end(order_amd))
               : std::vector<const char*>(std::begin(order_intel), std::end(order_intel)))
    if (cpu_runs(cpu, *core_info(n))) out.push_back(n);
  return out;
}

bool taken_as_bad(const char* core) {
  const char* bad = std::getenv(kTestBad);
  return bad && (std::strcmp(bad, "*") == 0 || strcasecmp(bad, core) == 0);
}

// One product of odd sizes (partial tiles) and one of whole tiles, against double sums; the bound
// is the classic fp32 dot-product bound, so only a wrong kernel fails.
bool check_sgemm() {
  uint32_t seed = 12345;
  const auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(seed >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  };
  struct Shape {
    int m, n, k;
  };
  for (const Shape s : {Shape{37, 29, 67}, Shape{96, 64, 256}}) {
    const int m = s.m, n = s.n, k = s.k;
    std::vector<float> a(m * k), b(n * k), c(m * n);
    for (float& v : a) v = next();
    for (float& v : b) v = next();
    for (float& v : c) v = next();
    const std::vector<float> c0 = c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.5f, a.data(), k, b.data(), k,
                0.5f, c.data(), n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double want = 0, mag = 0;
        for (int p = 0; p < k; ++p) {
          want += double(a[i * k + p]) * b[j * k + p];
          mag += std::abs(double(a[i * k + p]) * b[j * k + p]);
        }
        want = 1.5 * want + 0.5 * c0[i * n + j];
        mag = 1.5 * mag + 0.5 * std::abs(c0[i * n + j]);
        if (!(std::abs(c[i * n + j] - want) <= (k + 8) * std::ldexp(1.0, -23) * mag)) return false;
      }
  }
  return true;
}

// Runs this program as a child that loads OpenBLAS with `core` and checks it (probe_main below);
// true when the child exits 0. Its output is discarded (OpenBLAS may complain).
bool probe(const char* core) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, kCoreType, std::strlen(kCoreType)) != 0 &&
        std::strncmp(*e, kChosen, std::strlen(kChosen)) != 0)
      env.push_back(*e);
  env.push_back(std::string(kCoreType) + "=" + core);
  env.push_back(std::string(kProbe) + "=1");
  std::vector<char*> envp;
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char* argv[] = {exe, nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  // A probe takes milliseconds. One that has not ended in 10 s is stuck (OpenBLAS spins when it
  // cannot map its buffers, as under a tight `ulimit -v`): its core counts as failed.
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return false;
    if (waited_ms >= 10000) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return false;
    }
    usleep(10000);
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// In a probe child: does the core OpenBLAS loaded match the one asked for, and compute right?
[[noreturn]] void probe_main() {
  const char* want = std::getenv(kCoreType);
  const char* got = openblas_get_corename();
  if (!want || !got || strcasecmp(want, got) != 0) _exit(4);
  if (taken_as_bad(got)) _exit(3);
  _exit(check_sgemm() ? 0 : 3);
}

std::string g_note;  // blas_note()

// The choice itself; runs before main (see kInit below), with the process's arguments.
void choose_core(int /*argc*/, char** argv, char** /*envp*/) {
  if (std::getenv(kProbe)) probe_main();
  if (const char* chosen = std::getenv(kChosen)) {  // the exec'd run: the choice is made
    g_note = chosen;
    const char* want = std::getenv(kCoreType);
    const char* got = openblas_get_corename();
    if (!want || !got || strcasecmp(want, got) != 0)
      g_note += std::string("; but OpenBLAS loaded ") + (got ? got : "?");
    if (g_note.find("OPENBLAS_CORETYPE=") != std::string::npos)
      std::fprintf(stderr, "starattn: note: %s\n", g_note.c_str());
    unsetenv(kChosen);
    return;
  }
  const char* disabled = std::getenv(kAuto);
  if (disabled && std::strcmp(disabled, "0") == 0) return;

  const Cpu cpu = detect_cpu();
  const char* loaded = openblas_get_corename();
  const CoreInfo* core = core_info(loaded);
  const char* user = std::getenv(kCoreType);
  std::string why;  // why the loaded core is questioned; empty to keep it
  bool loaded_failed = false;
  if (user && (!core || strcasecmp(user, loaded) != 0)) {
    why = std::string("OPENBLAS_CORETYPE=") + user + " is not a core this OpenBLAS knows";
  } else if (user && !cpu_runs(cpu, *core)) {
    why = std::string("OPENBLAS_CORETYPE=") + user + " needs instructions this " + cpu.features() +
          " CPU lacks";
  } else if (!core) {
    return;  // a core this table does not know: OpenBLAS knows best
  } else if (taken_as_bad(loaded) || !check_sgemm()) {
    loaded_failed = true;
    why = std::string(user ? "OPENBLAS_CORETYPE=" : "OpenBLAS's core ") + loaded +
          " failed the check sgemm";
  } else if (!user && core->tier < cpu.tier() && !(cpu.amd && core->tier >= 3)) {
    why = std::string("OpenBLAS had fallen back to ") + loaded + " on this " + cpu.features() +
          " CPU";
  } else {
    if (user) g_note = std::string("OPENBLAS_CORETYPE=") + user + " from the environment";
    return;
  }
  const bool tell = why.rfind("OPENBLAS_CORETYPE=", 0) == 0;  // the user's setting was rejected
  std::string failed;                                         // candidates that failed their check
  for (const char* cand : candidates(cpu)) {
    if (loaded && strcasecmp(cand, loaded) == 0) {
      // The core already loaded: checked here, no restart needed.
      if (loaded_failed || taken_as_bad(loaded) || !check_sgemm()) continue;
      g_note = why + "; kept " + loaded + ", which passed the check sgemm";
      if (!failed.empty()) g_note += " (" + failed + " did not)";
      if (tell) std::fprintf(stderr, "starattn: note: %s\n", g_note.c_str());
      return;
    }
    if (!probe(cand)) {
      failed += std::string(failed.empty() ? "" : ", ") + cand;
      continue;
    }
    std::string note = "chosen at start-up: " + why + "; " + cand + " passed the check sgemm";
    if (!failed.empty()) note += " (" + failed + " did not)";
    setenv(kCoreType, cand, 1);
    setenv(kChosen, note.c_str(), 1);
    execv("/proc/self/exe", argv);  // returns only on failure
    why += std::string("; could not restart with ") + cand + ": " + std::strerror(errno);
    unsetenv(kChosen);
    break;
  }
  g_note = why + "; kept " + (loaded ? loaded : "?") + ", no other core passed the check sgemm";
  if (!failed.empty()) g_note += " (tried " + failed + ")";
  if (tell || loaded_failed) std::fprintf(stderr, "starattn: note: %s\n", g_note.c_str());
}

// glibc calls .init_array entries with (argc, argv, envp); OpenBLAS, a shared library the program
// needs, is initialised before any of them.
__attribute__((section(".init_array"), used)) void (*g_init)(int, char**, char**) = choose_core;

}  // namespace

std::string blas_core_name() {
  const char* n = openblas_get_corename();
  return n ? n : "?";
}

std::string blas_note() {
  return g_note;
}

std::string blas_description() {
  // openblas_get_config(): "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": keep name and version.
  std::string config = openblas_get_config() ? openblas_get_config() : "OpenBLAS";
  const size_t sp = config.find(' ', config.find(' ') + 1);
  std::string s = config.substr(0, sp) + ", core " + blas_core_name();
  if (!g_note.empty()) s += " (" + g_note + ")";
  return s;
}

}  // namespace starattn::cpu
