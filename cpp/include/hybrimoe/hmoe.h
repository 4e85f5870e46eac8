/*
 * hybrimoe engine: the C ABI.
 *
 * This header set is the whole contract between Java (through JavaCPP) and the native engine.
 * Plain C types only; every function returns an int status (HMOE_OK = 0, negative on error) and
 * leaves a message for hmoe_last_error() on failure. No function aborts, exits or lets a C++
 * exception or a CUDA error escape: whatever goes wrong comes back as a status.
 *
 * Conventions
 * - Objects are opaque handles: hmoe_<object>_t*, created by hmoe_<object>_create and released by
 *   hmoe_<object>_free (free accepts NULL).
 * - Buffers are caller-owned unless a function says otherwise; the engine never keeps a pointer
 *   past the call that received it unless documented.
 * - Shapes are written as [rows, cols], row-major.
 * - Thread-safety is stated per function. "Any thread" means the function touches no shared
 *   mutable state; "one thread per handle" means calls on the same handle must not overlap.
 */
#ifndef HYBRIMOE_HMOE_H
#define HYBRIMOE_HMOE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define HMOE_API __declspec(dllexport)
#else
#define HMOE_API __attribute__((visibility("default")))
#endif

/* ---- status codes ----------------------------------------------------------------------- */

#define HMOE_OK 0
#define HMOE_ERR_INVALID_ARGUMENT (-1)  /* a null pointer, a negative size, an unknown enum */
#define HMOE_ERR_UNSUPPORTED (-2)       /* the CPU or build lacks what was asked (a forced ISA) */
#define HMOE_ERR_OUT_OF_MEMORY (-3)     /* host or device allocation failed; recoverable */
#define HMOE_ERR_CUDA (-4)              /* a CUDA runtime call failed; message has its name */
#define HMOE_ERR_INTERNAL (-5)          /* an unexpected C++ exception; message has its what() */
#define HMOE_ERR_NO_DEVICE (-6)         /* no such device (index out of range, no driver) */
#define HMOE_ERR_STATE (-7)             /* call not valid in the object's current state */

/* The message of the last failed call on this thread, "" if none. The pointer stays valid until
 * the next hmoe_* call on the same thread. Any thread. */
HMOE_API const char* hmoe_last_error(void);

/* Clears this thread's last error. Any thread. */
HMOE_API void hmoe_clear_error(void);

/* Engine version as "MAJOR.MINOR.PATCH". Static string. Any thread. */
HMOE_API const char* hmoe_version(void);

/* ---- CPU features and kernel variant ------------------------------------------------------ */

/* Bits of hmoe_cpu_features(): what the CPU and the OS (saved register state) support. */
#define HMOE_CPU_AVX2 (1u << 0)        /* AVX2 and FMA3 */
#define HMOE_CPU_AVX512F (1u << 1)     /* AVX-512 F, BW, VL, DQ together */
#define HMOE_CPU_AVX512_BF16 (1u << 2) /* VDPBF16PS, VCVTNE2PS2BF16 */
#define HMOE_CPU_AVX512_VNNI (1u << 3) /* VPDPBUSD */
#define HMOE_CPU_AMX (1u << 4)         /* AMX tile, bf16 and int8, with the OS permission granted */
#define HMOE_CPU_F16C (1u << 5)        /* half-precision conversions */

/* Detected feature bits (HMOE_CPU_*) into *out. Any thread. */
HMOE_API int hmoe_cpu_features(uint32_t* out);

/* Kernel variants, best last. */
#define HMOE_KERNEL_SCALAR 0
#define HMOE_KERNEL_AVX2 1
#define HMOE_KERNEL_AVX512 2

/* The variant every CPU kernel dispatches to. Chosen once at library load: the best the CPU
 * supports, unless the environment variable HMOE_KERNEL (scalar|avx2|avx512|auto) forces one;
 * a forced variant the CPU cannot run is ignored and reported by hmoe_kernel_variant_note.
 * Any thread. */
HMOE_API int hmoe_kernel_variant(int32_t* out);

/* Forces the variant (HMOE_KERNEL_*), or -1 for the best supported. HMOE_ERR_UNSUPPORTED when the
 * CPU lacks the features. Not safe while kernels run on other threads: call at start-up. */
HMOE_API int hmoe_kernel_variant_force(int32_t variant);

/* Why the current variant was chosen ("auto: best supported", "forced by HMOE_KERNEL=avx2", ...).
 * Static storage, valid until the next force. Any thread. */
HMOE_API const char* hmoe_kernel_variant_note(void);

/* Physical cores (not hardware threads) available to this process; >= 1. Any thread. */
HMOE_API int hmoe_cpu_physical_cores(int32_t* out);

/* ---- oneDNN --------------------------------------------------------------------------------- */

/* oneDNN's version the engine is linked against (major, minor, patch). Any thread. */
HMOE_API int hmoe_onednn_version(int32_t* major, int32_t* minor, int32_t* patch);

/* ---- CUDA devices --------------------------------------------------------------------------- */

/* 1 if this library was built with CUDA, else 0. Any thread. */
HMOE_API int hmoe_cuda_compiled(void);

/* Number of usable CUDA devices into *out. A build without CUDA, a machine without a driver or
 * without a GPU gives 0 and HMOE_OK: absence is not an error. The reason for 0 is in
 * hmoe_cuda_note(). Any thread. */
HMOE_API int hmoe_cuda_device_count(int32_t* out);

/* Why the device count is what it is ("built without CUDA", "no CUDA driver", "2 devices").
 * Static storage. Any thread. */
HMOE_API const char* hmoe_cuda_note(void);

/* Properties of device `index`. name: caller buffer of name_len bytes, NUL-terminated on return.
 * Memory in bytes; free memory is read now (it creates the device's context if none exists).
 * HMOE_ERR_NO_DEVICE when index is out of range. Any thread. */
HMOE_API int hmoe_cuda_device_info(int32_t index, char* name, int32_t name_len,
                                   int64_t* total_mem, int64_t* free_mem, int32_t* cc_major,
                                   int32_t* cc_minor, int32_t* multiprocessors);

/* Runs a self-test on device `index`: f32 -> bf16 conversion of n values on the GPU, compared
 * bit for bit with the CPU conversion. *mismatches gets the count of differing values. Any
 * thread; uses its own stream. */
HMOE_API int hmoe_cuda_selftest(int32_t index, int64_t n, int64_t* mismatches);

/* ---- engine ------------------------------------------------------------------------------- */

typedef struct hmoe_engine hmoe_engine_t;

/* Creates an engine with its CPU worker pool. threads: threads CPU kernels run on, the calling
 * thread included (threads - 1 workers are started), 0 = one per physical core. *out receives
 * the handle, owned by the caller, released with hmoe_engine_free (which joins the workers).
 * Any thread. */
HMOE_API int hmoe_engine_create(int32_t threads, hmoe_engine_t** out);

/* Releases the engine; NULL is accepted. Must not overlap any other call on the handle. */
HMOE_API void hmoe_engine_free(hmoe_engine_t* engine);

/* Worker threads the engine runs CPU kernels on. Any thread. */
HMOE_API int hmoe_engine_threads(const hmoe_engine_t* engine, int32_t* out);

/* ---- conversions (used by the loaders and tests; dispatch on the kernel variant) ------------ */

/* dst[i] = bf16(src[i]), round to nearest even, NaN kept quiet. src: [n] f32; dst: [n] uint16.
 * Buffers may not overlap. Any thread. */
HMOE_API int hmoe_convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n);

/* dst[i] = f32(src[i]), exact. src: [n] bf16 bits; dst: [n] f32. Any thread. */
HMOE_API int hmoe_convert_bf16_to_f32(const uint16_t* src, float* dst, int64_t n);

#ifdef __cplusplus
}
#endif

/* The CPU MoE operator: expert layers, hmoe_cpu_moe_run. */
#include "hybrimoe/cpu_moe.h"

#endif /* HYBRIMOE_HMOE_H */
