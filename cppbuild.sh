#!/usr/bin/env bash
# Configures, builds, tests (ctest) and installs the native engine for one platform.
# mvn runs it in the initialize phase; it can be run by hand the same way:
#
#   ./cppbuild.sh --dnnl-root target/dnnl/org/bytedeco/dnnl/linux-x86_64 \
#                 --build-dir target/cmake --install-dir target/native
#
# Options:
#   --dnnl-root DIR     oneDNN headers and libdnnl.so.3 (default: the folder mvn unpacks)
#   --build-dir DIR     CMake build tree (default target/cmake); reused, so rebuilds are incremental
#   --install-dir DIR   install prefix (default target/native): lib/libhybrimoe.so, include/
#   --cuda AUTO|ON|OFF  CUDA backend (default AUTO: on where nvcc is found, HMOE_WITH_CUDA env too)
#   --sanitize LIST     -fsanitize list for library and tests, e.g. address,undefined
#   --skip-tests        build and install without running ctest
#   --no-install        build and test only
set -euo pipefail
cd "$(dirname "$0")"

platform="${JAVACPP_PLATFORM:-linux-x86_64}"
dnnl_root="target/dnnl/org/bytedeco/dnnl/${platform}"
build_dir="target/cmake"
install_dir="target/native"
cuda="${HMOE_WITH_CUDA:-AUTO}"
sanitize=""
run_tests=1
install=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dnnl-root) dnnl_root="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --install-dir) install_dir="$2"; shift 2 ;;
    --cuda) cuda="$2"; shift 2 ;;
    --sanitize) sanitize="$2"; shift 2 ;;
    --skip-tests) run_tests=0; shift ;;
    --no-install) install=0; shift ;;
    *) echo "cppbuild.sh: unknown option '$1' (see the comment at the top of this file)" >&2; exit 2 ;;
  esac
done

if [[ ! -f "${dnnl_root}/include/oneapi/dnnl/dnnl.h" ]]; then
  echo "cppbuild.sh: oneDNN not found at '${dnnl_root}'; run 'mvn initialize' (it unpacks the dnnl jar) or pass --dnnl-root" >&2
  exit 2
fi
dnnl_root="$(cd "${dnnl_root}" && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"

generator=()
if command -v ninja >/dev/null 2>&1 && [[ ! -f "${build_dir}/Makefile" ]]; then generator=(-G Ninja); fi

cmake -S . -B "${build_dir}" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" \
  -DCMAKE_INSTALL_PREFIX="$(mkdir -p "${install_dir}" && cd "${install_dir}" && pwd)" \
  -DDNNL_ROOT="${dnnl_root}" -DHMOE_WITH_CUDA="${cuda}" -DHMOE_SANITIZE="${sanitize}"
cmake --build "${build_dir}" --parallel "${jobs}"
if [[ ${run_tests} -eq 1 ]]; then
  (cd "${build_dir}" && ctest --output-on-failure --parallel "${jobs}")
fi
if [[ ${install} -eq 1 ]]; then
  cmake --install "${build_dir}" >/dev/null
fi
