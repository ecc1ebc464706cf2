/*
 * memory_budget.c — see memory_budget.h.
 */
#include "memory_budget.h"

#include <limits.h>

#include "utils/guc.h"

int			moe_max_model_mb = 1024;

void
moe_memory_budget_init(void)
{
	DefineCustomIntVariable("moe_pg.max_model_mb",
							"Memory one training run, loaded model, synthetic dataset or moe_predict_matrix call may use.",
							"Estimated from the shapes before anything is allocated; work over it is refused with SQLSTATE 54000.",
							&moe_max_model_mb,
							1024, 1, INT_MAX / 2,
							PGC_SUSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
}

void
moe_check_memory_budget(double bytes, const char *what, const char *how)
{
	double		mb = bytes / (1024.0 * 1024.0);

	if (mb > (double) moe_max_model_mb)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s would need about %.0f MB, over moe_pg.max_model_mb (%d MB)", what, mb,
						moe_max_model_mb),
				 errhint("%s, or ask a superuser to raise moe_pg.max_model_mb.", how)));
}
