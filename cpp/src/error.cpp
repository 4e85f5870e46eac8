// Per-thread last-error storage and the formatting helpers of internal/status.hpp.
#include <cstdio>
#include <cstring>

#include "internal/status.hpp"

namespace hmoe {
namespace {
// Fixed-size so that recording an error never allocates (it may follow a bad_alloc).
thread_local char t_last_error[1024] = {0};
}  // namespace

std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return std::string(buf);
}

void fail(int status, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Error(status, buf);
}

void set_last_error(const char* fn, const char* msg) {
  std::snprintf(t_last_error, sizeof t_last_error, "%s: %s", fn, msg);
}

void clear_last_error() { t_last_error[0] = '\0'; }

}  // namespace hmoe

extern "C" {

const char* hmoe_last_error(void) { return hmoe::t_last_error; }

void hmoe_clear_error(void) { hmoe::clear_last_error(); }

const char* hmoe_version(void) { return HMOE_VERSION_STRING; }

}  // extern "C"
