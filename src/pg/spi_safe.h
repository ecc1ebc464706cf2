/*
 * spi_safe.h — internal SQL that means the same under any caller's
 * search_path.
 *
 * Every query moe_pg writes itself is parsed and planned with search_path
 * pinned to "pg_catalog, pg_temp" (pg_temp last, so no temporary table,
 * function or operator of the caller can stand in for ours), as
 * PostgreSQL's own maintenance commands do.  The queries name their tables
 * with schemas (moe.models, a dataset's relation as "schema"."name"), and
 * relation names a caller gives are resolved under the caller's
 * search_path before any SQL is built from them.
 *
 * Queries over a caller's relation (a dataset, moe_score's source) are
 * not pinned but written fully qualified instead (OPERATOR(pg_catalog.=),
 * pg_catalog.text, pg_catalog.unnest): pinning them would also change how
 * the planner inlines the caller's own SQL functions inside the view.
 * Any module of src/pg may call these; they call nothing of moe_pg.
 */
#ifndef MOE_PG_SPI_SAFE_H
#define MOE_PG_SPI_SAFE_H

#include "postgres.h"

#include "executor/spi.h"

#define MOE_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* Pin search_path until moe_search_path_unpin(level); errors unwind it. */
int			moe_search_path_pin(void);
void		moe_search_path_unpin(int level);

/* SPI_execute_with_args with search_path pinned. */
int			moe_spi_execute(const char *sql, int nargs, Oid *types, Datum *values,
							const char *nulls, bool read_only, long count);

#endif
