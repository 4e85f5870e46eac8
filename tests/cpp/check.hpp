// Minimal assertion helpers for the ctest executables: a failed CHECK prints where and why and
// makes main return 1; SKIP exits 77, which ctest reports as skipped (SKIP_RETURN_CODE).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace hmoe_test {
inline int& failures() {
  static int n = 0;
  return n;
}
}  // namespace hmoe_test

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++hmoe_test::failures();                                                    \
    }                                                                             \
  } while (0)

#define CHECK_OK(call)                                                                         \
  do {                                                                                         \
    int st_ = (call);                                                                          \
    if (st_ != HMOE_OK) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, st_,       \
                   hmoe_last_error());                                                         \
      ++hmoe_test::failures();                                                                 \
    }                                                                                          \
  } while (0)

#define TEST_RESULT() (hmoe_test::failures() == 0 ? (std::printf("PASS\n"), 0) : 1)
#define SKIP(why) \
  do { std::printf("SKIP: %s\n", why); std::exit(77); } while (0)
