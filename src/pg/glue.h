/*
 * glue.h — what every file of the SQL layer uses, and that uses nothing of
 * the SQL layer itself: engine errors raised as PostgreSQL errors with a
 * matching SQLSTATE, real[] arguments and results, the extension's schema.
 * The SQL layer is thin glue around the engine (src/engine), which knows
 * nothing of PostgreSQL.  Any file may include this header.
 */
#ifndef MOE_PG_GLUE_H
#define MOE_PG_GLUE_H

#include "postgres.h"

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/array.h"

#include "backend.h"
#include "featurizer.h"
#include "infer.h"
#include "model.h"
#include "moe_status.h"

/* Raise an engine error as a PostgreSQL error with a matching SQLSTATE. */
void		moe_raise(const moe_error *err) pg_attribute_noreturn();
void		moe_raise_featurize_error(const moe_error *err) pg_attribute_noreturn();

/* Raise if st is not MOE_OK. */
static inline void
moe_check(moe_status st, const moe_error *err)
{
	if (st != MOE_OK)
		moe_raise(err);
}

/* The schema the extension's functions live in, quoted for SQL. */
const char *moe_extension_schema(void);

/*
 * A real[] argument as a float pointer into the (detoasted) array, after
 * checking that it is one-dimensional, non-empty, free of NULLs and of
 * NaN/infinity, and (when expected_len > 0) of that length.  what names the
 * argument in error messages ("drug vector").
 */
const float *moe_vector_arg(ArrayType *arr, const char *what, int expected_len, int *len);

/* A real[] from floats. */
ArrayType  *moe_vector_result(const float *values, int n);

#endif
