"""Copies the repository's include/, src/ and tests/ into a tree that g++ compiles against the CUDA
emulator (emu.h): the PTX helpers of attention_common.cuh become emu:: calls, <<<...>>> launches
become emu::launch, and the dynamic shared memory declaration points at the emulator's buffer.
Everything else, the kernels' own code included, is left as it is.

Usage: python3 prep.py REPO_ROOT OUT_TREE
"""
import os
import re
import shutil
import sys

repo, out = sys.argv[1], sys.argv[2]
shutil.rmtree(out, ignore_errors=True)
for d in ("src", "include", "tests"):
    shutil.copytree(os.path.join(repo, d), os.path.join(out, d))

BODIES = {
    "smem_addr": "__device__ __forceinline__ uint32_t smem_addr(const void* p) { (void)p; return 0; }\n",
    "cp_async16": "__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) "
                  "{ emu::cp_async16(dst, src, valid); }\n",
    "cp_async_commit": "__device__ __forceinline__ void cp_async_commit() { emu::cp_async_commit(); }\n",
    "cp_async_wait": "__device__ __forceinline__ void cp_async_wait() { emu::cp_async_wait(N); }\n",
    "ldmatrix_x4": "__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) "
                   "{ emu::ldmatrix_x4(r, p, false); }\n",
    "ldmatrix_x4_trans": "__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) "
                         "{ emu::ldmatrix_x4(r, p, true); }\n",
    "mma_bf16": "__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], "
                "uint32_t b0, uint32_t b1) { emu::mma_bf16(c, a, b0, b1); }\n",
    "ex2": "__device__ __forceinline__ float ex2(float x) { return std::exp2(x); }\n",
}

p = os.path.join(out, "src/backend/cuda/attention_common.cuh")
s = open(p).read()
for name, body in BODIES.items():
    m = re.search(r"^__device__ __forceinline__ [\w:]+ " + name + r"\(.*?^}\n", s, re.S | re.M)
    assert m, name
    s = s[: m.start()] + body + s[m.end():]
assert "asm" not in s.replace("emu::", ""), "PTX left in attention_common.cuh"
open(p, "w").write(s)

p = os.path.join(out, "src/backend/cuda/pdl.cuh")
s = open(p).read()
s = s.replace("cfg.gridDim = grid;", "(void)grid;").replace("cfg.blockDim = block;", "(void)block;")
open(p, "w").write(s)

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^;<>]*(?:<[^;<>]*>[^;<>]*)*>)?)\s*<<<(.*?)>>>\s*\(", re.S)
SMEM = re.compile(r"extern __shared__ __align__\(16\) unsigned char smem_raw\[\];")
for root, _, files in os.walk(out):
    for f in files:
        if not f.endswith((".cu", ".cuh")):
            continue
        path = os.path.join(root, f)
        s = open(path).read()
        s2 = LAUNCH.sub(lambda m: f"::emu::launch(::emu::Cfg({m.group(2)}), {m.group(1)}, ", s)
        s2 = SMEM.sub("unsigned char* smem_raw = ::emu::smem();", s2)
        if s2 != s:
            open(path, "w").write(s2)
