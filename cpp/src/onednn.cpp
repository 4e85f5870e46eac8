// oneDNN queries. The engine links libdnnl.so.3 from the org.bytedeco dnnl jar (see pom.xml).
#include <oneapi/dnnl/dnnl.h>

#include "internal/status.hpp"

extern "C" int hmoe_onednn_version(int32_t* major, int32_t* minor, int32_t* patch) {
  return hmoe::guarded("hmoe_onednn_version", [&] {
    HMOE_REQUIRE_PTR(major);
    HMOE_REQUIRE_PTR(minor);
    HMOE_REQUIRE_PTR(patch);
    const dnnl_version_t* v = dnnl_version();
    if (v == nullptr) hmoe::fail(HMOE_ERR_INTERNAL, "dnnl_version() returned NULL");
    *major = v->major;
    *minor = v->minor;
    *patch = v->patch;
  });
}
