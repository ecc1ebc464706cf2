/*
 * moe_pg.c — the module's entry: _PG_init asks each area of the SQL layer
 * to register its settings and hooks.  Nothing calls into this file; every
 * area owns its GUCs (docs/architecture.md, "Layers").
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "device.h"
#include "entity_cache.h"
#include "memory_budget.h"
#include "model_store.h"
#include "progress.h"
#include "shared_cache.h"
#include "sql_predict.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	moe_device_init();
	moe_progress_init();
	moe_entity_cache_init();
	moe_memory_budget_init();
	moe_predict_init();
	moe_model_store_init();
	moe_shared_cache_init();
	MarkGUCPrefixReserved("moe_pg");
}
