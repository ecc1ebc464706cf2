/*
 * model_copies.h — the cluster's copies of models on a Citus worker.
 *
 * On a Citus coordinator moe_distribute() puts every model in
 * moe.model_copies, a Citus reference table: Citus keeps one copy of it on
 * every node, including nodes added later (it replicates reference tables
 * before it moves shards to a new node).  A worker reads its own copy, the
 * reference table's local shard, directly: reading the reference table
 * itself from a function inside a shard query would be a nested
 * distributed query, which Citus refuses.  The model store falls back to
 * it when the worker's own moe.models has no row for an id.
 */
#ifndef MOE_PG_MODEL_COPIES_H
#define MOE_PG_MODEL_COPIES_H

#include "postgres.h"

/*
 * The relation holding this server's copy of moe.model_copies: its local
 * shard when this server is a Citus worker (not the coordinator) and the
 * table is a reference table with a shard here; else InvalidOid.
 */
Oid			moe_model_copies_local_shard(void);

#endif
