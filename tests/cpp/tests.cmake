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
         ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/hmoe.h ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include/hybrimoe/device.h)
set_tests_properties(abi-exports PROPERTIES LABELS cpu)
