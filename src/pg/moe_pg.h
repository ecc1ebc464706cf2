/*
 * moe_pg.h — shared pieces of the SQL layer: error mapping, array
 * conversion, model lookup.  The SQL layer is thin glue around the engine
 * (src/engine), which knows nothing of PostgreSQL.
 */
#ifndef MOE_PG_H
#define MOE_PG_H

#include "postgres.h"

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/array.h"

#include "backend.h"
#include "featurizer.h"
#include "infer.h"
#include "model.h"
#include "moe_status.h"

/* GUCs */
extern int	moe_threads;
extern char *moe_default_model;

/* moe_pg.default_model (sql_predict.c), from _PG_init. */
void		moe_predict_init(void);

/* moe_pg.progress (sql_train.c), from _PG_init: how much training says. */
typedef enum moe_progress_level
{
	MOE_PROGRESS_QUIET = 0,		/* nothing but warnings and errors */
	MOE_PROGRESS_SUMMARY,		/* a run's start and end */
	MOE_PROGRESS_EPOCH			/* and every epoch */
} moe_progress_level;

extern int	moe_progress;
void		moe_train_init(void);

/* Whether NOTICEs of this level are wanted. */
bool		progress_at(moe_progress_level level);

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

/* The process-wide CPU backend, created on first use. */
moe_backend *moe_cpu_backend(void);

/* ---- devices (moe_pg.c; docs/cuda.md) ---- */

/* Values of moe_pg.device and of moe_train's device option. */
typedef enum moe_device_choice
{
	MOE_DEVICE_AUTO = 0,		/* a CUDA GPU when one is usable, else the CPU */
	MOE_DEVICE_CPU,
	MOE_DEVICE_CUDA				/* a GPU or an error */
} moe_device_choice;

#define MOE_DEVICE_CHOICES "auto, cpu, cuda"

extern int	moe_device;

/* The choice named name, or -1 when it is not one. */
int			moe_device_parse(const char *name);

/*
 * The backend that work (what, e.g. "training") runs on for choice, or for
 * the moe_pg.device setting when choice < 0.  The CUDA library is opened
 * and the device initialised on the first request of the session, never
 * earlier; the backend then lives as long as the session.  cuda without a
 * usable GPU is an ERROR naming the reason; auto falls back to the CPU and
 * says so in a NOTICE once per session.
 */
moe_backend *moe_device_backend(int choice, const char *what);

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

/*
 * A model ready for inference in this backend: its parameters (a private
 * copy, or read in place from the shared cache) and workspaces.  Valid
 * until the end of the current transaction, whatever else is loaded,
 * evicted or forgotten meanwhile.
 */
typedef struct moe_loaded_model
{
	int64		id;
	uint64		load;			/* unique per load in this backend: keys its entity parts */
	moe_model  *model;
	moe_infer_ws *ws;			/* one row: the per-row functions */
	moe_infer_ws *batch_ws;		/* MOE_INFER_BATCH rows, made on first use */
	bool		shared;			/* parameters live in the shared cache */
	int			shared_slot;	/* there: its entry, for shared entity parts */
	uint64		shared_generation;
	/* how its inputs were made (featurizer_spec.h), read on first need */
	bool		featurizers_read;
	moe_featurizer drug_featurizer;
	moe_featurizer protein_featurizer;
} moe_loaded_model;

#define MOE_INFER_BATCH 256

extern int	moe_local_cache_models;

/* Model by id, from the shared cache or this backend's; ERROR if it does
 * not exist. */
moe_loaded_model *moe_model_by_id(int64 id);

/* The batch workspace of a loaded model. */
moe_infer_ws *moe_loaded_batch_ws(moe_loaded_model *lm);

/*
 * The checkpoint of model id, detoasted into the current memory context:
 * of row version xmin only (InvalidTransactionId: the visible row, its
 * version into *xmin_out when not NULL).  NULL when there is no such row.
 * The one way moe_pg reads a checkpoint.
 */
bytea	   *moe_checkpoint_row(int64 id, TransactionId xmin, TransactionId *xmin_out);

/*
 * A statement of moe_pg's own that writes moe.models (through SPI, search
 * path pinned): the guard trigger on the table refuses every other write
 * by roles that are neither superuser nor the extension's owner.
 */
int			moe_models_write(const char *sql, int nargs, Oid *types, Datum *values,
							 const char *nulls, long count);

/* Current id behind a deployed name; ERROR if the name is unknown. */
int64		moe_model_id_by_name(const char *name);

/* The OID of moe.models in this database (the cache keys include it). */
Oid			moe_models_relid(void);

/* Forget a model everywhere this backend can reach (all when id < 0). */
void		moe_model_cache_forget(int64 id);

/* Register the cache's GUCs and invalidation callback (from _PG_init). */
void		moe_model_store_init(void);

/* One backend-local cached model, for moe_cache(). */
typedef struct moe_local_stats
{
	int64		model_id;
	bool		shared;
	Size		bytes;			/* parameters held privately (0 when shared) */
	int64		hits;
	TimestampTz last_use;
} moe_local_stats;

int			moe_local_stats_list(moe_local_stats **out);

#endif
