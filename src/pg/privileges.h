/*
 * privileges.h — the privilege check that stands in for reading moe.models
 * when a model comes from a cache (docs/security.md).  Owns the per-user
 * answer it remembers.  Called by the model store; calls nothing of
 * moe_pg.
 */
#ifndef MOE_PRIVILEGES_H
#define MOE_PRIVILEGES_H

#include "postgres.h"

/*
 * ERROR (42501) unless the current user may read checkpoints: USAGE on the
 * schema of moe.models and SELECT on the table (or on its id and checkpoint
 * columns), exactly what loading a model from the table needs.  A model
 * found in the shared cache was loaded by whoever asked first, so without
 * this check a caller who may not read the table would still be served.
 * The answer is remembered per user until a grant, a role or the table
 * changes.
 */
void		moe_check_model_read(Oid models_relid);

#endif
