// Internal: what other parts of the engine may read of an expert layer (cpu_moe.cpp owns it).
#pragma once

#include <cstdint>

#include "hybrimoe/cpu_moe.h"

namespace hmoe {

// Expert e's weights as stored (gate, up, down) and, for quantized formats, their scales (null
// otherwise). HMOE_ERR_INVALID_ARGUMENT for e out of range, HMOE_ERR_STATE when e has no weights.
void expert_pointers(const hmoe_expert_layer_t* layer, int64_t e, const void* w[3], const float* s[3]);

}  // namespace hmoe
