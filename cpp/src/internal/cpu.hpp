// Internal: CPU feature detection and the kernel variant every CPU kernel dispatches on.
#pragma once

#include <cstdint>

namespace hmoe {

// HMOE_CPU_* bits, detected once (cpuid + xgetbv + the Linux AMX permission request).
uint32_t cpu_features();

// HMOE_KERNEL_* currently selected; cheap (one relaxed atomic load).
int kernel_variant();

// Physical cores in this process's affinity mask, >= 1.
int physical_cores();

}  // namespace hmoe
