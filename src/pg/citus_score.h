/*
 * citus_score.h — moe_score on Citus: when the source is a distributed
 * table (or a view over distributed tables) and the key columns include its
 * distribution column, the output is made a distributed table colocated
 * with it and every shard is scored on its own worker, in batches of one
 * window partition (moe_predict_partition), inside the caller's
 * transaction.  moe_screen over a distributed source runs there too, as
 * one pushed-down top-n query.  Called by sql_score.c (moe_score) and
 * sql_screen.c (moe_screen); calls model_store.h and spi_safe.h, and
 * Citus's SQL functions.
 */
#ifndef MOE_PG_CITUS_SCORE_H
#define MOE_PG_CITUS_SCORE_H

#include "postgres.h"

#include "nodes/pg_list.h"

#include "model_store.h"

typedef struct moe_citus_target
{
	Oid			colocate_with;	/* the distributed table the output joins */
	char	   *column;			/* its distribution column, one of the keys */
	bool		through_view;	/* the source is a view over it */
	int			n_distributed;	/* every hash-distributed table the source reads */
	Oid		   *distributed;	/* directly, and its distribution column */
	char	  **distributed_column;
} moe_citus_target;

/*
 * Whether moe_score over source (key column names in keys) can run on the
 * workers, and how; false without Citus, for a source that is not
 * distributed, or (with a NOTICE) when no key is the distribution column.
 * Call inside SPI.
 */
bool		moe_citus_score_target(Oid source, List *keys, moe_citus_target *target);

/*
 * Make output_sql (created empty, quoted and qualified) a distributed
 * table colocated with target's and fill it on the workers: every row of
 * source (source_relid, quoted and qualified as source) scored with lm,
 * checked by its fingerprint on each worker.  A view whose key can be
 * NULL is counted first, and refused (22004) if it has such rows.
 * Returns the rows written.  Call inside SPI.
 */
int64		moe_citus_score(moe_loaded_model *lm, Oid source_relid, const char *source,
							const char *output_sql,
							const char *drug_col, const char *protein_col, List *keys,
							const moe_citus_target *target);

/*
 * Whether source is, or (a view) reads directly, a hash-distributed table;
 * false without Citus.  Call inside SPI.
 */
bool		moe_citus_is_distributed(Oid source);

/*
 * moe_screen on the workers: the n best compounds of source (quoted and
 * qualified) for target (a protein vector), by one query whose ORDER BY
 * ... LIMIT Citus pushes down to every shard, each row scored there by
 * moe_predict with lm's fingerprint; equal scores in key order.  A
 * compound with a NULL vector is refused (22004), as on one node.  The
 * keys (NULL for a NULL key) and scores, best first, go into *keys and
 * *scores, allocated in out; returns how many.  Call inside SPI.
 */
int			moe_citus_screen(moe_loaded_model *lm, const char *source, const char *drug_col,
							 const char *key_col, Datum target, int n, MemoryContext out,
							 char ***keys, float **scores);

#endif
