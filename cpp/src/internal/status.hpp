// Internal: how every C entry point turns failures into status codes.
//
// Each extern "C" function body runs inside hmoe::guarded(name, fn). A thrown hmoe::Error carries
// its status; std::bad_alloc maps to HMOE_ERR_OUT_OF_MEMORY; anything else to
// HMOE_ERR_INTERNAL. The message "name: what" goes to the thread's last-error slot.
#pragma once

#include <cstdarg>
#include <new>
#include <stdexcept>
#include <string>

#include "hybrimoe/hmoe.h"

namespace hmoe {

// An error with a status code; thrown inside the engine, caught at the C boundary.
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// printf-style message builder (throws nothing but bad_alloc).
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void fail(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

void set_last_error(const char* fn, const char* msg);
void clear_last_error();

// Runs fn(); returns HMOE_OK or the status of whatever it threw, recording the message.
template <typename Fn>
int guarded(const char* fn_name, Fn&& fn) noexcept {
  try {
    clear_last_error();
    fn();
    return HMOE_OK;
  } catch (const Error& e) {
    set_last_error(fn_name, e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error(fn_name, "out of host memory");
    return HMOE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(fn_name, e.what());
    return HMOE_ERR_INTERNAL;
  } catch (...) {
    set_last_error(fn_name, "unknown exception");
    return HMOE_ERR_INTERNAL;
  }
}

// Argument checks that throw HMOE_ERR_INVALID_ARGUMENT naming the argument.
#define HMOE_REQUIRE_PTR(p) \
  do { if ((p) == nullptr) ::hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "%s must not be NULL", #p); } while (0)
#define HMOE_REQUIRE_NONNEG(n)                                                                \
  do {                                                                                        \
    if ((n) < 0)                                                                              \
      ::hmoe::fail(HMOE_ERR_INVALID_ARGUMENT, "%s must be >= 0, got %lld", #n, (long long)(n)); \
  } while (0)

}  // namespace hmoe
