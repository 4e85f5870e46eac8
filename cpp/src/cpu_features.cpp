// CPU feature detection, kernel-variant selection and the physical core count.
//
// Why not __builtin_cpu_supports: it does not check that the OS saves the zmm/tile state, and it
// knows nothing of the AMX permission Linux requires before the first tile instruction.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "internal/cpu.hpp"
#include "internal/status.hpp"

namespace hmoe {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

uint32_t detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  if (!osxsave) return 0;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xE6) == 0xE6;
  const bool tile_os = (xcr0 & 0x60000) == 0x60000;

  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return 0;
  unsigned b7, c7, d7, a7;
  __cpuid_count(7, 0, a7, b7, c7, d7);
  unsigned a71 = 0, b71, c71, d71;
  if (a7 >= 1) __cpuid_count(7, 1, a71, b71, c71, d71);

  uint32_t f = 0;
  if (ymm_os && f16c) f |= HMOE_CPU_F16C;
  if (ymm_os && fma && (b7 & (1u << 5))) f |= HMOE_CPU_AVX2;
  const bool avx512 = (b7 & (1u << 16)) && (b7 & (1u << 17)) && (b7 & (1u << 30)) && (b7 & (1u << 31));
  if (zmm_os && avx512) {
    f |= HMOE_CPU_AVX512F;
    if (c7 & (1u << 11)) f |= HMOE_CPU_AVX512_VNNI;
    if (a71 & (1u << 5)) f |= HMOE_CPU_AVX512_BF16;
  }
  const bool amx = (d7 & (1u << 24)) && (d7 & (1u << 22)) && (d7 & (1u << 25));
  if (amx && tile_os) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    // ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): without it the first tile
    // instruction raises SIGILL.
    if (syscall(SYS_arch_prctl, 0x1023, 18) == 0) f |= HMOE_CPU_AMX;
#endif
  }
  return f;
}
#else
uint32_t detect() { return 0; }
#endif

const char* variant_name(int v) {
  switch (v) {
    case HMOE_KERNEL_SCALAR: return "scalar";
    case HMOE_KERNEL_AVX2: return "avx2";
    case HMOE_KERNEL_AVX512: return "avx512";
    default: return "?";
  }
}

int best_variant(uint32_t f) {
  if (f & HMOE_CPU_AVX512F) return HMOE_KERNEL_AVX512;
  if (f & HMOE_CPU_AVX2) return HMOE_KERNEL_AVX2;
  return HMOE_KERNEL_SCALAR;
}

// Empty when supported, else the missing feature's name.
const char* missing_for(int v, uint32_t f) {
  if (v == HMOE_KERNEL_AVX512 && !(f & HMOE_CPU_AVX512F)) return "avx512f";
  if (v == HMOE_KERNEL_AVX2 && !(f & HMOE_CPU_AVX2)) return "avx2+fma";
  return "";
}

struct VariantState {
  std::atomic<int> variant{HMOE_KERNEL_SCALAR};
  char note[256] = {0};
  VariantState() {
    const uint32_t f = cpu_features();
    int v = best_variant(f);
    std::snprintf(note, sizeof note, "auto: best the CPU supports");
    const char* env = std::getenv("HMOE_KERNEL");
    if (env != nullptr && *env != '\0' && std::strcmp(env, "auto") != 0) {
      int want = -1;
      for (int i = HMOE_KERNEL_SCALAR; i <= HMOE_KERNEL_AVX512; ++i)
        if (std::strcmp(env, variant_name(i)) == 0) want = i;
      if (want < 0) {
        std::snprintf(note, sizeof note,
                      "HMOE_KERNEL=%.32s not recognised (scalar|avx2|avx512|auto); using %s", env,
                      variant_name(v));
      } else if (*missing_for(want, f) != '\0') {
        std::snprintf(note, sizeof note, "HMOE_KERNEL=%s ignored: CPU lacks %s; using %s", env,
                      missing_for(want, f), variant_name(v));
      } else {
        v = want;
        std::snprintf(note, sizeof note, "forced by HMOE_KERNEL=%s", env);
      }
    }
    variant.store(v, std::memory_order_relaxed);
  }
};

VariantState& variant_state() {
  static VariantState s;
  return s;
}

int count_physical_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  std::set<std::pair<int, int>> cores;  // (package, core)
  int logical = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++logical;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(base + "core_id"), pkg(base + "physical_package_id");
    int c = -1, p = -1;
    if (!(core >> c) || !(pkg >> p)) return logical > 0 ? CPU_COUNT(&set) : 1;
    cores.emplace(p, c);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
#else
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
#endif
}

}  // namespace

uint32_t cpu_features() {
  static const uint32_t f = detect();
  return f;
}

int kernel_variant() { return variant_state().variant.load(std::memory_order_relaxed); }

int physical_cores() {
  static const int n = count_physical_cores();
  return n;
}

}  // namespace hmoe

extern "C" {

int hmoe_cpu_features(uint32_t* out) {
  return hmoe::guarded("hmoe_cpu_features", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = hmoe::cpu_features();
  });
}

int hmoe_kernel_variant(int32_t* out) {
  return hmoe::guarded("hmoe_kernel_variant", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = hmoe::kernel_variant();
  });
}

int hmoe_kernel_variant_force(int32_t variant) {
  return hmoe::guarded("hmoe_kernel_variant_force", [&] {
    auto& s = hmoe::variant_state();
    const uint32_t f = hmoe::cpu_features();
    if (variant == -1) {
      s.variant.store(hmoe::best_variant(f));
      std::snprintf(s.note, sizeof s.note, "auto: best the CPU supports");
      return;
    }
    if (variant < HMOE_KERNEL_SCALAR || variant > HMOE_KERNEL_AVX512)
      hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "unknown kernel variant %d (0 scalar, 1 avx2, 2 avx512, -1 auto)",
                 variant);
    const char* missing = hmoe::missing_for(variant, f);
    if (*missing != '\0')
      hmoe::fail(HMOE_ERR_UNSUPPORTED, "kernel variant %s needs %s, which this CPU lacks",
                 hmoe::variant_name(variant), missing);
    s.variant.store(variant);
    std::snprintf(s.note, sizeof s.note, "forced to %s by the caller", hmoe::variant_name(variant));
  });
}

const char* hmoe_kernel_variant_note(void) { return hmoe::variant_state().note; }

int hmoe_cpu_physical_cores(int32_t* out) {
  return hmoe::guarded("hmoe_cpu_physical_cores", [&] {
    HMOE_REQUIRE_PTR(out);
    *out = hmoe::physical_cores();
  });
}

}  // extern "C"
