/*
 * moe_pg.c — module initialisation and the helpers every SQL function uses.
 */
#include "moe_pg.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>

#include "backend_loader.h"
#include "entity_cache.h"
#include "memory_budget.h"
#include "shared_cache.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "miscadmin.h"
#include "spi_safe.h"

PG_MODULE_MAGIC;

int			moe_threads = 0;
int			moe_device = MOE_DEVICE_AUTO;

static const struct config_enum_entry device_options[] = {
	{"auto", MOE_DEVICE_AUTO, false},
	{"cpu", MOE_DEVICE_CPU, false},
	{"cuda", MOE_DEVICE_CUDA, false},
	{NULL, 0, false}
};

void		_PG_init(void);

void
_PG_init(void)
{
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
	moe_entity_cache_init();
	moe_memory_budget_init();
	moe_predict_init();
	moe_train_init();
	moe_model_store_init();
	DefineCustomIntVariable("moe_pg.shared_entity_mb",
							"Shared memory per cached model for drug and protein parts that every backend reuses.",
							"Taken from moe_pg.shared_cache_mb when a model's first part is shared; 0 shares none.",
							&moe_shared_entity_mb,
							16, 0, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB,
							NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		moe_shared_cache_init();
	else
	{
		/*
		 * Loaded into a running backend: PGC_POSTMASTER variables can no
		 * longer be created, and there is no shared cache, which SHOW says
		 * with a read-only 0.
		 */
		moe_shared_cache_mb = 0;
		DefineCustomIntVariable("moe_pg.shared_cache_mb",
								"Shared memory for models loaded once per server (needs shared_preload_libraries).",
								"moe_pg was not preloaded, so there is no shared cache.",
								&moe_shared_cache_mb,
								0, 0, 0,
								PGC_INTERNAL, GUC_UNIT_MB,
								NULL, NULL, NULL);
	}
	MarkGUCPrefixReserved("moe_pg");
}

static int
sqlstate_for(moe_status st)
{
	switch (st)
	{
		case MOE_ERR_INVALID:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case MOE_ERR_DATA:
			return ERRCODE_DATA_EXCEPTION;
		case MOE_ERR_NOMEM:
			return ERRCODE_OUT_OF_MEMORY;
		case MOE_ERR_CORRUPT:
			return ERRCODE_DATA_CORRUPTED;
		case MOE_ERR_VERSION:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
		case MOE_ERR_CANCELLED:
			return ERRCODE_QUERY_CANCELED;
		case MOE_ERR_BACKEND:
			return ERRCODE_SYSTEM_ERROR;
		default:
			return ERRCODE_INTERNAL_ERROR;
	}
}

void
moe_raise(const moe_error *err)
{
	ereport(ERROR,
			(errcode(sqlstate_for(err->status)),
			 errmsg("%s", err->message)));
	pg_unreachable();
}

/* A featurizer's errors: unreadable text gets 22P02 (invalid text
 * representation), bad parameters 22023; both carry the engine's message. */
void
moe_raise_featurize_error(const moe_error *err)
{
	if (err->status == MOE_ERR_DATA)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("%s", err->message)));
	moe_raise(err);
}

const char *
moe_extension_schema(void)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *schema;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute("SELECT n.nspname FROM pg_catalog.pg_extension e "
						"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
						"WHERE e.extname = 'moe_pg'", 0, NULL, NULL, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "extension moe_pg is not installed in this database");
	schema = MemoryContextStrdup(outer, quote_identifier(SPI_getvalue(SPI_tuptable->vals[0],
																	   SPI_tuptable->tupdesc, 1)));
	SPI_finish();
	return schema;
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
 * backend of the process: one context per session for now, which
 * ARCHITECTURE.md section 4 allows as a first step for training; a GPU
 * service worker shared by all sessions is the target.
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

const float *
moe_vector_arg(ArrayType *arr, const char *what, int expected_len, int *len)
{
	const float *values;
	int			n;

	if (ARR_ELEMTYPE(arr) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be of type real[], not %s[]", what,
						format_type_be(ARR_ELEMTYPE(arr)))));
	if (ARR_NDIM(arr) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s is empty", what)));
	if (ARR_NDIM(arr) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional", what,
						ARR_NDIM(arr))));
	if (ARR_HASNULL(arr) && array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s contains NULL elements", what)));
	n = ARR_DIMS(arr)[0];
	if (expected_len > 0 && n != expected_len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has %d elements, the model expects %d", what, n, expected_len)));
	values = (const float *) ARR_DATA_PTR(arr);
	for (int i = 0; i < n; i++)
		if (!isfinite(values[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s element %d is %s", what, i + 1,
							isnan(values[i]) ? "NaN" : "infinite")));
	if (len != NULL)
		*len = n;
	return values;
}

ArrayType *
moe_vector_result(const float *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		elems[i] = Float4GetDatum(values[i]);
	return construct_array(elems, n, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
}
