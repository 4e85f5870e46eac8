// Every function of the public headers must be exported from libhybrimoe: this executable takes
// the address of each, so a function compiled with hidden visibility (a .cu file that forgot to
// include its header, say) fails to link here instead of failing at run time inside the JVM.
// Regenerate the list when the headers change (it is checked against them below).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "check.hpp"
#include "hybrimoe/dense.h"
#include "hybrimoe/dense_device.h"
#include "hybrimoe/device.h"
#include "hybrimoe/hmoe.h"
#include "hybrimoe/hybrid.h"

static const void* const kExports[] = {
    reinterpret_cast<const void*>(&hmoe_last_error),
    reinterpret_cast<const void*>(&hmoe_clear_error),
    reinterpret_cast<const void*>(&hmoe_version),
    reinterpret_cast<const void*>(&hmoe_cpu_features),
    reinterpret_cast<const void*>(&hmoe_kernel_variant),
    reinterpret_cast<const void*>(&hmoe_kernel_variant_force),
    reinterpret_cast<const void*>(&hmoe_kernel_variant_note),
    reinterpret_cast<const void*>(&hmoe_cpu_physical_cores),
    reinterpret_cast<const void*>(&hmoe_onednn_version),
    reinterpret_cast<const void*>(&hmoe_cuda_compiled),
    reinterpret_cast<const void*>(&hmoe_cuda_device_count),
    reinterpret_cast<const void*>(&hmoe_cuda_note),
    reinterpret_cast<const void*>(&hmoe_cuda_device_info),
    reinterpret_cast<const void*>(&hmoe_cuda_selftest),
    reinterpret_cast<const void*>(&hmoe_engine_create),
    reinterpret_cast<const void*>(&hmoe_engine_free),
    reinterpret_cast<const void*>(&hmoe_engine_threads),
    reinterpret_cast<const void*>(&hmoe_convert_f32_to_bf16),
    reinterpret_cast<const void*>(&hmoe_convert_bf16_to_f32),
    reinterpret_cast<const void*>(&hmoe_expert_format_row_bytes),
    reinterpret_cast<const void*>(&hmoe_expert_layer_create),
    reinterpret_cast<const void*>(&hmoe_expert_layer_free),
    reinterpret_cast<const void*>(&hmoe_expert_layer_set_expert),
    reinterpret_cast<const void*>(&hmoe_expert_layer_quantize_expert),
    reinterpret_cast<const void*>(&hmoe_expert_layer_dequantize),
    reinterpret_cast<const void*>(&hmoe_expert_layer_info),
    reinterpret_cast<const void*>(&hmoe_cpu_moe_run),
    reinterpret_cast<const void*>(&hmoe_engine_set_onednn_min_tokens),
    reinterpret_cast<const void*>(&hmoe_cpu_bandwidth_probe),
    reinterpret_cast<const void*>(&hmoe_onednn_ffn_time),
    reinterpret_cast<const void*>(&hmoe_expert_bytes),
    reinterpret_cast<const void*>(&hmoe_device_create_cuda),
    reinterpret_cast<const void*>(&hmoe_device_create_emulated),
    reinterpret_cast<const void*>(&hmoe_device_emulated_delays),
    reinterpret_cast<const void*>(&hmoe_device_cuda_max_slots),
    reinterpret_cast<const void*>(&hmoe_device_free),
    reinterpret_cast<const void*>(&hmoe_device_describe),
    reinterpret_cast<const void*>(&hmoe_device_register_host),
    reinterpret_cast<const void*>(&hmoe_device_unregister_host),
    reinterpret_cast<const void*>(&hmoe_device_load),
    reinterpret_cast<const void*>(&hmoe_device_slot_state),
    reinterpret_cast<const void*>(&hmoe_device_moe_run),
    reinterpret_cast<const void*>(&hmoe_device_wait),
    reinterpret_cast<const void*>(&hmoe_device_time_moe),
    reinterpret_cast<const void*>(&hmoe_router_create),
    reinterpret_cast<const void*>(&hmoe_router_free),
    reinterpret_cast<const void*>(&hmoe_router_run),
    reinterpret_cast<const void*>(&hmoe_cuda_bench_h2d),
    reinterpret_cast<const void*>(&hmoe_cuda_bench_d2d),
    reinterpret_cast<const void*>(&hmoe_dense_linear),
    reinterpret_cast<const void*>(&hmoe_dense_linear_heads),
    reinterpret_cast<const void*>(&hmoe_kv_cache_create_typed),
    reinterpret_cast<const void*>(&hmoe_dense_attention_window),
    reinterpret_cast<const void*>(&hmoe_dense_rmsnorm),
    reinterpret_cast<const void*>(&hmoe_dense_rope),
    reinterpret_cast<const void*>(&hmoe_kv_cache_create),
    reinterpret_cast<const void*>(&hmoe_kv_cache_create_shared_kv),
    reinterpret_cast<const void*>(&hmoe_kv_cache_free),
    reinterpret_cast<const void*>(&hmoe_kv_cache_length),
    reinterpret_cast<const void*>(&hmoe_kv_cache_truncate),
    reinterpret_cast<const void*>(&hmoe_dense_attention),
    reinterpret_cast<const void*>(&hmoe_hybrid_create),
    reinterpret_cast<const void*>(&hmoe_hybrid_free),
    reinterpret_cast<const void*>(&hmoe_hybrid_set_layer),
    reinterpret_cast<const void*>(&hmoe_hybrid_preload),
    reinterpret_cast<const void*>(&hmoe_hybrid_run),
    reinterpret_cast<const void*>(&hmoe_hybrid_sync),
    reinterpret_cast<const void*>(&hmoe_clock_ms),
    reinterpret_cast<const void*>(&hmoe_dense_device_create_cuda),
    reinterpret_cast<const void*>(&hmoe_dense_device_create_emulated),
    reinterpret_cast<const void*>(&hmoe_dense_device_free),
    reinterpret_cast<const void*>(&hmoe_dense_device_describe),
    reinterpret_cast<const void*>(&hmoe_dense_device_upload),
    reinterpret_cast<const void*>(&hmoe_dense_device_linears),
    reinterpret_cast<const void*>(&hmoe_dense_device_mlp),
    reinterpret_cast<const void*>(&hmoe_dense_device_add_gqa),
    reinterpret_cast<const void*>(&hmoe_dense_device_add_mla),
    reinterpret_cast<const void*>(&hmoe_dense_device_kv_create),
    reinterpret_cast<const void*>(&hmoe_dense_device_kv_free),
    reinterpret_cast<const void*>(&hmoe_dense_device_kv_truncate),
    reinterpret_cast<const void*>(&hmoe_dense_device_kv_length),
    reinterpret_cast<const void*>(&hmoe_dense_device_attend),
};

static const char* const kNames[] = {
    "hmoe_last_error",
    "hmoe_clear_error",
    "hmoe_version",
    "hmoe_cpu_features",
    "hmoe_kernel_variant",
    "hmoe_kernel_variant_force",
    "hmoe_kernel_variant_note",
    "hmoe_cpu_physical_cores",
    "hmoe_onednn_version",
    "hmoe_cuda_compiled",
    "hmoe_cuda_device_count",
    "hmoe_cuda_note",
    "hmoe_cuda_device_info",
    "hmoe_cuda_selftest",
    "hmoe_engine_create",
    "hmoe_engine_free",
    "hmoe_engine_threads",
    "hmoe_convert_f32_to_bf16",
    "hmoe_convert_bf16_to_f32",
    "hmoe_expert_format_row_bytes",
    "hmoe_expert_layer_create",
    "hmoe_expert_layer_free",
    "hmoe_expert_layer_set_expert",
    "hmoe_expert_layer_quantize_expert",
    "hmoe_expert_layer_dequantize",
    "hmoe_expert_layer_info",
    "hmoe_cpu_moe_run",
    "hmoe_engine_set_onednn_min_tokens",
    "hmoe_cpu_bandwidth_probe",
    "hmoe_onednn_ffn_time",
    "hmoe_expert_bytes",
    "hmoe_device_create_cuda",
    "hmoe_device_create_emulated",
    "hmoe_device_emulated_delays",
    "hmoe_device_cuda_max_slots",
    "hmoe_device_free",
    "hmoe_device_describe",
    "hmoe_device_register_host",
    "hmoe_device_unregister_host",
    "hmoe_device_load",
    "hmoe_device_slot_state",
    "hmoe_device_moe_run",
    "hmoe_device_wait",
    "hmoe_device_time_moe",
    "hmoe_router_create",
    "hmoe_router_free",
    "hmoe_router_run",
    "hmoe_cuda_bench_h2d",
    "hmoe_cuda_bench_d2d",
    "hmoe_dense_linear",
    "hmoe_dense_linear_heads",
    "hmoe_kv_cache_create_typed",
    "hmoe_dense_attention_window",
    "hmoe_dense_rmsnorm",
    "hmoe_dense_rope",
    "hmoe_kv_cache_create",
    "hmoe_kv_cache_create_shared_kv",
    "hmoe_kv_cache_free",
    "hmoe_kv_cache_length",
    "hmoe_kv_cache_truncate",
    "hmoe_dense_attention",
    "hmoe_hybrid_create",
    "hmoe_hybrid_free",
    "hmoe_hybrid_set_layer",
    "hmoe_hybrid_preload",
    "hmoe_hybrid_run",
    "hmoe_hybrid_sync",
    "hmoe_clock_ms",
    "hmoe_dense_device_create_cuda",
    "hmoe_dense_device_create_emulated",
    "hmoe_dense_device_free",
    "hmoe_dense_device_describe",
    "hmoe_dense_device_upload",
    "hmoe_dense_device_linears",
    "hmoe_dense_device_mlp",
    "hmoe_dense_device_add_gqa",
    "hmoe_dense_device_add_mla",
    "hmoe_dense_device_kv_create",
    "hmoe_dense_device_kv_free",
    "hmoe_dense_device_kv_truncate",
    "hmoe_dense_device_kv_length",
    "hmoe_dense_device_attend",
};

int main(int argc, char** argv) {
  for (const void* p : kExports) CHECK(p != nullptr);
  // With the headers' folder as argument, also check that the list above is complete.
  for (int a = 1; a < argc; ++a) {
    std::ifstream in(argv[a]);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::regex fn(R"(HMOE_API\s+[\w\s\*]+?\b(hmoe_\w+)\s*\()");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), fn); it != std::sregex_iterator(); ++it) {
      bool listed = false;
      for (const char* n : kNames) listed |= (*it)[1].str() == n;
      if (!listed) std::fprintf(stderr, "%s declares %s, missing from test-abi-exports.cpp\n", argv[a], (*it)[1].str().c_str());
      CHECK(listed);
    }
  }
  std::printf("%zu exported functions\n", sizeof kExports / sizeof kExports[0]);
  return TEST_RESULT();
}
