/*
 * dataset.c — reading a registered dataset through SPI.
 *
 * With key columns, pairs are read without their vectors and each entity's
 * vector is read once; without keys, every row's vectors are read and
 * entities are told apart by content.  Either way the engine gets each
 * distinct vector once, plus index arrays per split.
 */
#include "dataset.h"
#include "relation_read.h"
#include "spi_safe.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define FETCH_ROWS 5000

const char *
moe_split_name(moe_split s)
{
	static const char *const names[] = {"train", "valid", "test"};

	return names[s];
}

/* ---- the registry -------------------------------------------------------- */

static char *
quoted_column(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v == NULL ? NULL : pstrdup(quote_identifier(v));
}

moe_dataset_def *
moe_dataset_lookup(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	moe_dataset_def *def;
	MemoryContext outer = CurrentMemoryContext;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *nsp,
			   *rel;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute("SELECT d.relation::oid, d.drug_column, d.protein_column, d.label_column, "
						"d.split_column, d.fold_column, d.drug_key_column, d.protein_key_column "
						"FROM moe.datasets d WHERE d.name = $1",
						1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.datasets");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("dataset \"%s\" does not exist", name),
				 errhint("Register one with moe_create_dataset() or moe_load_dta(); see moe.datasets.")));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		def = palloc0(sizeof(moe_dataset_def));
		def->name = pstrdup(name);
		def->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		def->drug_col = quoted_column(tup, desc, 2);
		def->protein_col = quoted_column(tup, desc, 3);
		def->label_col = quoted_column(tup, desc, 4);
		def->split_col = quoted_column(tup, desc, 5);
		def->fold_col = quoted_column(tup, desc, 6);
		def->drug_key_col = quoted_column(tup, desc, 7);
		def->protein_key_col = quoted_column(tup, desc, 8);
		MemoryContextSwitchTo(spi);
	}
	nsp = get_namespace_name(get_rel_namespace(def->relid));
	rel = get_rel_name(def->relid);
	if (nsp == NULL || rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the relation of dataset \"%s\" no longer exists", name)));
	def->relation = MemoryContextStrdup(outer, quote_qualified_identifier(nsp, rel));
	SPI_finish();
	return def;
}

/* ---- growing arrays ------------------------------------------------------ */

static void
rows_push(MemoryContext cxt, moe_split_rows *s, int32 d, int32 p, float y, const char *extra,
		  bool with_extra)
{
	if (s->n == s->capacity)
	{
		int			cap = s->capacity ? s->capacity * 2 : 1024;

		if (s->capacity == 0)
		{
			s->drug_idx = MemoryContextAllocHuge(cxt, sizeof(int32) * cap);
			s->protein_idx = MemoryContextAllocHuge(cxt, sizeof(int32) * cap);
			s->label = MemoryContextAllocHuge(cxt, sizeof(float) * cap);
			if (with_extra)
				s->extra = MemoryContextAllocHuge(cxt, sizeof(char *) * cap);
		}
		else
		{
			s->drug_idx = repalloc_huge(s->drug_idx, sizeof(int32) * cap);
			s->protein_idx = repalloc_huge(s->protein_idx, sizeof(int32) * cap);
			s->label = repalloc_huge(s->label, sizeof(float) * cap);
			if (with_extra)
				s->extra = repalloc_huge(s->extra, sizeof(char *) * cap);
		}
		s->capacity = cap;
	}
	s->drug_idx[s->n] = d;
	s->protein_idx[s->n] = p;
	s->label[s->n] = y;
	if (with_extra)
		s->extra[s->n] = extra ? MemoryContextStrdup(cxt, extra) : NULL;
	s->n++;
}

moe_rows
moe_split_as_rows(const moe_split_rows *s)
{
	moe_rows	r = {s->n, s->drug_idx, s->protein_idx, s->label};

	return r;
}

/* Distinct vectors of one kind (drug or protein) with their keys. */
typedef struct entity_table
{
	MemoryContext cxt;			/* where the arrays live */
	const char *what;			/* "drug" or "protein" */
	int			dim;			/* 0 until the first vector */
	int			n;
	int			capacity;
	float	   *vec;
	char	  **key;
	HTAB	   *by_key;			/* key text -> index, when keyed */
	HTAB	   *by_hash;		/* content hash -> first index, when keyless */
	int		   *next_same_hash; /* chains of indices sharing a hash */
} entity_table;

typedef struct key_entry
{
	char		key[NAMEDATALEN * 4];
	int			index;
} key_entry;

typedef struct hash_entry
{
	uint64		hash;
	int			first;
} hash_entry;

static void
entity_init(entity_table *t, MemoryContext cxt, const char *what, bool keyed)
{
	HASHCTL		ctl;

	memset(t, 0, sizeof(*t));
	t->cxt = cxt;
	t->what = what;
	memset(&ctl, 0, sizeof(ctl));
	ctl.hcxt = cxt;
	if (keyed)
	{
		ctl.keysize = sizeof(((key_entry *) 0)->key);
		ctl.entrysize = sizeof(key_entry);
		t->by_key = hash_create("moe_pg entity keys", 1024, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	else
	{
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(hash_entry);
		t->by_hash = hash_create("moe_pg entity hashes", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

static int
entity_append(entity_table *t, const float *v, const char *key)
{
	if (t->n == t->capacity)
	{
		int			cap = t->capacity ? t->capacity * 2 : 64;

		if (t->capacity == 0)
		{
			t->vec = MemoryContextAllocHuge(t->cxt, sizeof(float) * (size_t) cap * t->dim);
			t->key = MemoryContextAlloc(t->cxt, sizeof(char *) * cap);
			t->next_same_hash = MemoryContextAlloc(t->cxt, sizeof(int) * cap);
		}
		else
		{
			t->vec = repalloc_huge(t->vec, sizeof(float) * (size_t) cap * t->dim);
			t->key = repalloc(t->key, sizeof(char *) * cap);
			t->next_same_hash = repalloc(t->next_same_hash, sizeof(int) * cap);
		}
		t->capacity = cap;
	}
	memcpy(t->vec + (size_t) t->n * t->dim, v, sizeof(float) * t->dim);
	t->key[t->n] = key ? MemoryContextStrdup(t->cxt, key) : NULL;
	t->next_same_hash[t->n] = -1;
	return t->n++;
}

/* Check a vector datum and return its floats; where names the row. */
static const float *
vector_values(entity_table *t, Datum d, bool isnull, const char *where)
{
	ArrayType  *arr;
	const float *v;
	int			n;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s vector is NULL %s", t->what, where)));
	arr = DatumGetArrayTypeP(d);
	if (ARR_ELEMTYPE(arr) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s vectors must be real[]", t->what)));
	if (ARR_NDIM(arr) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s vector %s must be a non-empty one-dimensional array", t->what, where)));
	if (ARR_HASNULL(arr) && array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s vector %s contains NULL elements", t->what, where)));
	n = ARR_DIMS(arr)[0];
	if (t->dim == 0)
		t->dim = n;
	else if (n != t->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s vector %s has %d elements, earlier ones have %d", t->what, where, n, t->dim)));
	v = (const float *) ARR_DATA_PTR(arr);
	for (int i = 0; i < n; i++)
		if (!isfinite(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s vector %s has a %s at element %d", t->what, where,
							isnan(v[i]) ? "NaN" : "infinite value", i + 1)));
	return v;
}

/*
 * Column col of a fetch must be real[] before its values are read as
 * arrays: a dataset's relation can change type after it was registered.
 */
static void
check_vector_type(const moe_dataset_def *def, TupleDesc desc, int col, const char *what)
{
	Oid			type = getBaseType(SPI_gettypeid(desc, col));

	if (type != FLOAT4ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s vectors of dataset \"%s\" must be of type real[], not %s", what,
						def->name, format_type_be(type))));
}

/* FNV-1a over the bytes of a vector. */
static uint64
content_hash(const float *v, int n)
{
	const unsigned char *p = (const unsigned char *) v;
	uint64		h = 1469598103934665603ULL;

	for (size_t i = 0; i < sizeof(float) * (size_t) n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int
entity_by_content(entity_table *t, const float *v)
{
	uint64		h = content_hash(v, t->dim);
	bool		found;
	hash_entry *e = hash_search(t->by_hash, &h, HASH_ENTER, &found);
	int			i;

	if (found)
	{
		for (i = e->first; i >= 0; i = t->next_same_hash[i])
			if (memcmp(t->vec + (size_t) i * t->dim, v, sizeof(float) * t->dim) == 0)
				return i;
		i = entity_append(t, v, NULL);
		t->next_same_hash[i] = e->first;
		e->first = i;
		return i;
	}
	e->first = entity_append(t, v, NULL);
	return e->first;
}

static int
entity_by_key(entity_table *t, const char *key, bool create, const float *v)
{
	key_entry  *e;
	bool		found;

	if (strlen(key) >= sizeof(e->key))
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("%s key \"%.40s...\" is too long", t->what, key)));
	e = hash_search(t->by_key, key, create ? HASH_ENTER : HASH_FIND, &found);
	if (e == NULL)
		return -1;
	if (!found)
		e->index = entity_append(t, v, key);
	return e->index;
}

/* ---- canonical order ------------------------------------------------------
 *
 * Training shuffles rows by their position, so the order rows are read in
 * is part of the model.  A relation promises no order (synchronized scans,
 * another plan, a rewritten table, a distributed view), so entities and
 * rows are put in an order that depends only on their content: entities by
 * key (bytes) or, without keys, by vector bytes; rows by (drug, protein,
 * label, extra).  Rows equal in all of these are interchangeable.
 */

static int
compare_entities(const void *a, const void *b, void *arg)
{
	const entity_table *t = arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;

	if (t->key != NULL && t->key[i] != NULL && t->key[j] != NULL)
		return strcmp(t->key[i], t->key[j]);
	return memcmp(t->vec + (size_t) i * t->dim, t->vec + (size_t) j * t->dim,
				  sizeof(float) * t->dim);
}

/* Sort t's entities; new_index[old] receives each one's new index. */
static void
entity_sort(entity_table *t, int *new_index)
{
	int		   *order = palloc(sizeof(int) * Max(t->n, 1));
	float	   *vec;
	char	  **key;

	for (int i = 0; i < t->n; i++)
		order[i] = i;
	qsort_arg(order, t->n, sizeof(int), compare_entities, t);
	vec = MemoryContextAllocHuge(t->cxt, sizeof(float) * (size_t) Max(t->n, 1) * Max(t->dim, 1));
	key = MemoryContextAlloc(t->cxt, sizeof(char *) * Max(t->n, 1));
	for (int i = 0; i < t->n; i++)
	{
		memcpy(vec + (size_t) i * t->dim, t->vec + (size_t) order[i] * t->dim,
			   sizeof(float) * t->dim);
		key[i] = t->key != NULL ? t->key[order[i]] : NULL;
		new_index[order[i]] = i;
	}
	if (t->vec != NULL)
		pfree(t->vec);
	t->vec = vec;
	t->key = key;
	pfree(order);
}

static int
compare_rows(const void *a, const void *b, void *arg)
{
	const moe_split_rows *s = arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;
	const char *ei,
			   *ej;

	if (s->drug_idx[i] != s->drug_idx[j])
		return s->drug_idx[i] < s->drug_idx[j] ? -1 : 1;
	if (s->protein_idx[i] != s->protein_idx[j])
		return s->protein_idx[i] < s->protein_idx[j] ? -1 : 1;
	if (s->label[i] != s->label[j])
		return s->label[i] < s->label[j] ? -1 : 1;
	if (memcmp(&s->label[i], &s->label[j], sizeof(float)) != 0)	/* -0 and 0 */
		return memcmp(&s->label[i], &s->label[j], sizeof(float));
	ei = s->extra != NULL ? s->extra[i] : NULL;
	ej = s->extra != NULL ? s->extra[j] : NULL;
	if (ei == NULL || ej == NULL)
		return (ei != NULL) - (ej != NULL);
	return strcmp(ei, ej);
}

/* Renumber one split's entities and sort its rows, in place. */
static void
rows_sort(moe_split_rows *s, const int *new_drug, const int *new_protein)
{
	int		   *order = palloc(sizeof(int) * Max(s->n, 1));
	int32	   *di = palloc(sizeof(int32) * Max(s->n, 1));
	int32	   *pi = palloc(sizeof(int32) * Max(s->n, 1));
	float	   *y = palloc(sizeof(float) * Max(s->n, 1));
	char	  **extra = s->extra ? palloc(sizeof(char *) * Max(s->n, 1)) : NULL;

	for (int r = 0; r < s->n; r++)
	{
		s->drug_idx[r] = new_drug[s->drug_idx[r]];
		s->protein_idx[r] = new_protein[s->protein_idx[r]];
		order[r] = r;
	}
	qsort_arg(order, s->n, sizeof(int), compare_rows, s);
	for (int r = 0; r < s->n; r++)
	{
		di[r] = s->drug_idx[order[r]];
		pi[r] = s->protein_idx[order[r]];
		y[r] = s->label[order[r]];
		if (extra)
			extra[r] = s->extra[order[r]];
	}
	memcpy(s->drug_idx, di, sizeof(int32) * s->n);
	memcpy(s->protein_idx, pi, sizeof(int32) * s->n);
	memcpy(s->label, y, sizeof(float) * s->n);
	if (extra)
		memcpy(s->extra, extra, sizeof(char *) * s->n);
	pfree(order);
	pfree(di);
	pfree(pi);
	pfree(y);
	if (extra)
		pfree(extra);
}

static void
put_in_canonical_order(entity_table *drugs, entity_table *proteins, moe_dataset_data *out)
{
	int		   *new_drug = palloc(sizeof(int) * Max(drugs->n, 1));
	int		   *new_protein = palloc(sizeof(int) * Max(proteins->n, 1));

	entity_sort(drugs, new_drug);
	entity_sort(proteins, new_protein);
	for (int s = 0; s < MOE_N_SPLITS; s++)
	{
		rows_sort(&out->split[s], new_drug, new_protein);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(new_drug);
	pfree(new_protein);
}

/* ---- reading ------------------------------------------------------------- */

static int
split_of(const char *s)
{
	if (strcmp(s, "train") == 0 || strcmp(s, "training") == 0)
		return MOE_SPLIT_TRAIN;
	if (strcmp(s, "valid") == 0 || strcmp(s, "val") == 0 || strcmp(s, "validation") == 0)
		return MOE_SPLIT_VALID;
	if (strcmp(s, "test") == 0 || strcmp(s, "testing") == 0)
		return MOE_SPLIT_TEST;
	return -1;
}

/* (The queries over the dataset's relation are written fully qualified,
 * not run under a pinned search_path: spi_safe.h says why.) */
static void
append_fold_filter(StringInfo q, const moe_dataset_def *def)
{
	if (def->fold_col != NULL)
		appendStringInfo(q, " WHERE %s OPERATOR(pg_catalog.=) $1", def->fold_col);
}

static Portal
open_cursor(const char *sql, const moe_dataset_def *def, int fold)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(fold)};
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL, sql, def->fold_col ? 1 : 0, argtypes, args,
									   NULL, true, 0);
	if (portal == NULL)
		elog(ERROR, "could not open a cursor on dataset \"%s\"", def->name);
	return portal;
}

/* Read entity vectors by key: one row per key. */
static void
read_keyed_entities(const moe_dataset_def *def, int fold, entity_table *t, const char *key_col,
					const char *vec_col, MemoryContext row_cxt)
{
	StringInfoData q;
	Portal		portal;

	initStringInfo(&q);
	appendStringInfo(&q, "SELECT DISTINCT ON (k) k, v FROM (SELECT %s::pg_catalog.text AS k, %s AS v FROM %s",
					 key_col, vec_col, def->relation);
	append_fold_filter(&q, def);
	appendStringInfoString(&q, ") s WHERE k IS NOT NULL ORDER BY k");
	portal = open_cursor(q.data, def, fold);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		check_vector_type(def, SPI_tuptable->tupdesc, 2, t->what);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			char	   *key = SPI_getvalue(tup, desc, 1);
			Datum		vd = SPI_getbinval(tup, desc, 2, &isnull);
			char	   *where = psprintf("for key \"%s\"", key);
			const float *v = vector_values(t, vd, isnull, where);

			entity_by_key(t, key, true, v);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

static float
label_value(Datum d, bool isnull, const char *where)
{
	double		y;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("label is NULL %s", where)));
	y = DatumGetFloat8(d);
	if (!isfinite(y) || !isfinite((float) y))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("label %s is not a finite real number", where)));
	return (float) y;
}

const char *
moe_dataset_drug_key(const moe_dataset_data *d, int i)
{
	return d->drug_key != NULL && d->drug_key[i] != NULL ? d->drug_key[i] : psprintf("#%d", i + 1);
}

const char *
moe_dataset_protein_key(const moe_dataset_data *d, int i)
{
	return d->protein_key != NULL && d->protein_key[i] != NULL ? d->protein_key[i]
		: psprintf("#%d", i + 1);
}

void
moe_dataset_read(const moe_dataset_def *def, int fold, const char *extra_column,
				 moe_dataset_data *out)
{
	MemoryContext data_cxt = CurrentMemoryContext;
	MemoryContext row_cxt = AllocSetContextCreate(data_cxt, "moe_pg dataset row",
												  ALLOCSET_DEFAULT_SIZES);
	bool		keyed = def->drug_key_col != NULL && def->protein_key_col != NULL;
	entity_table drugs,
				proteins;
	StringInfoData q;
	Portal		portal;
	int64		row = 0;
	const char *extra = extra_column ? psprintf("%s::pg_catalog.text", quote_identifier(extra_column))
		: "NULL::pg_catalog.text";

	moe_relation_reader reader;

	memset(out, 0, sizeof(*out));
	entity_init(&drugs, data_cxt, "drug", keyed);
	entity_init(&proteins, data_cxt, "protein", keyed);
	moe_relation_reader_init(&reader, def->relid, psprintf("dataset \"%s\"", def->name));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	moe_relation_read_begin(&reader);

	initStringInfo(&q);
	if (keyed)
	{
		read_keyed_entities(def, fold, &drugs, def->drug_key_col, def->drug_col, row_cxt);
		read_keyed_entities(def, fold, &proteins, def->protein_key_col, def->protein_col, row_cxt);
		appendStringInfo(&q, "SELECT %s::pg_catalog.text, %s::pg_catalog.text, %s::pg_catalog.float8, "
						 "%s::pg_catalog.text, %s FROM %s",
						 def->drug_key_col, def->protein_key_col, def->label_col, def->split_col,
						 extra, def->relation);
	}
	else
		appendStringInfo(&q, "SELECT %s, %s, %s::pg_catalog.float8, %s::pg_catalog.text, %s FROM %s",
						 def->drug_col, def->protein_col, def->label_col, def->split_col,
						 extra, def->relation);
	append_fold_filter(&q, def);

	portal = open_cursor(q.data, def, fold);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		if (!keyed)
		{
			check_vector_type(def, SPI_tuptable->tupdesc, 1, "drug");
			check_vector_type(def, SPI_tuptable->tupdesc, 2, "protein");
		}
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		null_label,
						n1,
						n2;
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			char	   *split_text = SPI_getvalue(tup, desc, 4);
			Datum		yd = SPI_getbinval(tup, desc, 3, &null_label);
			int			split;
			int			di,
						pi;
			char	   *where;

			row++;
			split = split_text == NULL ? -1 : split_of(split_text);
			if (split < 0)
			{
				out->ignored_rows++;
				MemoryContextSwitchTo(old);
				MemoryContextReset(row_cxt);
				continue;
			}
			if (keyed)
			{
				char	   *dk = SPI_getvalue(tup, desc, 1);
				char	   *pk = SPI_getvalue(tup, desc, 2);

				if (dk == NULL || pk == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("dataset \"%s\" has a row with a NULL %s key", def->name,
									dk == NULL ? "drug" : "protein")));
				where = psprintf("for pair (%s, %s)", dk, pk);
				di = entity_by_key(&drugs, dk, false, NULL);
				pi = entity_by_key(&proteins, pk, false, NULL);
				if (di < 0 || pi < 0)
					elog(ERROR, "no vector read %s", where);
			}
			else
			{
				Datum		dv = SPI_getbinval(tup, desc, 1, &n1);
				Datum		pv = SPI_getbinval(tup, desc, 2, &n2);

				where = psprintf("in row %lld of dataset \"%s\"", (long long) row, def->name);
				di = entity_by_content(&drugs, vector_values(&drugs, dv, n1, where));
				pi = entity_by_content(&proteins, vector_values(&proteins, pv, n2, where));
			}
			rows_push(data_cxt, &out->split[split], di, pi, label_value(yd, null_label, where),
					  SPI_getvalue(tup, desc, 5), extra_column != NULL);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	moe_relation_read_end(&reader);
	SPI_finish();
	MemoryContextDelete(row_cxt);
	put_in_canonical_order(&drugs, &proteins, out);

	out->n_drugs = drugs.n;
	out->drug_dim = drugs.dim;
	out->drug_vec = drugs.vec;
	out->drug_key = drugs.key;
	out->n_proteins = proteins.n;
	out->protein_dim = proteins.dim;
	out->protein_vec = proteins.vec;
	out->protein_key = proteins.key;
}
