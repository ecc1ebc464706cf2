/*
 * glue.c — see glue.h.
 */
#include "glue.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "spi_safe.h"

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
