/*
 * backend_cuda.h — the C entry points of cuda/moe_pg_cuda.so.
 *
 * The library is never linked into moe_pg.so: the engine's loader
 * (src/engine/backend_loader.c) opens it with dlopen when a GPU is asked for
 * and looks these symbols up by name.  Their types are the loader's
 * moe_cuda_*_fn typedefs; backend_cuda.cu checks at compile time that they
 * agree.
 */
#ifndef MOE_BACKEND_CUDA_H
#define MOE_BACKEND_CUDA_H

#include <stddef.h>

#include "backend.h"
#include "moe_status.h"

/* The library is built with hidden visibility; these alone are exported. */
#define MOE_CUDA_EXPORT __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C"
{
#endif

/* MOE_BACKEND_ABI as this library was compiled (backend.h). */
MOE_CUDA_EXPORT unsigned moe_cuda_abi(void);

/*
 * Number of CUDA devices this process can use.  0 when there is none, with
 * the reason (no driver, no device) in err->message; -1 on any other
 * failure, with err filled.  Initialises the CUDA runtime: never call it in
 * the postmaster.
 */
MOE_CUDA_EXPORT int moe_cuda_device_count(moe_error *err);

/* The device's name and memory in buf ("NVIDIA H100 80GB HBM3, 79.1 GiB,
 * sm_90"); returns 0, or -1 when the ordinal does not exist. */
MOE_CUDA_EXPORT int moe_cuda_device_name(int ordinal, char *buf, size_t len);

/*
 * A backend on device ordinal: one CUDA stream, one cuBLAS handle, and the
 * sticky error state of backend.h.  NULL with err filled on failure.  The
 * backend owns a CUDA context (the runtime's primary context) for the life
 * of the process.
 */
MOE_CUDA_EXPORT moe_backend *moe_cuda_backend_create(int device_ordinal, moe_error *err);

#ifdef __cplusplus
}
#endif

#endif
