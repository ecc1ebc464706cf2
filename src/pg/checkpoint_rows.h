/*
 * checkpoint_rows.h — the one way moe_pg reads a checkpoint from
 * moe.models, or on a Citus worker from its local copy of the cluster's
 * moe.model_copies (model_copies.h), schema-qualified, through
 * spi_safe.h, so it means the same under any search_path.  Called by the
 * model store, the shared cache and export; calls nothing of the SQL
 * layer but spi_safe.h.
 */
#ifndef MOE_PG_CHECKPOINT_ROWS_H
#define MOE_PG_CHECKPOINT_ROWS_H

#include "postgres.h"

/*
 * The checkpoint of model id, detoasted into the current memory context:
 * of row version xmin only (InvalidTransactionId: the visible row, its
 * version into *xmin_out when not NULL).  NULL when there is no such row.
 * It reads moe.models.
 */
bytea	   *moe_checkpoint_row(int64 id, TransactionId xmin, TransactionId *xmin_out);

/* The same from relation relid (moe.models, or a model_copies shard;
 * InvalidOid: moe.models). */
bytea	   *moe_checkpoint_row_in(Oid relid, int64 id, TransactionId xmin, TransactionId *xmin_out);

/* The version (xmin) of model id's row in relid (InvalidOid: moe.models),
 * without reading its checkpoint; false when there is no such row. */
bool		moe_checkpoint_row_version(Oid relid, int64 id, TransactionId *xmin);

#endif
