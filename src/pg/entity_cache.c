/*
 * entity_cache.c — see entity_cache.h.
 *
 * The live cache is a hash table in a memory context of its own.
 * Retiring it (it is full, or a model was forgotten) moves that context
 * under retired_cxt and starts an empty one; retired memory is freed at the
 * next safe point, so parts handed out before stay readable until the
 * caller says it holds none.
 */
#include "entity_cache.h"

#include "featurizer_spec.h"
#include "shared_cache.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

int			moe_entity_cache_mb = 64;

typedef struct entity_key
{
	uint64		load;			/* the moe_loaded_model's load number: a model
								 * loaded again (another row version under
								 * the same id) never meets these parts */
	int32		kind;			/* moe_entity_kind */
	int32		by_content;		/* 0: a TOAST pointer; 1: the bytes */
	Oid			toastrel;		/* TOAST pointer: relation and value */
	Oid			valueid;
	uint64		hash;			/* bytes: their hash and length */
	int32		len;
} entity_key;

typedef struct entity_entry
{
	entity_key	key;			/* hash key */
	int64		model_id;
	float	   *part;
	char	   *bytes;			/* content keys: the bytes, compared exactly */
	struct entity_entry *next_same_hash;	/* content collisions */
	int64		hits;
	Size		size;			/* memory held for this entry */
	bool		copied;			/* from the shared cache, not computed here */
} entity_entry;

static HTAB *cache = NULL;
static MemoryContext cache_cxt = NULL;	/* the live cache's table and parts */
static MemoryContext retired_cxt = NULL;	/* retired caches, freed at a safe point */
static Size cache_bytes = 0;
static uint64 generation = 0;	/* retirements so far */
static int64 stat_hits = 0,
			stat_misses = 0;

/* Hide every part: later lookups miss; memory goes at the next safe point. */
static void
retire_cache(void)
{
	if (cache_cxt == NULL)
		return;
	generation++;
	if (retired_cxt == NULL)
		retired_cxt = AllocSetContextCreate(TopMemoryContext, "moe_pg retired entity parts",
											ALLOCSET_SMALL_SIZES);
	MemoryContextSetParent(cache_cxt, retired_cxt);
	cache_cxt = NULL;
	cache = NULL;
	cache_bytes = 0;
}

static void
cache_init(void)
{
	HASHCTL		ctl;

	if (cache != NULL)
		return;
	cache_cxt = AllocSetContextCreate(TopMemoryContext, "moe_pg entity cache",
									  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(entity_key);
	ctl.entrysize = sizeof(entity_entry);
	ctl.hcxt = cache_cxt;
	cache = hash_create("moe_pg entity cache", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

uint64
moe_entity_cache_generation(void)
{
	return generation;
}

void
moe_entity_cache_safe_point(void)
{
	if (cache_bytes > (Size) moe_entity_cache_mb * 1024 * 1024)
		retire_cache();
	if (retired_cxt != NULL)
		MemoryContextReset(retired_cxt);	/* deletes the retired caches */
}

/* Nothing outlives its transaction holding a part. */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			moe_entity_cache_safe_point();
			break;
		default:
			break;
	}
}

void
moe_entity_cache_init(void)
{
	DefineCustomIntVariable("moe_pg.entity_cache_mb",
							"Memory each backend may use for drug and protein parts (emptied when full).",
							"A scoring call may exceed it by the parts of one pair, or of one chunk of moe_score, before it is emptied.",
							&moe_entity_cache_mb,
							64, 1, 64 * 1024,
							PGC_USERSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
	RegisterXactCallback(xact_callback, NULL);
	/* a model's parts go when the model store forgets it */
	moe_model_store_on_forget(moe_entity_cache_forget);
}

void
moe_entity_cache_forget(int64 id)
{
	/* parts of one model: rare (a model was dropped), so start afresh */
	retire_cache();
}

void
moe_entity_cache_usage(int64 id, int64 *entries, int64 *bytes, int64 *copied, int64 *hits,
					   int64 *misses)
{
	HASH_SEQ_STATUS seq;
	entity_entry *e;

	*entries = *bytes = *copied = 0;
	*hits = stat_hits;
	*misses = stat_misses;
	if (cache == NULL)
		return;
	hash_seq_init(&seq, cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		for (entity_entry *x = e; x != NULL; x = x->next_same_hash)
			if ((id < 0 || x->model_id == id) && x->part != NULL)
			{
				(*entries)++;
				*bytes += x->size;
				*copied += x->copied;
			}
}

/*
 * A 64-bit hash, eight bytes a step: hits compare the bytes exactly, so the
 * hash only has to spread keys, and it runs on every call of moe_predict.
 */
static uint64
hash_bytes64(const char *p, int len)
{
	uint64		h = 0x9e3779b97f4a7c15ULL ^ (uint64) len;
	int			i = 0;

	for (; i + 8 <= len; i += 8)
	{
		uint64		w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char) p[i]) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

/*
 * A vector's length against the model, naming the featurizer the model's
 * vectors came from when it does not fit, then (for a model that records
 * its featurizers) whether the values can have come from it.
 */
static const float *
checked_vector(moe_loaded_model *lm, moe_entity_kind kind, ArrayType *arr, const char *what)
{
	const moe_config *c = &lm->model->cfg;
	int			expected = kind == MOE_DRUG ? c->drug_dim : c->protein_dim;
	const char *side = kind == MOE_DRUG ? "drug" : "protein";
	const moe_featurizer *f;
	const float *v;
	char		why[200];

	moe_model_featurizers(lm);
	f = kind == MOE_DRUG ? &lm->drug_featurizer : &lm->protein_featurizer;
	if (ARR_NDIM(arr) == 1 && ARR_DIMS(arr)[0] != expected)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has %d elements, model %lld expects %d", what, ARR_DIMS(arr)[0],
						(long long) lm->id, expected),
				 errdetail("Its %s vectors come from %s.", side, moe_featurizer_text(f))));
	v = moe_vector_arg(arr, what, expected, NULL);
	if (!moe_featurizer_plausible(f, v, expected, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s cannot come from the featurizer model %lld was trained with: %s", what,
						(long long) lm->id, why),
				 errdetail("Its %s vectors come from %s.", side, moe_featurizer_text(f)),
				 errhint("Featurize with that call, or pass the %s text: moe_predict featurizes it.",
						 kind == MOE_DRUG ? "SMILES" : "sequence")));
	return v;
}

static float *
compute_part(moe_loaded_model *lm, moe_entity_kind kind, Datum arg, const char *what)
{
	ArrayType  *arr = DatumGetArrayTypeP(arg);
	const float *v = checked_vector(lm, kind, arr, what);
	int			pf = moe_entity_part_floats(lm->model);
	int32_t		zero = 0;
	float	   *part = MemoryContextAlloc(cache_cxt, sizeof(float) * pf);
	moe_error	err;

	moe_check(moe_entity_parts(lm->model, lm->ws, kind, v, &zero, 1, part, &err), &err);
	cache_bytes += sizeof(float) * pf;
	stat_misses++;
	return part;
}

/*
 * Parts of the n rows of a matrix argument (moe_predict_matrix), a batch at
 * a time: not cached, since such rows have no identity to key them by and
 * each appears once in the matrix.
 */
void
moe_entity_parts_of_matrix(moe_loaded_model *lm, moe_entity_kind kind, const float *rows, int n,
						   float *parts)
{
	moe_infer_ws *ws = moe_loaded_batch_ws(lm);
	int			dim = kind == MOE_DRUG ? lm->model->cfg.drug_dim : lm->model->cfg.protein_dim;
	int			pf = moe_entity_part_floats(lm->model);
	int32	   *idx = palloc(sizeof(int32) * MOE_INFER_BATCH);
	moe_error	err;

	for (int i = 0; i < MOE_INFER_BATCH; i++)
		idx[i] = i;
	for (int from = 0; from < n; from += MOE_INFER_BATCH)
	{
		int			m = n - from < MOE_INFER_BATCH ? n - from : MOE_INFER_BATCH;

		CHECK_FOR_INTERRUPTS();
		moe_check(moe_entity_parts(lm->model, ws, kind, rows + (size_t) from * dim, idx, m,
								   parts + (size_t) from * pf, &err), &err);
	}
	pfree(idx);
}

/*
 * The part of a vector read from a table: from the shared cache when
 * another backend (or a parallel worker) published it, else computed here
 * and published.
 */
static float *
shared_or_computed_part(moe_loaded_model *lm, moe_entity_kind kind, Datum arg, const char *what,
						const struct varatt_external *ptr, bool *copied)
{
	moe_shared_entity_key key;
	int			pf = moe_entity_part_floats(lm->model);
	float	   *part;

	*copied = false;
	if (!lm->shared)
		return compute_part(lm, kind, arg, what);
	memset(&key, 0, sizeof(key));
	key.kind = kind;
	key.toastrel = ptr->va_toastrelid;
	key.valueid = ptr->va_valueid;
	key.rawsize = ptr->va_rawsize;
	key.extinfo = (int32) ptr->va_extinfo;
	part = MemoryContextAlloc(cache_cxt, sizeof(float) * pf);
	if (moe_shared_entity_find(lm->shared_slot, lm->shared_generation, &key, part, pf))
	{
		cache_bytes += sizeof(float) * pf;
		*copied = true;
		return part;
	}
	pfree(part);
	part = compute_part(lm, kind, arg, what);
	moe_shared_entity_publish(lm->shared_slot, lm->shared_generation, &key, part, pf);
	return part;
}

const float *
moe_entity_part(moe_loaded_model *lm, moe_entity_kind kind, Datum arg, const char *what)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(arg);
	entity_key	key;
	entity_entry *e;
	bool		found,
				copied;
	float	   *part;

	cache_init();
	memset(&key, 0, sizeof(key));
	key.load = lm->load;
	key.kind = kind;

	/* Entries are added only after their part is computed, so an error in
	 * the vector leaves nothing behind. */
	if (VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		struct varatt_external ptr;

		VARATT_EXTERNAL_GET_POINTER(ptr, raw);
		key.toastrel = ptr.va_toastrelid;
		key.valueid = ptr.va_valueid;
		key.len = ptr.va_rawsize;
		e = hash_search(cache, &key, HASH_FIND, NULL);
		if (e != NULL)
		{
			e->hits++;
			stat_hits++;
			return e->part;
		}
		part = shared_or_computed_part(lm, kind, arg, what, &ptr, &copied);
		e = hash_search(cache, &key, HASH_ENTER, &found);
		e->model_id = lm->id;
		e->part = part;
		e->copied = copied;
		e->bytes = NULL;
		e->next_same_hash = NULL;
		e->hits = 0;
		e->size = sizeof(entity_entry) + sizeof(float) * moe_entity_part_floats(lm->model);
		cache_bytes += sizeof(entity_entry);
		return e->part;
	}

	/*
	 * By content: the bytes of the value as stored, header included.  An
	 * inline compressed vector is keyed by its compressed bytes, so a hit
	 * costs no decompression; equal bytes always mean an equal vector, and
	 * the same vector stored another way is at worst one more miss.
	 */
	{
		struct varlena *flat = VARATT_IS_EXTERNAL(raw) ? pg_detoast_datum_packed(raw) : raw;
		const char *bytes = (const char *) flat;
		int			len = VARSIZE_ANY(flat);
		entity_entry *head;
		char	   *copy;

		key.by_content = 1;
		key.hash = hash_bytes64(bytes, len);
		key.len = len;
		head = hash_search(cache, &key, HASH_FIND, NULL);
		for (e = head; e != NULL; e = e->next_same_hash)
			if (memcmp(e->bytes, bytes, len) == 0)
			{
				e->hits++;
				stat_hits++;
				return e->part;
			}
		part = compute_part(lm, kind, PointerGetDatum(flat), what);
		copy = MemoryContextAlloc(cache_cxt, len);
		memcpy(copy, bytes, len);
		if (head == NULL)
			e = hash_search(cache, &key, HASH_ENTER, &found);
		else
		{
			/* the same hash, other bytes: chain it */
			e = MemoryContextAllocZero(cache_cxt, sizeof(entity_entry));
			e->key = key;
			e->next_same_hash = head->next_same_hash;
			head->next_same_hash = e;
		}
		if (head == NULL)
			e->next_same_hash = NULL;
		e->model_id = lm->id;
		e->part = part;
		e->copied = false;
		e->bytes = copy;
		e->hits = 0;
		e->size = sizeof(entity_entry) + len + sizeof(float) * moe_entity_part_floats(lm->model);
		cache_bytes += sizeof(entity_entry) + len;
		return e->part;
	}
}

float
moe_cached_pair(moe_loaded_model *lm, Datum drug, Datum protein, moe_routing *routing,
				float *outputs)
{
	const moe_config *c = &lm->model->cfg;
	const moe_infer_out *r = moe_infer_results(lm->ws);
	const float *dp,
			   *pp;
	int32_t		zero = 0;
	moe_error	err;

	/* no part is held between two pairs */
	moe_entity_cache_safe_point();
	dp = moe_entity_part(lm, MOE_DRUG, drug, "drug vector");
	pp = moe_entity_part(lm, MOE_PROTEIN, protein, "protein vector");
	moe_check(moe_infer_pairs(lm->model, lm->ws, dp, &zero, pp, &zero, 1, outputs, &err), &err);
	if (routing != NULL)
	{
		memcpy(routing->probs, r->probs, sizeof(float) * c->n_experts);
		memcpy(routing->weights, r->sel_w, sizeof(float) * c->top_k);
		memcpy(routing->selected, r->host_sel, sizeof(int32_t) * c->top_k);
	}
	return r->pred[0];
}
