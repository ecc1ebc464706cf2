/*
 * moe_pg.h — shared pieces of the SQL layer: error mapping, array
 * conversion, model lookup.  The SQL layer is thin glue around the engine
 * (src/engine), which knows nothing of PostgreSQL.
 */
#ifndef MOE_PG_H
#define MOE_PG_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"

#include "backend.h"
#include "infer.h"
#include "model.h"
#include "moe_status.h"

/* GUCs */
extern int	moe_threads;

/* Raise an engine error as a PostgreSQL error with a matching SQLSTATE. */
void		moe_raise(const moe_error *err) pg_attribute_noreturn();

/* Raise if st is not MOE_OK. */
static inline void
moe_check(moe_status st, const moe_error *err)
{
	if (st != MOE_OK)
		moe_raise(err);
}

/* The schema the extension's functions live in, quoted for SQL. */
const char *moe_extension_schema(void);

/* The process-wide CPU backend, created on first use. */
moe_backend *moe_cpu_backend(void);

/*
 * A real[] argument as a float pointer into the (detoasted) array, after
 * checking that it is one-dimensional, non-empty, free of NULLs and of
 * NaN/infinity, and (when expected_len > 0) of that length.  what names the
 * argument in error messages ("drug vector").
 */
const float *moe_vector_arg(ArrayType *arr, const char *what, int expected_len, int *len);

/* A real[] from floats. */
ArrayType  *moe_vector_result(const float *values, int n);

/* ---- models (model_store.c) ---- */

/* A loaded model with an inference workspace, cached per backend. */
typedef struct moe_loaded_model
{
	int64		id;
	moe_model  *model;
	moe_infer_ws *ws;			/* inference workspace, MOE_INFER_BATCH rows */
} moe_loaded_model;

#define MOE_INFER_BATCH 256

/* Model by id; ERROR if it does not exist. */
moe_loaded_model *moe_model_by_id(int64 id);

/* Current id behind a deployed name; ERROR if the name is unknown. */
int64		moe_model_id_by_name(const char *name);

/* Forget cached models (all when id < 0). */
void		moe_model_cache_forget(int64 id);

#endif
