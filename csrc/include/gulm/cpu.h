// The one CPU instruction-set selector of the kernel layer (k-mer encoder and LSTM pointwise
// passes alike).
//
// Kernels compile their hot loops for several x86 levels with function-level target
// attributes (the build stays portable: no -march=native) and pick one at run time through
// cpu_isa(). The level can be capped for tests and A/B timing with set_cpu_isa(); only the
// bindings call it (they read GULM_CPU_ISA); the kernel layer never reads the environment.
#pragma once
#include <cstdint>

namespace gulm {

// Vector code paths in increasing order. A level is usable when the CPU has all of its
// features: Avx2 = AVX2 + FMA + BMI2 (Haswell, Zen 1 and later); Avx512 = AVX-512 F, BW,
// VL, DQ (Skylake-SP, Zen 4 and later). A kernel may need more for its own top path (the
// k-mer AVX-512 encoder also needs VBMI) and then falls back to the level below.
enum class CpuIsa : int32_t { Auto = 0, Baseline = 1, Avx2 = 2, Avx512 = 3 };

struct CpuFeatures {
  bool avx2 = false, fma = false, bmi2 = false;
  bool avx512 = false;  // F, BW, VL and DQ together
  bool avx512_vbmi = false;
};

// Detected once (CPUID); all false off x86.
const CpuFeatures& cpu_features();
// The highest level this CPU supports (never Auto).
CpuIsa cpu_best_isa();
// Caps every kernel's level: Auto removes the cap; a level above cpu_best_isa() is clamped.
// Thread-safe (a relaxed atomic): set it before launching work, not during.
void set_cpu_isa(CpuIsa cap);
// The level in use: min(cpu_best_isa(), cap). Never Auto.
CpuIsa cpu_isa();
// The level for a per-call request: Auto -> cpu_isa(), otherwise min(requested, cpu_isa()).
CpuIsa cpu_isa_for(CpuIsa requested);
// "auto", "baseline", "avx2", "avx512".
const char* cpu_isa_name(CpuIsa isa);
// Parses a level name ("scalar" is accepted for "baseline"); false for anything else.
bool parse_cpu_isa(const char* name, CpuIsa* out);

}  // namespace gulm
