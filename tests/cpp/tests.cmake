# ctest registrations: labels cpu / cuda; exit code 77 = skipped.
add_test(NAME cpu-smoke COMMAND test-cpu-smoke)
add_test(NAME cpu-smoke-no-avx512 COMMAND test-cpu-smoke)
set_tests_properties(cpu-smoke-no-avx512 PROPERTIES ENVIRONMENT "HMOE_KERNEL=avx2")
add_test(NAME cpu-smoke-scalar COMMAND test-cpu-smoke)
set_tests_properties(cpu-smoke-scalar PROPERTIES ENVIRONMENT "HMOE_KERNEL=scalar")
set_tests_properties(cpu-smoke cpu-smoke-no-avx512 cpu-smoke-scalar PROPERTIES LABELS cpu SKIP_RETURN_CODE 77)

add_test(NAME cuda-smoke COMMAND test-cuda-smoke)
set_tests_properties(cuda-smoke PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)
add_test(NAME cuda-device COMMAND test-cuda-device)
set_tests_properties(cuda-device PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)

add_test(NAME abi-exports COMMAND test-abi-exports
         ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/hmoe.h ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/cpu_moe.h
         ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/device.h
         ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/dense.h
         ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/hybrid.h
         ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/dense_device.h)
set_tests_properties(abi-exports PROPERTIES LABELS cpu)

# The CPU MoE operator: every variant the CPU has (cpu-moe), then each forced through HMOE_KERNEL
# (a variant the CPU lacks reports Skipped): on an AVX-512 machine cpu-moe-avx512 must pass.
add_test(NAME cpu-moe COMMAND test-cpu-moe)
add_test(NAME cpu-moe-scalar COMMAND test-cpu-moe)
set_tests_properties(cpu-moe-scalar PROPERTIES ENVIRONMENT "HMOE_KERNEL=scalar")
add_test(NAME cpu-moe-avx2 COMMAND test-cpu-moe)
set_tests_properties(cpu-moe-avx2 PROPERTIES ENVIRONMENT "HMOE_KERNEL=avx2")
add_test(NAME cpu-moe-avx512 COMMAND test-cpu-moe)
set_tests_properties(cpu-moe-avx512 PROPERTIES ENVIRONMENT "HMOE_KERNEL=avx512")
set_tests_properties(cpu-moe cpu-moe-scalar cpu-moe-avx2 cpu-moe-avx512 PROPERTIES LABELS cpu SKIP_RETURN_CODE 77)

add_test(NAME emulated-device COMMAND test-emulated-device)
set_tests_properties(emulated-device PROPERTIES LABELS cpu)

# Dense transformer operations (linear, RMSNorm, RoPE, KV-cached attention) against double references.
add_test(NAME dense COMMAND test-dense)
set_tests_properties(dense PROPERTIES LABELS cpu SKIP_RETURN_CODE 77)

# The hybrid layer executor on the emulated device: mixed plans equal all-CPU; refused plans.
add_test(NAME hybrid COMMAND test-hybrid)
set_tests_properties(hybrid PROPERTIES LABELS cpu)

# The engine's worker pool (an internal class, compiled into the test itself).
target_sources(test-pool PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/pool.cpp)
add_test(NAME pool COMMAND test-pool)
set_tests_properties(pool PROPERTIES LABELS cpu)

# Dense linears on a device: the host-emulated one always, CUDA where there is a GPU.
add_test(NAME dense-device COMMAND test-dense-device emulated)
set_tests_properties(dense-device PROPERTIES LABELS cpu)
add_test(NAME cuda-dense-device COMMAND test-dense-device cuda)
set_tests_properties(cuda-dense-device PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)

# Attention sublayers on a device (GQA, MLA, device KV caches) against a float64 reference.
add_test(NAME dense-attention COMMAND test-dense-attention emulated)
set_tests_properties(dense-attention PROPERTIES LABELS cpu)
add_test(NAME cuda-dense-attention COMMAND test-dense-attention cuda)
set_tests_properties(cuda-dense-attention PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)

# Every CPU test that runs kernels once more under each forced variant the CPU has (the plain
# registration above runs the best one, AVX-512 where present): the engine's rule makes every
# variant compute the same function, so the same tolerances hold (a forced variant the CPU lacks
# falls back and says so; AVX2 and scalar exist on every x86-64 CPU this project builds for).
foreach(variant avx2 scalar)
  foreach(t emulated-device hybrid)
    add_test(NAME ${t}-${variant} COMMAND test-${t})
    set_tests_properties(${t}-${variant} PROPERTIES LABELS cpu ENVIRONMENT "HMOE_KERNEL=${variant}")
  endforeach()
  foreach(t dense-device dense-attention)
    add_test(NAME ${t}-${variant} COMMAND test-${t} emulated)
    set_tests_properties(${t}-${variant} PROPERTIES LABELS cpu ENVIRONMENT "HMOE_KERNEL=${variant}")
  endforeach()
endforeach()
