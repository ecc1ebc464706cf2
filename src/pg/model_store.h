/*
 * model_store.h — the models of this backend: each one loaded once per
 * transaction from the shared cache (read in place) or into a private
 * copy, found by id or by deployed name, forgotten when its row goes.
 * Owns moe_pg.local_cache_models.  Called by the scoring and model
 * functions; calls the shared cache and checkpoint_rows.h.
 */
#ifndef MOE_PG_MODEL_STORE_H
#define MOE_PG_MODEL_STORE_H

#include "glue.h"

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
	/* the fingerprint of its weights (moe_loaded_params_md5), on first need */
	bool		params_md5_known;
	char		params_md5[33];
} moe_loaded_model;

#define MOE_INFER_BATCH 256

extern int	moe_local_cache_models;

/* Model by id, from the shared cache or this backend's; ERROR if it does
 * not exist. */
moe_loaded_model *moe_model_by_id(int64 id);

/*
 * The fingerprint of a model's weights alone: the MD5 of its parameters,
 * as 32 lowercase hex digits and a NUL in out (moe_model_info's
 * params_md5).
 */
void		moe_params_md5(const void *params, size_t n_params, char *out);

/* The same for a loaded model: computed once per load, and once per
 * server for a model read from the shared cache. */
const char *moe_loaded_params_md5(moe_loaded_model *lm);

/*
 * Model by id, refused (55000) unless its fingerprint is params_md5 (22023
 * when that is not 32 lowercase hex digits): the same text runs on every
 * node of a cluster, so a node holding another model under the id errors
 * out instead of answering with its own weights.
 */
moe_loaded_model *moe_model_by_id_checked(int64 id, const char *params_md5);

/* The batch workspace of a loaded model. */
moe_infer_ws *moe_loaded_batch_ws(moe_loaded_model *lm);

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

/*
 * Have fn called with the id whenever a model is forgotten (fn(-1): all of
 * them), so that what others keep per model goes with it; from their
 * *_init().  At most a few hooks.
 */
void		moe_model_store_on_forget(void (*fn) (int64 id));

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
