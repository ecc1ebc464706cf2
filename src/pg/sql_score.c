/*
 * sql_score.c — bulk scoring: moe_predict_batch() and moe_predict_matrix()
 * over arrays, and CALL moe_score() from a table to a table.
 *
 * moe_predict_partition() is a window function: it scores all rows of its
 * window partition in one batch, the form moe_score takes on Citus, where
 * the partitions are the distribution key's and run on the workers.
 *
 * All of them compute each distinct drug and protein once (through the
 * entity cache for moe_score, whose vectors come from tables) and then the
 * pairs in batches with the row-independent products, so every pair gets
 * the same bits as moe_predict would give it.
 */
#include "model_store.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "windowapi.h"

#include "citus_score.h"
#include "entity_cache.h"
#include "infer.h"
#include "memory_budget.h"
#include "relation_read.h"
#include "spi_safe.h"

#define SCORE_FETCH 4096

static moe_loaded_model *
model_from_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	if (get_fn_expr_argtype(fcinfo->flinfo, argno) == TEXTOID)
		return moe_model_by_id(moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(argno))));
	return moe_model_by_id(PG_GETARG_INT64(argno));
}

/* A two-dimensional real[] of rows of width dim: its floats and row count. */
static const float *
matrix_arg(ArrayType *arr, const char *what, int dim, int *rows)
{
	const float *v;

	if (ARR_ELEMTYPE(arr) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be real[]", what)));
	if (ARR_NDIM(arr) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a two-dimensional array, one vector per row", what)));
	if (ARR_HASNULL(arr) && array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s contains NULL elements", what)));
	if (ARR_DIMS(arr)[1] != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has vectors of %d elements, the model expects %d", what,
						ARR_DIMS(arr)[1], dim)));
	*rows = ARR_DIMS(arr)[0];
	v = (const float *) ARR_DATA_PTR(arr);
	for (size_t i = 0; i < (size_t) *rows * dim; i++)
		if (!isfinite(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s row %zu element %zu is %s", what, i / dim + 1, i % dim + 1,
							isnan(v[i]) ? "NaN" : "infinite")));
	return v;
}

/*
 * moe_predict_batch(drugs real[][], proteins real[][], model): row i pairs
 * drug row i with protein row i.
 */
PG_FUNCTION_INFO_V1(moe_predict_batch_sql);
Datum
moe_predict_batch_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	moe_loaded_model *lm = model_from_arg(fcinfo, 2);
	const moe_config *c = &lm->model->cfg;
	moe_infer_ws *ws = moe_loaded_batch_ws(lm);
	int			nd,
				np;
	const float *drugs,
			   *proteins;
	int32	   *idx = palloc(sizeof(int32) * MOE_INFER_BATCH);
	moe_error	err;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("drugs and proteins must not be NULL")));
	drugs = matrix_arg(PG_GETARG_ARRAYTYPE_P(0), "drugs", c->drug_dim, &nd);
	proteins = matrix_arg(PG_GETARG_ARRAYTYPE_P(1), "proteins", c->protein_dim, &np);
	if (nd != np)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("drugs has %d rows and proteins %d; they are paired row by row", nd, np)));
	for (int i = 0; i < MOE_INFER_BATCH; i++)
		idx[i] = i;

	InitMaterializedSRF(fcinfo, 0);
	for (int from = 0; from < nd; from += MOE_INFER_BATCH)
	{
		int			M = nd - from < MOE_INFER_BATCH ? nd - from : MOE_INFER_BATCH;
		const moe_infer_out *r = moe_infer_results(ws);

		CHECK_FOR_INTERRUPTS();
		moe_check(moe_infer_rows(lm->model, ws, drugs + (size_t) from * c->drug_dim, idx,
								 proteins + (size_t) from * c->protein_dim, idx, M, NULL, &err), &err);
		for (int i = 0; i < M; i++)
		{
			Datum		values[2] = {Int32GetDatum(from + i + 1), Float4GetDatum(r->pred[i])};
			bool		nulls[2] = {false, false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/*
 * moe_predict_matrix(drugs real[][], proteins real[][], model): every drug
 * against every protein (a screen), drug-major.
 */
PG_FUNCTION_INFO_V1(moe_predict_matrix_sql);
Datum
moe_predict_matrix_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	moe_loaded_model *lm = model_from_arg(fcinfo, 2);
	const moe_config *c = &lm->model->cfg;
	moe_infer_ws *ws = moe_loaded_batch_ws(lm);
	int			pf = moe_entity_part_floats(lm->model);
	int			nd,
				np;
	const float *drugs,
			   *proteins;
	float	   *dparts,
			   *pparts;
	int32	   *di = palloc(sizeof(int32) * MOE_INFER_BATCH),
			   *pi = palloc(sizeof(int32) * MOE_INFER_BATCH);
	moe_error	err;
	int64		total;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("drugs and proteins must not be NULL")));
	drugs = matrix_arg(PG_GETARG_ARRAYTYPE_P(0), "drugs", c->drug_dim, &nd);
	proteins = matrix_arg(PG_GETARG_ARRAYTYPE_P(1), "proteins", c->protein_dim, &np);
	moe_check_memory_budget((double) sizeof(float) * pf * ((double) nd + np), "moe_predict_matrix",
							"Score fewer drugs or proteins per call");
	dparts = palloc_extended(sizeof(float) * (size_t) nd * pf, MCXT_ALLOC_HUGE);
	pparts = palloc_extended(sizeof(float) * (size_t) np * pf, MCXT_ALLOC_HUGE);
	moe_entity_parts_of_matrix(lm, MOE_DRUG, drugs, nd, dparts);
	moe_entity_parts_of_matrix(lm, MOE_PROTEIN, proteins, np, pparts);

	InitMaterializedSRF(fcinfo, 0);
	total = (int64) nd * np;
	for (int64 from = 0; from < total; from += MOE_INFER_BATCH)
	{
		int			M = total - from < MOE_INFER_BATCH ? (int) (total - from) : MOE_INFER_BATCH;
		const moe_infer_out *r = moe_infer_results(ws);

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < M; i++)
		{
			di[i] = (int32) ((from + i) / np);
			pi[i] = (int32) ((from + i) % np);
		}
		moe_check(moe_infer_pairs(lm->model, ws, dparts, di, pparts, pi, M, NULL, &err), &err);
		for (int i = 0; i < M; i++)
		{
			Datum		values[3] = {Int32GetDatum(di[i] + 1), Int32GetDatum(pi[i] + 1),
			Float4GetDatum(r->pred[i])};
			bool		nulls[3] = {false, false, false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* ---- CALL moe_score(model, source, output_table, ...) ---------------- */

/* Names of the key columns, checked to exist in the source. */
static List *
key_columns(FunctionCallInfo fcinfo, int argno, Oid relid)
{
	List	   *keys = NIL;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (PG_ARGISNULL(argno))
		return NIL;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key_columns must not contain NULL")));
		name = TextDatumGetCString(elems[i]);
		if (get_attnum(relid, name) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" does not exist in %s", name, get_rel_name(relid))));
		keys = lappend(keys, name);
	}
	return keys;
}

/*
 * A vector column of the source, quoted: it must be one of its own columns
 * (not a system column) of type real[], since its values are read as
 * float arrays.
 */
static char *
vector_column(Oid relid, const char *source, const char *column, const char *what)
{
	AttrNumber	attnum = get_attnum(relid, column);
	Oid			type;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s \"%s\" is not a column of %s", what, column, source)));
	type = getBaseType(get_atttype(relid, attnum));
	if (type != FLOAT4ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s \"%s\" must be of type real[], not %s", what, column,
						format_type_be(type))));
	return pstrdup(quote_identifier(column));
}

/* The rows of one fetch, scored and inserted into the output. */
typedef struct score_batch
{
	int			n;
	int			n_keys;
	const float **drug_parts;	/* cached parts, one pointer per row */
	const float **protein_parts;
	Datum	  **keys;			/* [key][row] text */
	bool	  **key_nulls;
	float	   *pred;
} score_batch;

/*
 * The distinct parts of recent fetches (or window partitions), each copied
 * once into a table the model reads by row.  The table outlives the
 * fetches: fresh memory each time costs a page fault per page, and a part
 * seen before (a protein of every partition of a drug) is not copied again.
 * A row is known by the address of the cached part it copies, which means
 * the same part until the entity cache is retired (its generation), so the
 * table starts afresh then, for another model's width, and when it is full.
 */
typedef struct part_buffer
{
	MemoryContext cxt;
	float	   *data;
	Size		floats;			/* floats data holds */
	int			rows;			/* rows in use */
	int			part_floats;
	uint64		generation;		/* moe_entity_cache_generation() of the rows */
	HTAB	   *row_of;			/* part address -> row */
} part_buffer;

/* At most this many rows are kept: a fetch's worth. */
#define PART_TABLE_ROWS SCORE_FETCH

typedef struct part_row
{
	const float *part;
	int32		row;
} part_row;

static void
part_buffer_start(part_buffer *pb, int part_floats)
{
	HASHCTL		ctl;

	if (pb->row_of != NULL)
		hash_destroy(pb->row_of);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(const float *);
	ctl.entrysize = sizeof(part_row);
	ctl.hcxt = pb->cxt;
	pb->row_of = hash_create("moe_score part rows", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	pb->rows = 0;
	pb->part_floats = part_floats;
	pb->generation = moe_entity_cache_generation();
}

/* Room for rows rows of the current width (kept rows stay where they are). */
static void
part_buffer_grow(part_buffer *pb, int rows)
{
	Size		need = (Size) rows * pb->part_floats;

	if (need <= pb->floats)
		return;
	need = Min(Max(need, Max((Size) 64 * pb->part_floats, 2 * pb->floats)),
			   (Size) PART_TABLE_ROWS * pb->part_floats);
	pb->data = pb->data == NULL
		? MemoryContextAllocExtended(pb->cxt, sizeof(float) * need, MCXT_ALLOC_HUGE)
		: repalloc_huge(pb->data, sizeof(float) * need);
	pb->floats = need;
}

/*
 * The table of the parts of n rows (n <= PART_TABLE_ROWS); idx[i] is row
 * i's row of it.
 */
static float *
part_table(const float **parts, int n, int pf, int32 *idx, part_buffer *pb)
{
	Assert(n <= PART_TABLE_ROWS);
	if (pb->row_of == NULL || pb->part_floats != pf || pb->generation != moe_entity_cache_generation() ||
		pb->rows + n > PART_TABLE_ROWS)
		part_buffer_start(pb, pf);
	for (int i = 0; i < n; i++)
	{
		bool		found;
		part_row   *e = hash_search(pb->row_of, &parts[i], HASH_ENTER, &found);

		if (!found)
		{
			part_buffer_grow(pb, pb->rows + 1);
			memcpy(pb->data + (size_t) pb->rows * pf, parts[i], sizeof(float) * pf);
			e->row = pb->rows++;
		}
		idx[i] = e->row;
	}
	return pb->data;
}

/* Pairs of a fetch through the model, from tables of its distinct parts. */
static void
score_pairs(moe_loaded_model *lm, score_batch *b, part_buffer *dbuf, part_buffer *pbuf)
{
	moe_infer_ws *ws = moe_loaded_batch_ws(lm);
	int			pf = moe_entity_part_floats(lm->model);
	int32	   *di = palloc(sizeof(int32) * b->n),
			   *pi = palloc(sizeof(int32) * b->n);
	float	   *dtab = part_table(b->drug_parts, b->n, pf, di, dbuf);
	float	   *ptab = part_table(b->protein_parts, b->n, pf, pi, pbuf);
	moe_error	err;

	for (int from = 0; from < b->n; from += MOE_INFER_BATCH)
	{
		int			M = b->n - from < MOE_INFER_BATCH ? b->n - from : MOE_INFER_BATCH;

		moe_check(moe_infer_pairs(lm->model, ws, dtab, di + from, ptab, pi + from, M, NULL, &err),
				  &err);
		memcpy(b->pred + from, moe_infer_results(ws)->pred, sizeof(float) * M);
	}
}

static void
insert_batch(const char *insert_sql, score_batch *b, int n_keys)
{
	Oid		   *types = palloc(sizeof(Oid) * (n_keys + 1));
	Datum	   *values = palloc(sizeof(Datum) * (n_keys + 1));
	Datum	   *preds = palloc(sizeof(Datum) * b->n);
	int			dims[1] = {b->n},
				lbs[1] = {1};

	for (int k = 0; k < n_keys; k++)
	{
		types[k] = TEXTARRAYOID;
		values[k] = PointerGetDatum(construct_md_array(b->keys[k], b->key_nulls[k], 1, dims, lbs,
													   TEXTOID, -1, false, TYPALIGN_INT));
	}
	for (int i = 0; i < b->n; i++)
		preds[i] = Float4GetDatum(b->pred[i]);
	types[n_keys] = FLOAT4ARRAYOID;
	values[n_keys] = PointerGetDatum(construct_array(preds, b->n, FLOAT4OID, 4, true, TYPALIGN_INT));
	if (moe_spi_execute(insert_sql, n_keys + 1, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "moe_score: could not insert into the output table");
}

/*
 * The output table's name as given (resolved with the caller's
 * search_path, as CREATE TABLE would), schema-qualified and quoted, for
 * the SQL moe_score builds.
 */
static char *
output_table_name(List *names)
{
	RangeVar   *rv = makeRangeVarFromNameList(names);
	Oid			nsp = RangeVarGetCreationNamespace(rv);

	return quote_qualified_identifier(get_namespace_name(nsp), rv->relname);
}

/*
 * moe_score's Citus path, when the source allows it (citus_score.h) and
 * the caller owns it: on the workers the source is read as the caller, so
 * another role's view is read on the coordinator, as its owner.
 */
static bool
score_on_workers(moe_loaded_model *lm, Oid relid, const moe_relation_reader *reader,
				 const char *source, const char *output_sql, const char *drug_col,
				 const char *protein_col, List *keys, int64 *scored)
{
	moe_citus_target target;

	if (!moe_citus_score_target(relid, keys, &target))
		return false;
	if (reader->as_owner)
	{
		ereport(NOTICE,
				(errmsg("moe_score: scoring through the coordinator, not on the workers"),
				 errdetail("%s belongs to another role; only its owner's calls run on the workers.", source)));
		return false;
	}
	*scored = moe_citus_score(lm, relid, source, output_sql, drug_col, protein_col, keys, &target);
	return true;
}

PG_FUNCTION_INFO_V1(moe_score_sql);
Datum
moe_score_sql(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm;
	Oid			relid;
	char	   *source,
			   *output,
			   *output_sql,
			   *drug_col,
			   *protein_col;
	List	   *keys;
	List	   *output_name;
	bool		replace;
	StringInfoData q,
				ins;
	Portal		portal;
	ListCell   *lc;
	int			n_keys,
				k;
	int64		scored = 0,
				total = 0;
	instr_time	start,
				now;
	MemoryContext batch_cxt,
				old;
	part_buffer drug_buf = {0},
				protein_buf = {0};
	moe_relation_reader reader;

	for (int i = 1; i <= 6; i++)
		if (PG_ARGISNULL(i) && i != 5)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("source, output_table, drug_column, protein_column and replace must not be NULL")));
	lm = model_from_arg(fcinfo, 0);
	relid = PG_GETARG_OID(1);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation with OID %u does not exist", relid)));
	source = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
	moe_relation_reader_init(&reader, relid, "moe_score");
	output_name = stringToQualifiedNameList(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	output = NameListToQuotedString(output_name);
	output_sql = output_table_name(output_name);
	if (RangeVarGetRelid(makeRangeVarFromNameList(output_name), NoLock, true) == relid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("output_table %s is the source relation", output)));
	drug_col = vector_column(relid, source, NameStr(*PG_GETARG_NAME(3)), "drug_column");
	protein_col = vector_column(relid, source, NameStr(*PG_GETARG_NAME(4)), "protein_column");
	keys = key_columns(fcinfo, 5, relid);
	replace = PG_GETARG_BOOL(6);
	n_keys = list_length(keys);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the output: the key columns (their types) and the prediction */
	initStringInfo(&q);
	if (replace)
	{
		appendStringInfo(&q, "DROP TABLE IF EXISTS %s", output_sql);
		moe_spi_execute(q.data, 0, NULL, NULL, NULL, false, 0);
		resetStringInfo(&q);
	}
	appendStringInfo(&q, "CREATE TABLE %s AS SELECT ", output_sql);
	foreach(lc, keys)
		appendStringInfo(&q, "%s, ", quote_identifier(lfirst(lc)));
	appendStringInfo(&q, "NULL::pg_catalog.float4 AS prediction FROM %s WITH NO DATA", source);
	if (moe_spi_execute(q.data, 0, NULL, NULL, NULL, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "moe_score: could not create %s", output);

	/* a distributed source (Citus) is scored where its shards are */
	if (score_on_workers(lm, relid, &reader, source, output_sql, drug_col, protein_col, keys, &scored))
	{
		SPI_finish();
		ereport(NOTICE,
				(errmsg("moe_score: %lld pairs scored on the workers into %s", (long long) scored, output)));
		PG_RETURN_VOID();
	}

	/* INSERT ... SELECT from unnest($1::text[], ..., $n::real[]) with casts */
	initStringInfo(&ins);
	appendStringInfo(&ins, "INSERT INTO %s SELECT ", output_sql);
	k = 1;
	foreach(lc, keys)
	{
		/* keys travel as text and go back to their own type */
		appendStringInfo(&ins, "k%d::%s, ", k,
						 format_type_be_qualified(get_atttype(relid, get_attnum(relid, lfirst(lc)))));
		k++;
	}
	appendStringInfoString(&ins, "p FROM ROWS FROM (");
	for (k = 1; k <= n_keys; k++)
		appendStringInfo(&ins, "pg_catalog.unnest($%d), ", k);
	appendStringInfo(&ins, "pg_catalog.unnest($%d)) AS u(", n_keys + 1);
	for (k = 1; k <= n_keys; k++)
		appendStringInfo(&ins, "k%d, ", k);
	appendStringInfoString(&ins, "p)");

	resetStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	foreach(lc, keys)
		appendStringInfo(&q, "%s::pg_catalog.text, ", quote_identifier(lfirst(lc)));
	appendStringInfo(&q, "%s, %s FROM %s", drug_col, protein_col, source);
	/* the source is read as its owner when the caller is not (relation_read.h) */
	moe_relation_read_begin(&reader);
	portal = SPI_cursor_open_with_args(NULL, q.data, 0, NULL, NULL, NULL, true, 0);
	moe_relation_read_end(&reader);

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "moe_score batch", ALLOCSET_DEFAULT_SIZES);
	drug_buf.cxt = protein_buf.cxt = CurrentMemoryContext;
	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		score_batch b;

		/* the last chunk's parts are no longer held */
		moe_entity_cache_safe_point();
		moe_relation_read_begin(&reader);
		SPI_cursor_fetch(portal, true, SCORE_FETCH);
		moe_relation_read_end(&reader);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(batch_cxt);
		memset(&b, 0, sizeof(b));
		b.n = (int) SPI_processed;
		b.drug_parts = palloc(sizeof(float *) * b.n);
		b.protein_parts = palloc(sizeof(float *) * b.n);
		b.pred = palloc(sizeof(float) * b.n);
		b.keys = palloc(sizeof(Datum *) * (n_keys + 1));
		b.key_nulls = palloc(sizeof(bool *) * (n_keys + 1));
		for (k = 0; k < n_keys; k++)
		{
			b.keys[k] = palloc(sizeof(Datum) * b.n);
			b.key_nulls[k] = palloc(sizeof(bool) * b.n);
		}
		for (int i = 0; i < b.n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		dn,
						pn;
			Datum		dv,
						pv;

			for (k = 0; k < n_keys; k++)
				b.keys[k][i] = SPI_getbinval(tup, desc, k + 1, &b.key_nulls[k][i]);
			dv = SPI_getbinval(tup, desc, n_keys + 1, &dn);
			pv = SPI_getbinval(tup, desc, n_keys + 2, &pn);
			if (dn || pn)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s has a row with a NULL %s vector", source, dn ? "drug" : "protein")));
			b.drug_parts[i] = moe_entity_part(lm, MOE_DRUG, dv, "drug vector");
			b.protein_parts[i] = moe_entity_part(lm, MOE_PROTEIN, pv, "protein vector");
		}
		CHECK_FOR_INTERRUPTS();
		score_pairs(lm, &b, &drug_buf, &protein_buf);
		insert_batch(ins.data, &b, n_keys);
		scored += b.n;
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		if (scored - total >= 100000)
		{
			ereport(NOTICE,
					(errmsg("moe_score: %lld pairs scored, %.1f s", (long long) scored,
							INSTR_TIME_GET_DOUBLE(now))));
			total = scored;
		}
	}
	SPI_cursor_close(portal);
	SPI_finish();
	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	ereport(NOTICE,
			(errmsg("moe_score: %lld pairs scored into %s in %.2f s (%.0f pairs/s)", (long long) scored,
					output, INSTR_TIME_GET_DOUBLE(now),
					INSTR_TIME_GET_DOUBLE(now) > 0 ? scored / INSTR_TIME_GET_DOUBLE(now) : 0.0)));
	PG_RETURN_VOID();
}

/* ---- moe_predict_partition: a window partition as one batch ---------------- */

#define PARTITION_CHUNK 4096
StaticAssertDecl(PARTITION_CHUNK <= PART_TABLE_ROWS, "a chunk's parts fit one part table");

/* What one call site keeps between partitions (fn_extra). */
typedef struct partition_buffers
{
	float	   *pred;			/* the current partition's predictions */
	int64		capacity;
	MemoryContext chunk_cxt;	/* reset after every chunk of rows */
	part_buffer drug_buf;
	part_buffer protein_buf;
} partition_buffers;

/* What one partition keeps (partition-local memory, zeroed at its start). */
typedef struct partition_state
{
	bool		scored;
	int64		model;
	char		params_md5[33];
} partition_state;

static Datum
partition_arg(WindowObject win, int argno, int64 row, const char *what)
{
	bool		isnull,
				isout;
	Datum		d = WinGetFuncArgInPartition(win, argno, row, WINDOW_SEEK_HEAD, false, &isnull, &isout);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("moe_predict_partition: a row has a NULL %s vector", what)));
	return d;
}

/*
 * Score rows [0, n) of the partition into buf->pred, a chunk at a time:
 * each part is taken while its row is fetched (the next fetch may free the
 * vector), and parts are held only until the chunk is scored.
 */
static void
score_partition(WindowObject win, moe_loaded_model *lm, partition_buffers *buf, int64 n)
{
	for (int64 from = 0; from < n; from += PARTITION_CHUNK)
	{
		MemoryContext old;
		score_batch b;

		moe_entity_cache_safe_point();
		old = MemoryContextSwitchTo(buf->chunk_cxt);
		memset(&b, 0, sizeof(b));
		b.n = (int) Min(n - from, PARTITION_CHUNK);
		b.drug_parts = palloc(sizeof(float *) * b.n);
		b.protein_parts = palloc(sizeof(float *) * b.n);
		b.pred = buf->pred + from;
		for (int i = 0; i < b.n; i++)
		{
			b.drug_parts[i] = moe_entity_part(lm, MOE_DRUG, partition_arg(win, 0, from + i, "drug"),
											  "drug vector");
			b.protein_parts[i] = moe_entity_part(lm, MOE_PROTEIN,
												 partition_arg(win, 1, from + i, "protein"),
												 "protein vector");
		}
		score_pairs(lm, &b, &buf->drug_buf, &buf->protein_buf);
		MemoryContextSwitchTo(old);
		MemoryContextReset(buf->chunk_cxt);
		CHECK_FOR_INTERRUPTS();
	}
}

static partition_buffers *
partition_buffers_of(FunctionCallInfo fcinfo, int64 rows)
{
	partition_buffers *buf = fcinfo->flinfo->fn_extra;
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;

	if (buf == NULL)
	{
		buf = MemoryContextAllocZero(cxt, sizeof(partition_buffers));
		buf->chunk_cxt = AllocSetContextCreate(cxt, "moe_predict_partition chunk", ALLOCSET_DEFAULT_SIZES);
		buf->drug_buf.cxt = buf->protein_buf.cxt = cxt;
		fcinfo->flinfo->fn_extra = buf;
	}
	if (rows > buf->capacity)
	{
		if (buf->pred != NULL)
			pfree(buf->pred);
		buf->pred = MemoryContextAllocExtended(cxt, sizeof(float) * (Size) rows, MCXT_ALLOC_HUGE);
		buf->capacity = rows;
	}
	return buf;
}

/*
 * moe_predict_partition(drug, protein, model, params_md5) OVER (PARTITION
 * BY ...): the prediction of each row, every row of a partition scored in
 * one batch when the partition's first row is asked for.  model and
 * params_md5 (checked as moe_predict's) must be the same on every row.
 */
PG_FUNCTION_INFO_V1(moe_predict_partition_sql);
Datum
moe_predict_partition_sql(PG_FUNCTION_ARGS)
{
	WindowObject win = PG_WINDOW_OBJECT();
	partition_state *ps = WinGetPartitionLocalMemory(win, sizeof(partition_state));
	bool		null_model,
				null_md5;
	Datum		model = WinGetFuncArgCurrent(win, 2, &null_model);
	Datum		md5 = WinGetFuncArgCurrent(win, 3, &null_md5);
	char	   *md5_text;
	partition_buffers *buf;

	if (null_model || null_md5)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("moe_predict_partition: model and params_md5 must not be NULL")));
	md5_text = TextDatumGetCString(md5);
	if (!ps->scored)
	{
		moe_loaded_model *lm = moe_model_by_id_checked(DatumGetInt64(model), md5_text);
		int64		n = WinGetPartitionRowCount(win);

		buf = partition_buffers_of(fcinfo, n);
		score_partition(win, lm, buf, n);
		ps->scored = true;
		ps->model = DatumGetInt64(model);
		strlcpy(ps->params_md5, md5_text, sizeof(ps->params_md5));
	}
	else if (ps->model != DatumGetInt64(model) || strcmp(ps->params_md5, md5_text) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("moe_predict_partition: model and params_md5 must be the same on every row of a partition")));
	buf = fcinfo->flinfo->fn_extra;
	PG_RETURN_FLOAT4(buf->pred[WinGetCurrentPosition(win)]);
}
