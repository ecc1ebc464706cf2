/*
 * test_backend_loader.c — the host side of the CUDA backend's loader: what
 * it says when there is nothing to load, something that is not a backend,
 * or no driver.  Runs everywhere (no toolkit, no GPU); the library itself
 * is exercised by test/cuda/parity.c.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "backend_loader.h"
#include "unit.h"

static bool
have_driver(void)
{
	void	   *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);

	if (h != NULL)
		dlclose(h);
	return h != NULL;
}

static void
test_missing_library(void)
{
	moe_cuda_library lib;
	moe_error	err;

	CHECK_INT(moe_cuda_open("/nonexistent/moe_pg_cuda.so", &lib, &err), MOE_CUDA_NOT_BUILT);
	CHECK(strstr(err.message, "built without CUDA") != NULL);
	CHECK(strstr(err.message, "/nonexistent/moe_pg_cuda.so") != NULL);
	CHECK(lib.handle == NULL);

	CHECK_INT(moe_cuda_open(NULL, &lib, &err), MOE_CUDA_NOT_BUILT);
	CHECK(strstr(err.message, MOE_CUDA_LIBRARY_NAME) != NULL);
}

static void
test_not_a_library(void)
{
	moe_cuda_library lib;
	moe_error	err;
	moe_cuda_availability a = moe_cuda_open("test/unit/unit.h", &lib, &err);

	if (have_driver())
	{
		CHECK_INT(a, MOE_CUDA_LOAD_FAILED);
		CHECK(strstr(err.message, "cannot load the CUDA backend") != NULL);
	}
	else
	{
		/* no driver: the loader stops before mapping anything */
		CHECK_INT(a, MOE_CUDA_NO_DEVICE);
		CHECK(strncmp(err.message, "no CUDA device", 14) == 0);
	}
	CHECK(lib.handle == NULL);
}

static void
test_unopened_library(void)
{
	moe_cuda_library lib;
	moe_error	err;
	char		desc[64];

	memset(&lib, 0, sizeof(lib));
	CHECK(moe_cuda_create(&lib, 0, &err) == NULL);
	CHECK(strstr(err.message, "not loaded") != NULL);
	moe_cuda_describe(&lib, 3, desc, sizeof(desc));
	CHECK(strcmp(desc, "CUDA device 3") == 0);
}

static void
test_abi_constant(void)
{
	/* the ABI number carries the table's size, so a member added without
	 * a version bump is still caught */
	CHECK_INT(MOE_BACKEND_ABI % 100000u, sizeof(moe_backend));
	CHECK_INT(MOE_BACKEND_ABI / 100000u, MOE_BACKEND_ABI_VERSION);
}

int
main(void)
{
	RUN(test_missing_library);
	RUN(test_not_a_library);
	RUN(test_unopened_library);
	RUN(test_abi_constant);
	return unit_summary("test_backend_loader");
}
