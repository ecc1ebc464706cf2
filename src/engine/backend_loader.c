/*
 * backend_loader.c — dlopen of the CUDA backend; see backend_loader.h.
 */
#include "backend_loader.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* dlsym into a function pointer of any type (copied, since ISO C has no
 * conversion from void * to a function pointer). */
#define LOAD_SYMBOL(handle, name, fp) \
	do { void *sym_ = dlsym((handle), (name)); memcpy(&(fp), &sym_, sizeof(sym_)); } while (0)

moe_cuda_availability
moe_cuda_open(const char *path, moe_cuda_library *lib, moe_error *err)
{
	void	   *h;
	const char *why;
	moe_error	inner;
	int			n;

	memset(lib, 0, sizeof(*lib));
	moe_error_clear(err);
	if (path == NULL || access(path, F_OK) != 0)
	{
		moe_fail(err, MOE_ERR_BACKEND,
				 "moe_pg was built without CUDA support (%s not found)",
				 path != NULL ? path : MOE_CUDA_LIBRARY_NAME);
		return MOE_CUDA_NOT_BUILT;
	}
	/*
	 * No NVIDIA driver, no GPU: say so before mapping cuBLAS and the CUDA
	 * runtime (a second or so), since moe_pg.device = auto asks on every
	 * machine that has the library installed.
	 */
	h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL)
	{
		moe_fail(err, MOE_ERR_BACKEND,
				 "no CUDA device: the NVIDIA driver library (libcuda.so.1) is not installed");
		return MOE_CUDA_NO_DEVICE;
	}
	dlclose(h);

	/* RTLD_LOCAL: the CUDA runtime's symbols stay out of the server's scope */
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
	{
		why = dlerror();
		moe_fail(err, MOE_ERR_BACKEND, "cannot load the CUDA backend %s: %s", path,
				 why != NULL ? why : "unknown error");
		return MOE_CUDA_LOAD_FAILED;
	}
	LOAD_SYMBOL(h, "moe_cuda_abi", lib->abi);
	LOAD_SYMBOL(h, "moe_cuda_device_count", lib->device_count);
	LOAD_SYMBOL(h, "moe_cuda_device_name", lib->device_name);
	LOAD_SYMBOL(h, "moe_cuda_backend_create", lib->create);
	if (lib->abi == NULL || lib->device_count == NULL || lib->device_name == NULL ||
		lib->create == NULL)
	{
		moe_fail(err, MOE_ERR_BACKEND, "%s is not a moe_pg CUDA backend (entry points missing)",
				 path);
		dlclose(h);
		memset(lib, 0, sizeof(*lib));
		return MOE_CUDA_LOAD_FAILED;
	}
	if (lib->abi() != MOE_BACKEND_ABI)
	{
		moe_fail(err, MOE_ERR_BACKEND,
				 "%s was built for another version of moe_pg (backend ABI %u, this build %u); reinstall both",
				 path, lib->abi(), (unsigned) MOE_BACKEND_ABI);
		dlclose(h);
		memset(lib, 0, sizeof(*lib));
		return MOE_CUDA_LOAD_FAILED;
	}
	lib->handle = h;

	moe_error_clear(&inner);
	n = lib->device_count(&inner);
	if (n < 0)
	{
		moe_fail(err, MOE_ERR_BACKEND, "CUDA failed to initialise: %s", inner.message);
		return MOE_CUDA_NO_DEVICE;
	}
	lib->n_devices = n;
	if (n == 0)
	{
		moe_fail(err, MOE_ERR_BACKEND, "no CUDA device%s%s", inner.message[0] ? ": " : "",
				 inner.message);
		return MOE_CUDA_NO_DEVICE;
	}
	return MOE_CUDA_AVAILABLE;
}

moe_backend *
moe_cuda_create(const moe_cuda_library *lib, int ordinal, moe_error *err)
{
	moe_backend *be;

	if (lib->handle == NULL || lib->create == NULL)
	{
		moe_fail(err, MOE_ERR_BACKEND, "the CUDA backend is not loaded");
		return NULL;
	}
	if (ordinal < 0 || ordinal >= lib->n_devices)
	{
		moe_fail(err, MOE_ERR_INVALID, "CUDA device %d does not exist (%d device%s)", ordinal,
				 lib->n_devices, lib->n_devices == 1 ? "" : "s");
		return NULL;
	}
	moe_error_clear(err);
	be = lib->create(ordinal, err);
	if (be == NULL && (err == NULL || err->status == MOE_OK))
		moe_fail(err, MOE_ERR_BACKEND, "the CUDA backend could not be created");
	return be;
}

void
moe_cuda_describe(const moe_cuda_library *lib, int ordinal, char *buf, size_t len)
{
	if (len == 0)
		return;
	if (lib->device_name == NULL || lib->device_name(ordinal, buf, len) != 0)
		snprintf(buf, len, "CUDA device %d", ordinal);
}
