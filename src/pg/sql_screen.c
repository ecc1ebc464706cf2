/*
 * sql_screen.c — moe_screen(): the best n compounds of a library for one
 * target.
 *
 * The compounds are read from a table or view (vectors, or SMILES that are
 * featurized the way the model's training vectors were), their parts come
 * from the entity cache (a library screened against a second target
 * computes none again), and the pairs go through the model in batches with
 * the row-independent products: every score has the bits moe_predict would
 * give it.  Only the best n are kept, in a heap.  A distributed library
 * (Citus) of vectors is screened on the workers instead (citus_score.h).
 */
#include "model_store.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "citus_score.h"
#include "entity_cache.h"
#include "featurizer_spec.h"
#include "infer.h"
#include "relation_read.h"

#define SCREEN_FETCH MOE_INFER_BATCH
#define SCREEN_MAX_N 1000000

/* One scored compound; the heap keeps the n best at hand. */
typedef struct hit
{
	float		score;
	int64		order;			/* the compound's position in the scan: ties */
	char	   *key;
} hit;

/* Whether a ranks below b: lower score, then later in the scan. */
static bool
worse(const hit *a, const hit *b)
{
	return a->score < b->score || (a->score == b->score && a->order > b->order);
}

/* Min-heap on worse(): the root is the weakest hit kept. */
static void
sift_down(hit *h, int n, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;
		hit			t;

		if (l < n && worse(&h[l], &h[m]))
			m = l;
		if (r < n && worse(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void
sift_up(hit *h, int i)
{
	while (i > 0 && worse(&h[i], &h[(i - 1) / 2]))
	{
		hit			t = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static int
best_first(const void *a, const void *b)
{
	const hit  *x = a,
			   *y = b;

	return worse(x, y) ? 1 : worse(y, x) ? -1 : 0;
}

/*
 * The n best compounds by the workers, when the library is distributed
 * (Citus) and the caller may read it as itself (the workers read it as the
 * caller); false, with a NOTICE when it is distributed, otherwise.
 */
static bool
screen_on_workers(ReturnSetInfo *rsinfo, moe_loaded_model *lm, Oid relid, const moe_relation_reader *reader,
				  const char *source, const char *drug_col, const char *key_col, bool drug_text,
				  Datum target, int n)
{
	char	  **keys;
	float	   *scores;
	int			kept;

	if (!moe_citus_is_distributed(relid))
		return false;
	if (reader->as_owner || drug_text)
	{
		ereport(NOTICE,
				(errmsg("moe_screen: screening through the coordinator, not on the workers"),
				 reader->as_owner ? errdetail("%s belongs to another role; only its owner's calls run on the workers.", source)
				 : errdetail("Compounds given as SMILES are featurized here; give vectors to screen on the workers.")));
		return false;
	}
	kept = moe_citus_screen(lm, source, drug_col, key_col, target, n, CurrentMemoryContext, &keys, &scores);
	for (int i = 0; i < kept; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, keys[i] == NULL, false};

		values[0] = Int32GetDatum(i + 1);
		values[1] = keys[i] != NULL ? CStringGetTextDatum(keys[i]) : (Datum) 0;
		values[2] = Float4GetDatum(scores[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return true;
}

/* The type of column of relid, or an error naming it. */
static Oid
column_type(Oid relid, const char *relname, const char *column, const char *what)
{
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s \"%s\" is not a column of %s", what, column, relname)));
	return getBaseType(get_atttype(relid, attnum));
}

/*
 * moe_screen(model, target, compounds, n, drug_column, key_column): the n
 * best-scoring compounds for the target, best first.  model is an id or a
 * deployed name, target a protein vector or sequence.
 */
PG_FUNCTION_INFO_V1(moe_screen_sql);
Datum
moe_screen_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	moe_loaded_model *lm;
	Oid			relid;
	char	   *source,
			   *drug_col,
			   *key_col;
	bool		drug_text;
	int			n,
				kept = 0,
				pf;
	int64		scanned = 0;
	hit		   *heap;
	float	   *target_part,
			   *drug_parts;
	int32	   *di,
			   *pi;
	Datum		target;
	moe_relation_reader reader;
	StringInfoData q;
	Portal		portal;
	MemoryContext keys_cxt,
				batch_cxt,
				old;
	moe_error	err;

	for (int i = 0; i < 6; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("model, target, compounds, n, drug_column and key_column must not be NULL")));
	n = PG_GETARG_INT32(3);
	if (n < 1 || n > SCREEN_MAX_N)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be between 1 and %d, not %d", SCREEN_MAX_N, n)));
	if (get_fn_expr_argtype(fcinfo->flinfo, 0) == TEXTOID)
		lm = moe_model_by_id(moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	else
		lm = moe_model_by_id(PG_GETARG_INT64(0));
	relid = PG_GETARG_OID(2);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("compounds relation with OID %u does not exist", relid)));
	source = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
	moe_relation_reader_init(&reader, relid, "moe_screen");
	drug_col = NameStr(*PG_GETARG_NAME(4));
	key_col = NameStr(*PG_GETARG_NAME(5));
	{
		Oid			t = column_type(relid, source, drug_col, "drug_column");

		if (t != FLOAT4ARRAYOID && t != TEXTOID && t != VARCHAROID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("drug_column \"%s\" must be real[] (vectors) or text (SMILES), not %s", drug_col,
							format_type_be(t))));
		drug_text = t != FLOAT4ARRAYOID;
		(void) column_type(relid, source, key_col, "key_column");
	}
	InitMaterializedSRF(fcinfo, 0);

	/* the target's part, once, in memory of our own */
	pf = moe_entity_part_floats(lm->model);
	target = get_fn_expr_argtype(fcinfo->flinfo, 1) == TEXTOID
		? moe_featurize_for_model(lm, false, PG_GETARG_TEXT_PP(1)) : PG_GETARG_DATUM(1);
	moe_entity_cache_safe_point();
	target_part = palloc(sizeof(float) * pf);
	memcpy(target_part, moe_entity_part(lm, MOE_PROTEIN, target, "target"), sizeof(float) * pf);

	heap = palloc(sizeof(hit) * n);
	drug_parts = palloc(sizeof(float) * (size_t) pf * SCREEN_FETCH);
	di = palloc(sizeof(int32) * SCREEN_FETCH);
	pi = palloc0(sizeof(int32) * SCREEN_FETCH);
	for (int i = 0; i < SCREEN_FETCH; i++)
		di[i] = i;
	keys_cxt = AllocSetContextCreate(CurrentMemoryContext, "moe_screen keys", ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "moe_screen batch", ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (screen_on_workers(rsinfo, lm, relid, &reader, source, drug_col, key_col, drug_text, target, n))
	{
		SPI_finish();
		return (Datum) 0;
	}
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT %s::pg_catalog.text, %s FROM %s", quote_identifier(key_col),
					 quote_identifier(drug_col), source);
	/* read as the relation's owner when the caller is not (relation_read.h) */
	moe_relation_read_begin(&reader);
	portal = SPI_cursor_open_with_args(NULL, q.data, 0, NULL, NULL, NULL, true, 0);
	moe_relation_read_end(&reader);
	for (;;)
	{
		int			rows;
		moe_infer_ws *ws = moe_loaded_batch_ws(lm);
		const float *pred;

		moe_entity_cache_safe_point();
		moe_relation_read_begin(&reader);
		SPI_cursor_fetch(portal, true, SCREEN_FETCH);
		moe_relation_read_end(&reader);
		if (SPI_processed == 0)
			break;
		rows = (int) SPI_processed;
		old = MemoryContextSwitchTo(batch_cxt);
		for (int i = 0; i < rows; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);

			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s has a compound with a NULL %s", source, drug_col)));
			if (drug_text)
				d = moe_featurize_for_model(lm, true, DatumGetTextPP(d));
			memcpy(drug_parts + (size_t) i * pf, moe_entity_part(lm, MOE_DRUG, d, "compound"),
				   sizeof(float) * pf);
		}
		CHECK_FOR_INTERRUPTS();
		moe_check(moe_infer_pairs(lm->model, ws, drug_parts, di, target_part, pi, rows, NULL, &err), &err);
		pred = moe_infer_results(ws)->pred;
		for (int i = 0; i < rows; i++)
		{
			hit			h = {pred[i], scanned + i, NULL};

			if (kept == n && !worse(&heap[0], &h))
				continue;
			{
				char	   *key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

				h.key = key != NULL ? MemoryContextStrdup(keys_cxt, key) : NULL;
			}
			if (kept < n)
			{
				heap[kept] = h;
				sift_up(heap, kept++);
			}
			else
			{
				if (heap[0].key != NULL)
					pfree(heap[0].key);
				heap[0] = h;
				sift_down(heap, kept, 0);
			}
		}
		scanned += rows;
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
	}
	SPI_cursor_close(portal);
	SPI_finish();

	qsort(heap, kept, sizeof(hit), best_first);
	for (int i = 0; i < kept; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, heap[i].key == NULL, false};

		values[0] = Int32GetDatum(i + 1);
		values[1] = heap[i].key != NULL ? CStringGetTextDatum(heap[i].key) : (Datum) 0;
		values[2] = Float4GetDatum(heap[i].score);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
