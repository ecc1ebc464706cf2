/*
 * shared_cache.h — models loaded once per server into shared memory.
 *
 * With shared_preload_libraries = 'moe_pg', a fixed shared-memory area of
 * moe_pg.shared_cache_mb holds the parameters of recently used models,
 * read in place by every backend.  A model is loaded by the first backend
 * that needs it while others wait; entries not pinned by any transaction
 * are evicted least recently used first.  Entries are keyed by model id
 * and the version (xmin) of the row they were loaded from, and only
 * committed rows are ever loaded here (the caller checks), so an entry can
 * never be served for a row that rolled back or was replaced; a deleted
 * row's entry is freed when the delete commits.
 *
 * Called by the model store (models) and the entity cache (shared parts);
 * calls only checkpoint_rows.h and device.h of the SQL layer.
 */
#ifndef MOE_PG_SHARED_CACHE_H
#define MOE_PG_SHARED_CACHE_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "model.h"

extern int	moe_shared_cache_mb;

/*
 * Register moe_pg.shared_cache_mb and moe_pg.shared_entity_mb, and, while
 * shared_preload_libraries is being processed, the shared-memory hooks;
 * loaded later, there is no shared cache and shared_cache_mb reads 0.
 * From _PG_init.
 */
void		moe_shared_cache_init(void);

/* True when the server preloaded moe_pg and gave the cache some memory. */
bool		moe_shared_cache_enabled(void);

/* A pinned entry: its configuration and parameters, valid until unpinned. */
typedef struct moe_shared_model
{
	int			slot;
	uint64		generation;
	moe_config	cfg;
	float	   *params;
	float	   *panels;			/* its row panels (infer.h) */
	Size		bytes;
} moe_shared_model;

/*
 * Entries are keyed by database, the OID of that database's moe.models
 * (so a dropped and re-created extension, whose ids start again at 1,
 * never meets its predecessor's models), the model id and the row's xmin.
 * models_relid is the caller's current OID of moe.models.
 */

/*
 * Find model id, row version xmin (committed: never the caller's own
 * transaction's), in the shared cache, or load it there (reading that row
 * version through SPI); pins it until the end of the current transaction.
 * Unpinned entries are evicted, least recently used first, until it fits.
 * Returns false when it cannot fit even so (every other entry is pinned,
 * or it is larger than the cache), with the reason in *why (palloc'd), so
 * the caller loads it locally.  ERROR when there is no such row.
 */
bool		moe_shared_acquire(Oid models_relid, int64 id, TransactionId xmin,
							   moe_shared_model *out, char **why);

/*
 * The fingerprint of the weights of the entry at slot while it holds
 * generation, when a backend computed and remembered it; false otherwise.
 * out has room for 33 bytes.
 */
bool		moe_shared_params_md5(int slot, uint64 generation, char *out);
void		moe_shared_remember_params_md5(int slot, uint64 generation, const char *md5);

/* Re-pin an entry this backend used before, if it still holds the same
 * model (same generation); false when it was evicted or replaced. */
bool		moe_shared_repin(int slot, uint64 generation, Oid models_relid, int64 id);

/* Drop a model (all of this database's models when id < 0) from the
 * shared cache, now or when the last pin goes. */
void		moe_shared_forget(Oid models_relid, int64 id);

/* Forget model id (all when id < 0) when the current transaction
 * commits: its delete of the row might still roll back. */
void		moe_shared_forget_at_commit(Oid models_relid, int64 id);

/* Drop every unpinned entry of every database (pinned ones at their last
 * unpin). */
void		moe_shared_forget_all(void);

/*
 * Entity parts (infer.h) shared by every backend, per cached model: a
 * backend that computes a drug's or protein's part publishes it, and
 * others (parallel workers too) copy it instead of computing it again.
 * Only vectors read from tables are shared, keyed by their TOAST pointer
 * (a stored value is never changed in place).  Each model entry's table
 * takes up to moe_pg.shared_entity_mb of the cache when its first part is
 * published; when full, further parts stay in their backends.
 */
extern int	moe_shared_entity_mb;

typedef struct moe_shared_entity_key
{
	int32		kind;			/* moe_entity_kind */
	Oid			toastrel;
	Oid			valueid;
	int32		rawsize;
	int32		extinfo;
} moe_shared_entity_key;

/* Copy the part of key for the model pinned as slot and generation (from
 * moe_shared_acquire); false when no backend has published it. */
bool		moe_shared_entity_find(int slot, uint64 generation, const moe_shared_entity_key *key,
								   float *part, int part_floats);

/* Publish a part this backend computed (nothing when there is no room). */
void		moe_shared_entity_publish(int slot, uint64 generation, const moe_shared_entity_key *key,
									  const float *part, int part_floats);

/* One row of moe_cache(). */
typedef struct moe_shared_stats
{
	int64		model_id;
	Size		bytes;
	int64		loads;
	int64		hits;
	uint32		pins;
	TimestampTz last_use;
	int64		entity_parts;	/* parts shared by every backend */
} moe_shared_stats;

/* This database's entries into a palloc'd array; returns the count. */
int			moe_shared_stats_list(Oid models_relid, moe_shared_stats **out, Size *used,
								  Size *capacity);

#endif
