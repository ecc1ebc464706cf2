/*
 * backend_loader.h — opening the CUDA backend (cuda/moe_pg_cuda.so) at run
 * time.
 *
 * The extension is built and runs with no CUDA toolkit and no GPU: the CUDA
 * code lives in its own shared object, which only this loader touches, and
 * only when a GPU is asked for (docs/architecture.md, "GPU").  Nothing here
 * runs at load time of moe_pg.so, so the postmaster never initialises CUDA.
 *
 * The caller names the file (the SQL layer passes $libdir/moe_pg_cuda.so;
 * the parity test and the benchmark pass the build tree's copy).
 */
#ifndef MOE_BACKEND_LOADER_H
#define MOE_BACKEND_LOADER_H

#include <stddef.h>

#include "backend.h"
#include "moe_status.h"

/* File name of the CUDA backend, installed next to moe_pg.so. */
#define MOE_CUDA_LIBRARY_NAME "moe_pg_cuda.so"

/* The entry points of the library (cuda/backend_cuda.h), by type. */
typedef unsigned (*moe_cuda_abi_fn) (void);
typedef int (*moe_cuda_device_count_fn) (moe_error *err);
typedef int (*moe_cuda_device_name_fn) (int ordinal, char *buf, size_t len);
typedef moe_backend *(*moe_cuda_backend_create_fn) (int device_ordinal, moe_error *err);

/* Why a GPU cannot be used, coarsest first. */
typedef enum moe_cuda_availability
{
	MOE_CUDA_AVAILABLE = 0,
	MOE_CUDA_NOT_BUILT,			/* the library is not there: built without nvcc */
	MOE_CUDA_LOAD_FAILED,		/* it is there but does not load (CUDA runtime missing, ABI) */
	MOE_CUDA_NO_DEVICE			/* it loads, but there is no driver or no device */
} moe_cuda_availability;

/* An opened library: its handle and entry points, and the devices seen. */
typedef struct moe_cuda_library
{
	void	   *handle;			/* from dlopen; never closed (CUDA dislikes dlclose) */
	moe_cuda_abi_fn abi;
	moe_cuda_device_count_fn device_count;
	moe_cuda_device_name_fn device_name;
	moe_cuda_backend_create_fn create;
	int			n_devices;
} moe_cuda_library;

/*
 * Open the library at path and count the devices.  Returns
 * MOE_CUDA_AVAILABLE with lib filled, or the reason it cannot be used with
 * err->message saying it plainly ("moe_pg was built without CUDA support",
 * "no CUDA device: ...").  lib->handle stays open when the library loaded
 * but found no device, so a later call may reuse it; the caller keeps lib
 * for the life of the process either way.
 */
moe_cuda_availability moe_cuda_open(const char *path, moe_cuda_library *lib, moe_error *err);

/* A backend on device ordinal of an opened library; NULL with err filled. */
moe_backend *moe_cuda_create(const moe_cuda_library *lib, int ordinal, moe_error *err);

/* A short description of device ordinal ("NVIDIA H100 ..., 79.1 GiB, sm_90"). */
void		moe_cuda_describe(const moe_cuda_library *lib, int ordinal, char *buf, size_t len);

#endif
