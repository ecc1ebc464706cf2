/*
 * memory_budget.h — the memory budget of one piece of work (docs/reliability.md).
 *
 * moe_pg.max_model_mb bounds what one training run, one loaded model's
 * workspaces, one synthetic dataset or one moe_predict_matrix call may
 * allocate.  The size is computed from the shapes before anything is
 * allocated, so a request over the budget is refused with SQLSTATE 54000
 * instead of growing a backend until the kernel kills it (and the server
 * restarts every connection).  Only superusers may raise it.
 *
 * Any module of src/pg may call these; they call nothing of moe_pg.
 */
#ifndef MOE_PG_MEMORY_BUDGET_H
#define MOE_PG_MEMORY_BUDGET_H

#include "postgres.h"

extern int	moe_max_model_mb;

/* Register moe_pg.max_model_mb (from _PG_init). */
void		moe_memory_budget_init(void);

/*
 * ERROR 54000 (program_limit_exceeded) when bytes exceed the budget; what
 * names the work ("training \"davis\""), how says what to make smaller.
 */
void		moe_check_memory_budget(double bytes, const char *what, const char *how);

#endif
