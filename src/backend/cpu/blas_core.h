// Which OpenBLAS kernels the process runs, chosen before the first product.
//
// A DYNAMIC_ARCH OpenBLAS (Debian's, Ubuntu's) picks its kernels ("core") from the CPU when it is
// loaded, and a release older than the CPU may not know it: Debian 12's 0.3.21 falls back to its
// SSE3 "Prescott" kernels on Sapphire/Emerald Rapids Xeons, about 4x slower in sgemm than its
// AVX-512 ones, without a word. OpenBLAS reads OPENBLAS_CORETYPE only while it loads, which is
// before any code of ours runs, so the choice is made at process start (a constructor) and, when
// it must change, by running the program again (exec, same pid and arguments) with
// OPENBLAS_CORETYPE set:
// - the loaded core is compared with the CPU's own features (AVX-512, AVX2/FMA, AVX);
// - a core that is weaker than the CPU allows, that fails a check sgemm (some old builds compute
//   wrong results on some cores), that needs instructions the CPU lacks, or an OPENBLAS_CORETYPE
//   that this OpenBLAS does not know, is replaced by the best core for the CPU that passes the
//   check sgemm in a short-lived child process (so a core that faults or is wrong costs nothing);
// - when none passes, the process keeps what OpenBLAS chose, and says so.
// A core the user set in OPENBLAS_CORETYPE that OpenBLAS knows, the CPU runs and the check passes
// is kept. STARATTN_BLAS_AUTOCORE=0 turns the choice off. A rejected OPENBLAS_CORETYPE is reported
// on stderr once per process ("starattn: note: ..."); everything else only in blas_description().
#pragma once

#include <string>

namespace starattn::cpu {

// "OpenBLAS 0.3.21, core Cooperlake (chosen at start-up: OpenBLAS had fallen back to Prescott on
// this AVX-512 CPU; Cooperlake passed the check sgemm)": what runs and why, for bench, --version
// and --json.
std::string blas_description();
// The core name alone ("Cooperlake"), as OpenBLAS reports it.
std::string blas_core_name();
// The part in parentheses above; empty when OpenBLAS's own choice stood unquestioned.
std::string blas_note();

// Test hooks, read at start-up like the variables above (they only make the choice more
// conservative, never select a core the CPU cannot run):
//   STARATTN_BLAS_TEST_CPU=sse3|avx|avx2  the CPU is taken to have at most these features;
//   STARATTN_BLAS_TEST_BAD_CORE=NAME|*    the check sgemm is taken to fail on that core (any).

}  // namespace starattn::cpu
