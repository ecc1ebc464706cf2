/*
 * moe_pg.c — module initialisation and the helpers every SQL function uses.
 */
#include "moe_pg.h"

#include <math.h>

#include "entity_cache.h"
#include "shared_cache.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

int			moe_threads = 0;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("moe_pg.threads",
							"Threads for matrix products in training (0: one per core).",
							"Takes effect at the next training run in the session.",
							&moe_threads,
							0, 0, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("moe_pg.entity_cache_mb",
							"Memory each backend may use for drug and protein parts (emptied when full).",
							NULL,
							&moe_entity_cache_mb,
							64, 1, 64 * 1024,
							PGC_USERSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
	moe_model_store_init();
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

const char *
moe_extension_schema(void)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *schema;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e "
					"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
					"WHERE e.extname = 'moe_pg'", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
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
