/*
 * model_store.c — checkpoints from moe.models, loaded once per backend and
 * kept in a small least-recently-used cache.
 *
 * A checkpoint row never changes after commit (a trigger refuses updates),
 * so a model cached by id stays valid for as long as the row exists.
 */
#include "moe_pg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "checkpoint.h"

#define CACHE_CAPACITY 8

typedef struct cache_entry
{
	int64		id;				/* hash key */
	moe_loaded_model loaded;
	uint64		last_use;
} cache_entry;

static HTAB *model_cache = NULL;
static uint64 use_clock = 0;

static void
cache_init(void)
{
	HASHCTL		ctl;

	if (model_cache != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(cache_entry);
	ctl.hcxt = TopMemoryContext;
	model_cache = hash_create("moe_pg model cache", CACHE_CAPACITY * 2, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
entry_release(cache_entry *e)
{
	if (e->loaded.model != NULL)
	{
		moe_infer_ws_free(e->loaded.model, e->loaded.ws);
		moe_model_free(e->loaded.model);
	}
	e->loaded.model = NULL;
	e->loaded.ws = NULL;
}

static void
evict_least_recent(void)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e,
			   *oldest = NULL;

	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (oldest == NULL || e->last_use < oldest->last_use)
			oldest = e;
	if (oldest != NULL)
	{
		entry_release(oldest);
		hash_search(model_cache, &oldest->id, HASH_REMOVE, NULL);
	}
}

void
moe_model_cache_forget(int64 id)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e;

	if (model_cache == NULL)
		return;
	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (id < 0 || e->id == id)
		{
			entry_release(e);
			hash_search(model_cache, &e->id, HASH_REMOVE, NULL);
		}
}

/* Read the checkpoint row and build the model; NULL model if no such row. */
static void
load_from_table(int64 id, moe_loaded_model *out)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	bool		isnull;
	bytea	   *blob;
	moe_error	err;
	moe_status	st;
	moe_model  *model = NULL;
	moe_infer_ws *ws = NULL;

	out->model = NULL;
	out->ws = NULL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT checkpoint FROM moe.models WHERE id = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return;
	}
	blob = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	st = moe_checkpoint_load(VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), moe_cpu_backend(),
							 &model, &err);
	SPI_finish();
	if (st != MOE_OK)
		ereport(ERROR,
				(errcode(err.status == MOE_ERR_VERSION ? ERRCODE_FEATURE_NOT_SUPPORTED
						 : ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot load model %lld: %s", (long long) id, err.message)));
	if (moe_infer_ws_create(model, MOE_INFER_BATCH, &ws, &err) != MOE_OK)
	{
		moe_model_free(model);
		moe_raise(&err);
	}
	out->model = model;
	out->ws = ws;
	out->id = id;
}

moe_loaded_model *
moe_model_by_id(int64 id)
{
	cache_entry *e;
	bool		found;
	moe_loaded_model loaded;

	cache_init();
	e = hash_search(model_cache, &id, HASH_FIND, NULL);
	if (e != NULL)
	{
		e->last_use = ++use_clock;
		return &e->loaded;
	}

	load_from_table(id, &loaded);
	if (loaded.model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) id)));
	if (hash_get_num_entries(model_cache) >= CACHE_CAPACITY)
		evict_least_recent();
	e = hash_search(model_cache, &id, HASH_ENTER, &found);
	e->loaded = loaded;
	e->last_use = ++use_clock;
	return &e->loaded;
}

int64
moe_model_id_by_name(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		isnull;
	int64		id;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT model_id FROM moe.deployments WHERE name = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.deployments");
	if (SPI_processed == 0)
	{
		SPI_finish();
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 errhint("Names come from moe_train(..., model_name => ...), moe_import_model() or moe_deploy(); see moe.deployments.")));
	}
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}
