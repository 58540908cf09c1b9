// The start-up choice of OpenBLAS's kernels (backend/cpu/blas_core.h). The choice happens before
// main, so each case runs this test binary again with an environment (OPENBLAS_CORETYPE and the
// test hooks) and reads what the child reports from BlasCore.ActiveCoreComputesRight.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cblas.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/blas_core.h"

namespace starattn {
namespace {

// Whatever core runs, an sgemm of odd sizes is right; the child cases below read the line printed.
TEST(BlasCore, ActiveCoreComputesRight) {
  std::printf("BLAS: %s\n", cpu::blas_description().c_str());
  const int m = 45, n = 33, k = 131;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(m * k), b(k * n), c(m * n, 0.0f);
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n,
              0.0f, c.data(), n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double want = 0, mag = 0;
      for (int p = 0; p < k; ++p) {
        want += double(a[i * k + p]) * b[p * n + j];
        mag += std::abs(double(a[i * k + p]) * b[p * n + j]);
      }
      ASSERT_LE(std::abs(c[i * n + j] - want), k * std::ldexp(1.0, -23) * mag);
    }
}

struct Child {
  int status = -1;
  std::string out;            // stdout and stderr
  std::string blas;           // the BLAS: line
  std::string core() const {  // "Cooperlake" of "OpenBLAS 0.3.21, core Cooperlake (...)"
    const size_t at = blas.find("core ");
    if (at == std::string::npos) return "";
    const size_t end = blas.find_first_of(" (", at + 5);
    return blas.substr(at + 5, end == std::string::npos ? end : end - at - 5);
  }
};

Child run_child(const std::string& env) {
  std::array<char, 4096> exe{};
  const ssize_t len = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  Child c;
  if (len <= 0) return c;
  // The parent's own choice may have set OPENBLAS_CORETYPE: each case starts from none.
  const std::string cmd = "env -u OPENBLAS_CORETYPE -u STARATTN_BLAS_CHOSEN " + env + " '" +
                          std::string(exe.data(), len) +
                          "' --gtest_filter=BlasCore.ActiveCoreComputesRight 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return c;
  std::array<char, 1024> buf{};
  while (fgets(buf.data(), buf.size(), p)) {
    const std::string line = buf.data();
    c.out += line;
    if (line.rfind("BLAS: ", 0) == 0) c.blas = line.substr(6, line.size() - 7);
  }
  c.status = pclose(p);
  return c;
}

bool cpu_is_amd() {
#if defined(__x86_64__)
  return __builtin_cpu_is("amd");
#else
  return false;
#endif
}

// The note line on stderr that carries `what`: printed as is when the loaded core is kept, after
// "chosen at start-up: " when the program restarted with another core.
bool has_note(const std::string& out, const std::string& what) {
  for (size_t at = out.find("starattn: note: "); at != std::string::npos;
       at = out.find("starattn: note: ", at + 1)) {
    const size_t end = out.find('\n', at);
    if (out.substr(at, end == std::string::npos ? end : end - at).find(what) != std::string::npos)
      return true;
  }
  return false;
}

bool cpu_has_avx2() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

TEST(BlasCore, UnknownCoreTypeFallsBackWithANote) {
  const Child c = run_child("OPENBLAS_CORETYPE=NoSuchCore");
  ASSERT_EQ(c.status, 0) << c.out;  // the child's sgemm was right
  EXPECT_TRUE(has_note(c.out, "OPENBLAS_CORETYPE=NoSuchCore is not a core this OpenBLAS")) << c.out;
  EXPECT_NE(c.blas.find("NoSuchCore"), std::string::npos) << c.blas;
  EXPECT_NE(c.core(), "") << c.blas;
}

TEST(BlasCore, CoreTheCpuCannotRunIsReplaced) {
  // The CPU taken to be SSE-only: Haswell's kernels would fault, Prescott's are chosen.
  const Child c = run_child("OPENBLAS_CORETYPE=Haswell STARATTN_BLAS_TEST_CPU=sse3");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("starattn: note: "), std::string::npos) << c.out;
  EXPECT_NE(c.blas.find("OPENBLAS_CORETYPE=Haswell needs instructions this SSE CPU lacks"),
            std::string::npos)
      << c.blas;
  EXPECT_NE(c.core(), "Haswell") << c.blas;
  if (!cpu_has_avx2()) return;
  // An AVX2 CPU asked for AVX-512 kernels gets the AVX2 ones: Zen's on AMD, Haswell's elsewhere.
  const Child d = run_child("OPENBLAS_CORETYPE=SkylakeX STARATTN_BLAS_TEST_CPU=avx2");
  ASSERT_EQ(d.status, 0) << d.out;
  const std::string avx2_core = cpu_is_amd() ? "Zen" : "Haswell";
  EXPECT_EQ(d.core(), avx2_core) << d.blas;
  EXPECT_NE(d.blas.find(avx2_core + " passed the check sgemm"), std::string::npos) << d.blas;
}

TEST(BlasCore, ACoreThatFailsTheCheckIsNotUsed) {
  const Child plain = run_child("STARATTN_BLAS_AUTOCORE=0");
  ASSERT_EQ(plain.status, 0) << plain.out;
  const std::string native = plain.core();  // what OpenBLAS chooses by itself
  ASSERT_NE(native, "") << plain.blas;
  const Child c = run_child("STARATTN_BLAS_TEST_BAD_CORE=" + native);
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.blas.find(native + " failed the check sgemm"), std::string::npos) << c.blas;
  if (cpu_has_avx2()) {
    EXPECT_NE(c.core(), native) << c.blas;  // another core passed
  }

  // When every core fails, OpenBLAS's choice stays and the note says so.
  const Child all = run_child("STARATTN_BLAS_TEST_BAD_CORE=*");
  ASSERT_EQ(all.status, 0) << all.out;
  EXPECT_EQ(all.core(), native) << all.blas;
  EXPECT_NE(all.out.find("starattn: note: "), std::string::npos) << all.out;
  EXPECT_NE(all.blas.find("no other core passed the check sgemm"), std::string::npos) << all.blas;
}

TEST(BlasCore, ACoreTheUserSetAndTheCpuRunsIsKept) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "needs an AVX2 CPU";
  const Child c = run_child("OPENBLAS_CORETYPE=haswell");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_EQ(c.core(), "Haswell") << c.blas;
  EXPECT_EQ(c.out.find("starattn: note:"), std::string::npos) << c.out;
  EXPECT_NE(c.blas.find("OPENBLAS_CORETYPE=haswell from the environment"), std::string::npos)
      << c.blas;
}

}  // namespace
}  // namespace starattn
