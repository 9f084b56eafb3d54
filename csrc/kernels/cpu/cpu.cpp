// CPU feature detection and the ISA cap (contract: gulm/cpu.h).
#include "gulm/cpu.h"

#include <atomic>
#include <cstring>

namespace gulm {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.bmi2 = __builtin_cpu_supports("bmi2");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  f.avx512_vbmi = f.avx512 && __builtin_cpu_supports("avx512vbmi");
#endif
  return f;
}

std::atomic<int32_t> g_cap{int32_t(CpuIsa::Auto)};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

CpuIsa cpu_best_isa() {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.bmi2;
  if (avx2 && f.avx512) return CpuIsa::Avx512;
  return avx2 ? CpuIsa::Avx2 : CpuIsa::Baseline;
}

void set_cpu_isa(CpuIsa cap) { g_cap.store(int32_t(cap), std::memory_order_relaxed); }

CpuIsa cpu_isa() { return cpu_isa_for(CpuIsa::Auto); }

CpuIsa cpu_isa_for(CpuIsa requested) {
  const CpuIsa cap = CpuIsa(g_cap.load(std::memory_order_relaxed));
  int32_t level = int32_t(cpu_best_isa());
  if (cap != CpuIsa::Auto && int32_t(cap) < level) level = int32_t(cap);
  if (requested != CpuIsa::Auto && int32_t(requested) < level) level = int32_t(requested);
  return CpuIsa(level);
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Auto: return "auto";
    case CpuIsa::Baseline: return "baseline";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

bool parse_cpu_isa(const char* name, CpuIsa* out) {
  struct Entry {
    const char* name;
    CpuIsa isa;
  };
  static const Entry kNames[] = {{"auto", CpuIsa::Auto},     {"baseline", CpuIsa::Baseline},
                                 {"scalar", CpuIsa::Baseline}, {"avx2", CpuIsa::Avx2},
                                 {"avx512", CpuIsa::Avx512}};
  for (const Entry& e : kNames) {
    if (name && !std::strcmp(name, e.name)) {
      *out = e.isa;
      return true;
    }
  }
  return false;
}

}  // namespace gulm
