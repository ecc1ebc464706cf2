/*
 * model_store.c — models for inference, loaded once per server when the
 * shared cache is on (shared_cache.c), else once per backend, and kept in
 * a small per-backend least-recently-used table of ready-to-use wrappers.
 *
 * A checkpoint row never changes after commit (a trigger refuses updates),
 * so a model cached by id stays valid for as long as its row exists.  When
 * a row is deleted, a trigger forgets it in the shared cache and sends a
 * relcache invalidation for moe.models; every backend then checks its
 * private copies once before using them again.
 */
#include "moe_pg.h"
#include "gemm_rows.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "checkpoint.h"
#include "entity_cache.h"
#include "privileges.h"
#include "shared_cache.h"

int			moe_local_cache_models = 8;

typedef struct cache_entry
{
	int64		id;				/* hash key */
	moe_loaded_model loaded;
	int			slot;			/* shared cache entry, when shared */
	uint64		generation;
	bool		verified;		/* checked since the last invalidation */
	uint64		last_use;
	int64		hits;
	TimestampTz last_use_time;
} cache_entry;

static HTAB *model_cache = NULL;
static uint64 use_clock = 0;
static bool said_not_shared = false;
static Oid	models_relid = InvalidOid;	/* moe.models; InvalidOid: look it up again */

/* ---- the table ------------------------------------------------------ */

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
	model_cache = hash_create("moe_pg model cache", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
entry_release(cache_entry *e)
{
	if (e->loaded.model != NULL)
	{
		moe_infer_ws_free(e->loaded.model, e->loaded.ws);
		moe_infer_ws_free(e->loaded.model, e->loaded.batch_ws);
		moe_model_free(e->loaded.model);
	}
	e->loaded.model = NULL;
	e->loaded.ws = NULL;
	e->loaded.batch_ws = NULL;
}

static void
remove_entry(cache_entry *e)
{
	int64		id = e->id;

	entry_release(e);
	hash_search(model_cache, &id, HASH_REMOVE, NULL);
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
		remove_entry(oldest);
}

void
moe_model_cache_forget(int64 id)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e;

	moe_entity_cache_forget(id);
	if (model_cache == NULL)
		return;
	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (id < 0 || e->id == id)
			remove_entry(e);
}

/* moe.models changed somewhere (a row was deleted, or the extension was
 * dropped): check private copies before the next use, and look the table
 * up again.  No catalog access here: callbacks must not. */
static void
relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e;

	if (relid != InvalidOid && relid != models_relid)
		return;
	models_relid = InvalidOid;
	if (model_cache == NULL)
		return;
	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		e->verified = false;
}

/* The OID of moe.models; when it changed (a re-created extension), every
 * cached model of the old one is forgotten. */
static Oid
current_models_relid(void)
{
	static Oid	known = InvalidOid;

	if (!OidIsValid(models_relid))
	{
		Oid			nsp = get_namespace_oid("moe", true);

		models_relid = OidIsValid(nsp) ? get_relname_relid("models", nsp) : InvalidOid;
		if (!OidIsValid(models_relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("moe.models does not exist: is the moe_pg extension installed in this database?")));
		if (models_relid != known)
			moe_model_cache_forget(-1);
		known = models_relid;
	}
	return models_relid;
}

void
moe_model_store_init(void)
{
	DefineCustomIntVariable("moe_pg.local_cache_models",
							"Models each backend keeps ready for inference.",
							NULL,
							&moe_local_cache_models,
							8, 1, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

/* ---- loading -------------------------------------------------------- */

static bool
model_row_exists(int64 id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	bool		exists;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM moe.models WHERE id = $1", 1, argtypes, args, NULL,
							  true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
	exists = SPI_processed > 0;
	SPI_finish();
	return exists;
}

/* A private copy of the model; NULL model if there is no such row. */
static void
load_local(int64 id, moe_loaded_model *out)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	bool		isnull;
	bytea	   *blob;
	moe_error	err;
	moe_status	st;
	moe_model  *model = NULL;

	out->model = NULL;
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
	if (moe_model_make_row_panels(model, &err) != MOE_OK)
	{
		moe_model_free(model);
		moe_raise(&err);
	}
	out->model = model;
}

/* Workspaces for a model just loaded or wrapped. */
static void
add_workspace(moe_loaded_model *lm)
{
	moe_error	err;

	if (moe_infer_ws_create(lm->model, 1, &lm->ws, &err) != MOE_OK)
	{
		moe_model_free(lm->model);
		lm->model = NULL;
		moe_raise(&err);
	}
}

/* Make entry e ready: the shared cache if it can, else a private copy. */
static void
load_entry(int64 id, cache_entry *e)
{
	moe_shared_model sm;

	memset(&e->loaded, 0, sizeof(e->loaded));
	e->loaded.id = id;
	if (moe_shared_acquire(current_models_relid(), id, &sm))
	{
		moe_error	err;

		if (moe_model_wrap(&sm.cfg, moe_cpu_backend(), sm.params, &e->loaded.model, &err) != MOE_OK)
			moe_raise(&err);
		moe_model_use_row_panels(e->loaded.model, sm.panels);
		e->loaded.shared = true;
		e->loaded.shared_slot = e->slot = sm.slot;
		e->loaded.shared_generation = e->generation = sm.generation;
	}
	else
	{
		if (!moe_shared_cache_enabled() && !said_not_shared)
		{
			ereport(NOTICE,
					(errmsg("moe_pg is not in shared_preload_libraries: each connection loads the models it uses"),
					 errhint("Add moe_pg to shared_preload_libraries (and size moe_pg.shared_cache_mb) to load each model once per server.")));
			said_not_shared = true;
		}
		else if (moe_shared_cache_enabled())
			ereport(NOTICE,
					(errmsg("model %lld does not fit in the shared cache (moe_pg.shared_cache_mb = %d): this connection loads it for itself",
							(long long) id, moe_shared_cache_mb)));
		load_local(id, &e->loaded);
		if (e->loaded.model == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model %lld does not exist", (long long) id)));
		e->loaded.shared = false;
	}
	add_workspace(&e->loaded);
	e->verified = true;
}

moe_loaded_model *
moe_model_by_id(int64 id)
{
	cache_entry *e;
	bool		found;

	cache_init();
	/* a cached model is served only to those who could load it themselves */
	moe_check_model_read(current_models_relid());
	e = hash_search(model_cache, &id, HASH_FIND, NULL);
	if (e != NULL)
	{
		bool		usable;

		if (e->loaded.shared)
			usable = moe_shared_repin(e->slot, e->generation, current_models_relid(), id);
		else
		{
			usable = e->verified || model_row_exists(id);
			e->verified = usable;
		}
		if (!usable)
		{
			remove_entry(e);
			e = NULL;
		}
	}
	if (e == NULL)
	{
		if (hash_get_num_entries(model_cache) >= moe_local_cache_models)
			evict_least_recent();
		e = hash_search(model_cache, &id, HASH_ENTER, &found);
		e->loaded.model = NULL;
		e->loaded.ws = NULL;
		e->loaded.batch_ws = NULL;
		e->hits = 0;
		PG_TRY();
		{
			load_entry(id, e);
		}
		PG_CATCH();
		{
			remove_entry(e);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	e->last_use = ++use_clock;
	e->last_use_time = GetCurrentTimestamp();
	e->hits++;
	return &e->loaded;
}

moe_infer_ws *
moe_loaded_batch_ws(moe_loaded_model *lm)
{
	moe_error	err;

	if (lm->batch_ws == NULL && moe_infer_ws_create(lm->model, MOE_INFER_BATCH, &lm->batch_ws, &err) != MOE_OK)
		moe_raise(&err);
	/* bulk products share out their columns among moe_pg.threads threads */
	moe_gemm_rows_set_threads(moe_threads);
	return lm->batch_ws;
}

int
moe_local_stats_list(moe_local_stats **out)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e;
	int			n = 0;

	*out = NULL;
	if (model_cache == NULL)
		return 0;
	*out = palloc0(sizeof(moe_local_stats) * (hash_get_num_entries(model_cache) + 1));
	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		(*out)[n].model_id = e->id;
		(*out)[n].shared = e->loaded.shared;
		(*out)[n].bytes = e->loaded.shared ? 0 : sizeof(float) * e->loaded.model->layout.n_params;
		(*out)[n].hits = e->hits;
		(*out)[n].last_use = e->last_use_time;
		n++;
	}
	return n;
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

/* ---- SQL: forgetting a deleted model, and moe_cache() ----------------- */

Oid
moe_models_relid(void)
{
	return current_models_relid();
}

/* AFTER DELETE (per row) or AFTER TRUNCATE (per statement) on moe.models. */
PG_FUNCTION_INFO_V1(moe_forget_model_trigger);
Datum
moe_forget_model_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	Oid			relid;
	int64		id = -1;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		(!(TRIGGER_FIRED_BY_DELETE(trig->tg_event) && TRIGGER_FIRED_FOR_ROW(trig->tg_event)) &&
		 !TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moe.forget_cached_model() must be called as an AFTER DELETE row or AFTER TRUNCATE trigger")));
	relid = RelationGetRelid(trig->tg_relation);
	if (TRIGGER_FIRED_BY_DELETE(trig->tg_event))
	{
		bool		isnull;

		id = DatumGetInt64(heap_getattr(trig->tg_trigtuple,
										attnameAttNum(trig->tg_relation, "id", false),
										RelationGetDescr(trig->tg_relation), &isnull));
	}
	moe_shared_forget(relid, id);
	moe_model_cache_forget(id);
	/* other backends check their private copies at their next transaction */
	CacheInvalidateRelcache(trig->tg_relation);
	return PointerGetDatum(NULL);
}
