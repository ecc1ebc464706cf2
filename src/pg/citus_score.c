/*
 * citus_score.c — moe_score and moe_screen on the workers of a Citus
 * cluster (citus_score.h says when and how).
 *
 * The statement is one colocated INSERT ... SELECT, which Citus sends to
 * every shard as its own task in the caller's distributed transaction: a
 * failure or a cancel anywhere rolls the whole output back.  The window
 * partition by the distribution column keeps each batch within one shard.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "citus_score.h"
#include "glue.h"
#include "spi_safe.h"

/* The hash-distributed tables source is or (a view) reads directly. */
#define DISTRIBUTED_SOURCES \
	"SELECT p.logicalrelid::pg_catalog.oid, " \
	"       pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) " \
	"  FROM pg_catalog.pg_dist_partition p " \
	" WHERE p.partmethod OPERATOR(pg_catalog.=) 'h' " \
	"   AND (p.logicalrelid::pg_catalog.oid OPERATOR(pg_catalog.=) $1 " \
	"        OR p.logicalrelid::pg_catalog.oid IN (" \
	"           SELECT d.refobjid FROM pg_catalog.pg_depend d " \
	"             JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid " \
	"            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass " \
	"              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"              AND r.ev_class OPERATOR(pg_catalog.=) $1)) " \
	" ORDER BY p.logicalrelid::pg_catalog.oid"

static bool
is_key(List *keys, const char *column)
{
	ListCell   *lc;

	foreach(lc, keys)
		if (strcmp(lfirst(lc), column) == 0)
			return true;
	return false;
}

/* Read the distributed tables of source into SPI_tuptable (see
 * DISTRIBUTED_SOURCES); false, reading nothing, without Citus. */
static bool
read_distributed_sources(Oid source)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(source)};

	if (!OidIsValid(get_extension_oid("citus", true)))
		return false;
	if (moe_spi_execute(DISTRIBUTED_SOURCES, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_dist_partition");
	return true;
}

bool
moe_citus_score_target(Oid source, List *keys, moe_citus_target *target)
{
	StringInfoData columns;

	if (!read_distributed_sources(source) || SPI_processed == 0)
		return false;
	initStringInfo(&columns);
	memset(target, 0, sizeof(*target));
	target->distributed = palloc(sizeof(Oid) * SPI_processed);
	target->distributed_column = palloc(sizeof(char *) * SPI_processed);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *column = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);

		target->distributed[target->n_distributed] = relid;
		target->distributed_column[target->n_distributed++] = column ? column : "";
		if (column != NULL && is_key(keys, column) && target->column == NULL)
		{
			target->colocate_with = relid;
			target->column = column;
			target->through_view = relid != source;
		}
		appendStringInfo(&columns, "%s%s (%s)", r > 0 ? ", " : "", column ? column : "?",
						 get_rel_name(relid));
	}
	if (target->column != NULL)
		return true;
	ereport(NOTICE,
			(errmsg("moe_score: scoring through the coordinator, not on the workers"),
			 errdetail("The source's distributed tables are distributed by %s, and key_columns include none of them.",
					   columns.data),
			 errhint("Name the distribution column among key_columns to score on the workers.")));
	return false;
}

static bool
has_outer_join(Node *node)
{
	ListCell   *lc;

	if (node == NULL)
		return false;
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		return j->jointype != JOIN_INNER || has_outer_join(j->larg) || has_outer_join(j->rarg);
	}
	if (IsA(node, FromExpr))
		foreach(lc, ((FromExpr *) node)->fromlist)
			if (has_outer_join(lfirst(lc)))
				return true;
	return false;
}

/*
 * Whether the view's column is a distribution column of one of the tables
 * it reads, through inner joins only: then no row has it NULL, and the
 * count below is not needed.  Anything else (an expression, a subquery, a
 * set operation, an outer join anywhere) is left to the count.
 */
static bool
view_key_never_null(Oid view, const moe_citus_target *target)
{
	Relation	rel = table_open(view, AccessShareLock);
	bool		never_null = false;
	Query	   *q;
	ListCell   *lc;

	if (rel->rd_rel->relkind != RELKIND_VIEW)
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	q = copyObject(get_view_query(rel));
	table_close(rel, AccessShareLock);
	if (q->setOperations != NULL || has_outer_join((Node *) q->jointree))
		return false;
	foreach(lc, q->targetList)
	{
		TargetEntry *te = lfirst(lc);
		Node	   *e;
		Var		   *v;
		RangeTblEntry *rte;
		char	   *att;

		if (te->resjunk || te->resname == NULL || strcmp(te->resname, target->column) != 0)
			continue;
		e = flatten_join_alias_vars(q, (Node *) te->expr);
		if (!IsA(e, Var) || ((Var *) e)->varlevelsup != 0)
			break;
		v = (Var *) e;
		rte = rt_fetch(v->varno, q->rtable);
		if (rte->rtekind != RTE_RELATION)
			break;
		att = get_attname(rte->relid, v->varattno, true);
		for (int i = 0; i < target->n_distributed && att != NULL; i++)
			if (target->distributed[i] == rte->relid && strcmp(target->distributed_column[i], att) == 0)
				never_null = true;
		break;
	}
	return never_null;
}

/*
 * A distributed table holds no NULL in its distribution column, and Citus
 * leaves such rows out of an INSERT ... SELECT into one: a view that makes
 * them (an outer join) is refused rather than scored short.
 */
static void
refuse_null_keys(const char *source, const char *column)
{
	StringInfoData q;
	int64		nulls;
	bool		isnull;

	initStringInfo(&q);
	appendStringInfo(&q, "SELECT pg_catalog.count(*) FROM %s WHERE %s IS NULL", source,
					 quote_identifier(column));
	if (SPI_execute(q.data, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "moe_score: could not count NULL keys of %s", source);
	nulls = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (nulls > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("moe_score: %lld rows of %s have a NULL %s, which a distributed output cannot hold",
						(long long) nulls, source, column),
				 errhint("Filter them out of the source, or leave %s out of key_columns to score through the coordinator.",
						 column)));
}

/*
 * Citus's sequential mode for this call: one connection per worker makes
 * the output's shards and then scores them one after another, so each
 * worker loads the model and copies the entity parts into one backend
 * (whose products use moe_pg.threads), where the default parallel mode
 * starts up to citus.max_adaptive_executor_pool_size fresh backends per
 * worker and each pays that again.  Only outside a transaction block:
 * inside one, an earlier parallel access would make Citus refuse the
 * switch.  Undone by AtEOXact_GUC(false, level), or by an abort.
 */
static int
one_backend_per_worker(void)
{
	int			level = NewGUCNestLevel();

	if (!IsTransactionBlock())
		(void) set_config_option("citus.multi_shard_modify_mode", "sequential", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

int64
moe_citus_score(moe_loaded_model *lm, Oid source_relid, const char *source, const char *output_sql,
				const char *drug_col, const char *protein_col, List *keys,
				const moe_citus_target *target)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];
	const char *ext_schema = moe_extension_schema();
	char	   *colocate = quote_qualified_identifier(get_namespace_name(get_rel_namespace(target->colocate_with)),
													 get_rel_name(target->colocate_with));
	StringInfoData q;
	ListCell   *lc;
	int			guc_level;
	int64		scored;

	if (target->through_view && !view_key_never_null(source_relid, target))
		refuse_null_keys(source, target->column);
	guc_level = one_backend_per_worker();
	args[0] = CStringGetTextDatum(output_sql);
	args[1] = CStringGetTextDatum(target->column);
	args[2] = CStringGetTextDatum(colocate);
	if (moe_spi_execute("SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass, $2, "
						"colocate_with => $3)", 3, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "moe_score: could not distribute %s", output_sql);

	/* over the caller's relation: written fully qualified, not pinned (spi_safe.h) */
	initStringInfo(&q);
	appendStringInfo(&q, "INSERT INTO %s SELECT ", output_sql);
	foreach(lc, keys)
		appendStringInfo(&q, "%s, ", quote_identifier(lfirst(lc)));
	appendStringInfo(&q, "%s.moe_predict_partition(%s, %s, %lld::pg_catalog.int8, %s::pg_catalog.text) "
					 "OVER (PARTITION BY %s) FROM %s",
					 ext_schema, drug_col, protein_col, (long long) lm->id,
					 quote_literal_cstr(moe_loaded_params_md5(lm)), quote_identifier(target->column),
					 source);
	if (SPI_execute(q.data, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "moe_score: could not score %s on the workers", source);
	scored = (int64) SPI_processed;
	AtEOXact_GUC(false, guc_level);
	return scored;
}

bool
moe_citus_is_distributed(Oid source)
{
	return read_distributed_sources(source) && SPI_processed > 0;
}

int
moe_citus_screen(moe_loaded_model *lm, const char *source, const char *drug_col, const char *key_col,
				 Datum target, int n, MemoryContext out, char ***keys, float **scores)
{
	Oid			argtypes[1] = {FLOAT4ARRAYOID};
	Datum		args[1] = {target};
	StringInfoData q;
	int			rows;

	/*
	 * Over the caller's relation: written fully qualified, not pinned
	 * (spi_safe.h).  moe_predict is STRICT, so a NULL vector scores NULL,
	 * and NULLS FIRST brings it to the top: one read finds it too.
	 */
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT %s::pg_catalog.text, %s.moe_predict(%s, $1, %lld::pg_catalog.int8, %s::pg_catalog.text) "
					 "FROM %s ORDER BY 2 DESC NULLS FIRST, 1 LIMIT %d",
					 quote_identifier(key_col), moe_extension_schema(), quote_identifier(drug_col),
					 (long long) lm->id, quote_literal_cstr(moe_loaded_params_md5(lm)), source, n);
	if (SPI_execute_with_args(q.data, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "moe_screen: could not screen %s on the workers", source);
	rows = (int) SPI_processed;
	if (rows > 0 && SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s has a compound with a NULL %s", source, drug_col)));
	*keys = MemoryContextAlloc(out, sizeof(char *) * Max(rows, 1));
	*scores = MemoryContextAlloc(out, sizeof(float) * Max(rows, 1));
	for (int i = 0; i < rows; i++)
	{
		char	   *key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		bool		isnull;

		(*keys)[i] = key != NULL ? MemoryContextStrdup(out, key) : NULL;
		(*scores)[i] = DatumGetFloat4(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	return rows;
}
