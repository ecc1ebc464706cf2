/*
 * device.c — see device.h.
 */
#include "device.h"

#include <pthread.h>
#include <signal.h>

#include "backend_loader.h"
#include "progress.h"

#include "utils/guc.h"
#include "miscadmin.h"

int			moe_threads = 0;
int			moe_device = MOE_DEVICE_AUTO;

static const struct config_enum_entry device_options[] = {
	{"auto", MOE_DEVICE_AUTO, false},
	{"cpu", MOE_DEVICE_CPU, false},
	{"cuda", MOE_DEVICE_CUDA, false},
	{NULL, 0, false}
};

void
moe_device_init(void)
{
	/*
	 * In the postmaster (shared_preload_libraries): every backend forked
	 * later starts with OpenBLAS at one thread and never restarts it
	 * (backend.h), which would cost each one about 0.1 s of CPU.
	 */
	moe_blas_single_threaded();
	DefineCustomIntVariable("moe_pg.threads",
							"Threads for matrix products in training and bulk scoring (0: one per core).",
							"Takes effect at the next training run in the session.",
							&moe_threads,
							0, 0, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	/* Only the setting: CUDA itself is touched on the first request. */
	DefineCustomEnumVariable("moe_pg.device",
							 "Where training runs: auto, cpu or cuda.",
							 "auto uses a CUDA GPU when one is usable and the CPU otherwise; "
							 "cuda makes a missing GPU an error.",
							 &moe_device,
							 MOE_DEVICE_AUTO, device_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

moe_backend *
moe_cpu_backend(void)
{
	static moe_backend *cpu = NULL;

	if (cpu == NULL)
	{
		cpu = moe_backend_cpu_create(0);
		if (cpu == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return cpu;
}

/* ---- devices ---------------------------------------------------------- */

/*
 * The CUDA library, opened once per backend process on the first request
 * (a session that never asks for a GPU never loads it), and the one CUDA
 * backend of the process: one context per session for now, acceptable
 * for training (docs/architecture.md, "GPU"); a GPU service worker shared
 * by all sessions is a possible later design, not built.
 */
static bool cuda_probed = false;
static moe_cuda_availability cuda_availability;
static moe_cuda_library cuda_library;
static moe_error cuda_reason;
static moe_backend *cuda_backend = NULL;
static bool auto_fallback_noticed = false;

int
moe_device_parse(const char *name)
{
	for (int i = 0; device_options[i].name != NULL; i++)
		if (pg_strcasecmp(name, device_options[i].name) == 0)
			return device_options[i].val;
	return -1;
}

/*
 * The CUDA runtime starts helper threads when it initialises.  Started with
 * every signal blocked, they inherit that mask, so the signals PostgreSQL
 * sends this backend (cancel, terminate, latches) always reach the thread
 * that handles them.  Nothing in between raises an error.
 */
static void
block_signals(sigset_t *saved)
{
	sigset_t	all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, saved);
}

static void
restore_signals(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

static moe_cuda_availability
cuda_probe(void)
{
	if (!cuda_probed)
	{
		char		path[MAXPGPATH];
		sigset_t	saved;

		/* never in the postmaster: a forked child must not inherit CUDA */
		if (IsPostmasterEnvironment && !IsUnderPostmaster)
			elog(ERROR, "moe_pg: CUDA must not be initialised in the postmaster");
		snprintf(path, sizeof(path), "%s/%s", pkglib_path, MOE_CUDA_LIBRARY_NAME);
		block_signals(&saved);
		cuda_availability = moe_cuda_open(path, &cuda_library, &cuda_reason);
		restore_signals(&saved);
		cuda_probed = true;
	}
	return cuda_availability;
}

/* The GPU backend, or NULL with the reason in why. */
static moe_backend *
cuda_backend_or_null(moe_error *why)
{
	moe_error	stale;

	if (cuda_probe() != MOE_CUDA_AVAILABLE)
	{
		*why = cuda_reason;
		return NULL;
	}
	if (cuda_backend == NULL)
	{
		sigset_t	saved;

		block_signals(&saved);
		cuda_backend = moe_cuda_create(&cuda_library, 0, why);
		restore_signals(&saved);
		if (cuda_backend == NULL)
			return NULL;
	}
	/* A failure of an earlier command (out of GPU memory, say) was reported
	 * then; reading it again clears it.  One that stays left the device
	 * unusable for the rest of the session. */
	if (cuda_backend->check(cuda_backend, &stale) != MOE_OK &&
		cuda_backend->check(cuda_backend, why) != MOE_OK)
		return NULL;
	return cuda_backend;
}

moe_backend *
moe_device_backend(int choice, const char *what)
{
	moe_backend *be;
	moe_error	why;

	if (choice < 0)
		choice = moe_device;
	if (choice == MOE_DEVICE_CPU)
		return moe_cpu_backend();

	moe_error_clear(&why);
	be = cuda_backend_or_null(&why);
	if (be != NULL)
	{
		char		desc[160];

		moe_cuda_describe(&cuda_library, 0, desc, sizeof(desc));
		if (progress_at(MOE_PROGRESS_SUMMARY))
			ereport(NOTICE, (errmsg("%s on the GPU (%s)", what, desc)));
		return be;
	}
	if (choice == MOE_DEVICE_CUDA)
	{
		int			code;

		if (why.status == MOE_ERR_NOMEM)
			code = ERRCODE_OUT_OF_MEMORY;
		else if (cuda_availability == MOE_CUDA_NOT_BUILT || cuda_availability == MOE_CUDA_NO_DEVICE)
			code = ERRCODE_FEATURE_NOT_SUPPORTED;
		else
			code = ERRCODE_SYSTEM_ERROR;
		ereport(ERROR,
				(errcode(code),
				 errmsg("device cuda: %s", why.message),
				 errhint("Use device 'cpu', or 'auto' to fall back to the CPU (moe_pg.device sets the default).")));
	}
	if (!auto_fallback_noticed && progress_at(MOE_PROGRESS_SUMMARY))
	{
		ereport(NOTICE,
				(errmsg("device auto: no usable GPU (%s); %s on the CPU", why.message, what)));
		auto_fallback_noticed = true;
	}
	return moe_cpu_backend();
}

