/*
 * spi_safe.c — see spi_safe.h.
 */
#include "spi_safe.h"

#include "utils/guc.h"

int
moe_search_path_pin(void)
{
	int			level = NewGUCNestLevel();

	/* GUC_ACTION_SAVE: popped by moe_search_path_unpin or by an abort,
	 * and allowed in parallel workers (it affects this process only) */
	(void) set_config_option("search_path", MOE_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
moe_search_path_unpin(int level)
{
	AtEOXact_GUC(false, level);
}

int
moe_spi_execute(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				bool read_only, long count)
{
	int			level = moe_search_path_pin();
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, count);

	moe_search_path_unpin(level);
	return rc;
}
