/*
 * model_store.c — models for inference, loaded once per server when the
 * shared cache is on (shared_cache.c), else once per backend, and kept in
 * a small per-backend least-recently-used table of ready-to-use wrappers.
 *
 * A checkpoint row never changes after commit (a trigger refuses updates),
 * so a model is identified by its id and the version of its row (xmin).
 * A cached wrapper is used without reading the table until moe.models is
 * invalidated (a row deleted: the delete trigger sends a relcache
 * invalidation, delivered to every backend at its next transaction);
 * then the row is looked up once, and a wrapper whose row is gone or is
 * another version is dropped.  A row written by the current transaction
 * may still roll back: its model is loaded privately, checked on every
 * use and forgotten when the transaction ends, and never enters the
 * shared cache.
 *
 * On a Citus worker a model whose id the worker's own moe.models lacks is
 * read from the worker's copy of the cluster's moe.model_copies
 * (model_copies.h), the same way: by its row's relation and version.  No
 * invalidation tells a backend when a copy goes, so such a wrapper's row
 * is looked up again in every transaction.
 *
 * Lifetime: a moe_loaded_model returned in a transaction stays valid until
 * that transaction ends, whatever the cache does meanwhile (a caller may
 * hold it while other models are loaded, evicted or forgotten); wrappers
 * dropped while in use are freed at the end of the transaction.
 */
#include "model_store.h"
#include "checkpoint_rows.h"
#include "device.h"
#include "model_copies.h"
#include "gemm_rows.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "parser/parse_relation.h"
#include "common/md5.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "checkpoint.h"
#include "memory_budget.h"
#include "privileges.h"
#include "shared_cache.h"
#include "spi_safe.h"

int			moe_local_cache_models = 8;

typedef struct cache_entry
{
	int64		id;				/* hash key */
	moe_loaded_model *lm;		/* allocated apart: it may outlive the entry */
	Oid			relid;			/* the row's relation: moe.models or a copies shard */
	bool		from_copy;		/* relid is this worker's copy of moe.model_copies */
	TransactionId xmin;			/* the row version it was loaded from */
	bool		transient;		/* that version is the current transaction's */
	bool		verified;		/* row checked since the last invalidation */
	uint64		last_use;
	uint64		used_in;		/* xact_serial of its last use */
	int64		hits;
	TimestampTz last_use_time;
} cache_entry;

static HTAB *model_cache = NULL;
static uint64 use_clock = 0;
static uint64 xact_serial = 1;	/* counts this backend's transactions */
static List *retired = NIL;		/* wrappers dropped while in use: freed at xact end */
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
loaded_free(moe_loaded_model *lm)
{
	if (lm->model != NULL)
	{
		moe_infer_ws_free(lm->model, lm->ws);
		moe_infer_ws_free(lm->model, lm->batch_ws);
		moe_model_free(lm->model);
	}
	pfree(lm);
}

/* Remove e from the table; its wrapper goes now, or at the end of the
 * transaction when this transaction used it. */
static void
drop_entry(cache_entry *e)
{
	int64		id = e->id;

	if (e->used_in == xact_serial)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		retired = lappend(retired, e->lm);
		MemoryContextSwitchTo(old);
	}
	else
		loaded_free(e->lm);
	hash_search(model_cache, &id, HASH_REMOVE, NULL);
}

/* Drop least recently used entries not used in this transaction until
 * there is room for one more (the table may run over until it ends). */
static void
make_room(void)
{
	while (hash_get_num_entries(model_cache) >= moe_local_cache_models)
	{
		HASH_SEQ_STATUS seq;
		cache_entry *e,
				   *oldest = NULL;

		hash_seq_init(&seq, model_cache);
		while ((e = hash_seq_search(&seq)) != NULL)
			if (e->used_in != xact_serial && (oldest == NULL || e->last_use < oldest->last_use))
				oldest = e;
		if (oldest == NULL)
			return;
		drop_entry(oldest);
	}
}

/* What others keep per model, forgotten with it (moe_model_store_on_forget). */
#define MAX_FORGET_HOOKS 4
static void (*forget_hooks[MAX_FORGET_HOOKS]) (int64 id);
static int	n_forget_hooks = 0;

void
moe_model_store_on_forget(void (*fn) (int64 id))
{
	if (n_forget_hooks >= MAX_FORGET_HOOKS)
		elog(ERROR, "moe_pg: too many model forget hooks");
	forget_hooks[n_forget_hooks++] = fn;
}

void
moe_model_cache_forget(int64 id)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e;

	for (int i = 0; i < n_forget_hooks; i++)
		forget_hooks[i] (id);
	if (model_cache == NULL)
		return;
	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (id < 0 || e->id == id)
			drop_entry(e);
}

/* The end of a transaction: free what it dropped, forget its own rows'
 * models, and come back within moe_pg.local_cache_models. */
static void
xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS seq;
	cache_entry *e;
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE && event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PARALLEL_ABORT)
		return;
	xact_serial++;
	foreach(lc, retired)
		loaded_free(lfirst(lc));
	list_free(retired);
	retired = NIL;
	if (model_cache == NULL)
		return;
	hash_seq_init(&seq, model_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->transient)
			drop_entry(e);
		else if (e->from_copy)
			e->verified = false;	/* no invalidation says a copy went */
	}
	while (hash_get_num_entries(model_cache) > moe_local_cache_models)
	{
		int			before = hash_get_num_entries(model_cache);

		make_room();
		if (hash_get_num_entries(model_cache) == before)
			break;
	}
}

/* moe.models changed somewhere (a row was deleted, or the extension was
 * dropped): check rows before the next use, and look the table up again.
 * No catalog access here: callbacks must not. */
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
							"A transaction that uses more keeps them all until it ends.",
							&moe_local_cache_models,
							8, 1, 1024,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
}

/* ---- reading rows --------------------------------------------------- */

/* Where model id's row is (moe.models, else on a Citus worker its copy of
 * moe.model_copies) and its version; false when neither has it. */
static bool
model_row_locate(int64 id, Oid *relid, TransactionId *xmin)
{
	Oid			shard;

	if (moe_checkpoint_row_version(InvalidOid, id, xmin))
	{
		*relid = current_models_relid();
		return true;
	}
	shard = moe_model_copies_local_shard();
	if (OidIsValid(shard) && moe_checkpoint_row_version(shard, id, xmin))
	{
		*relid = shard;
		return true;
	}
	return false;
}

/*
 * ERROR 42704 for a model id this database does not hold; on a Citus node
 * the likely cause is a model not copied to it.
 */
static void
model_missing(int64 id)
{
	bool		citus = OidIsValid(get_extension_oid("citus", true));

	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("model %lld does not exist", (long long) id),
			 citus ? errhint("On a Citus cluster, run moe_distribute() on the coordinator to copy models to every node.") : 0));
}


/* ---- loading -------------------------------------------------------- */

/* A private copy of the model of row version xmin of relid; ERROR
 * without it. */
static void
load_local(int64 id, Oid relid, TransactionId xmin, moe_loaded_model *out)
{
	bytea	   *blob = moe_checkpoint_row_in(relid, id, xmin, NULL);
	moe_error	err;
	moe_status	st;
	moe_model  *model = NULL;

	if (blob == NULL)
		model_missing(id);
	st = moe_checkpoint_load(VARDATA(blob), VARSIZE(blob) - VARHDRSZ, moe_cpu_backend(), &model, &err);
	pfree(blob);
	if (st != MOE_OK)
		ereport(ERROR,
				(errcode(err.status == MOE_ERR_VERSION ? ERRCODE_FEATURE_NOT_SUPPORTED
						 : ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot load model %lld: %s", (long long) id, err.message)));
	out->model = model;
	if (moe_model_make_row_panels(model, &err) != MOE_OK)
		moe_raise(&err);
}

/*
 * Make lm the model of row version xmin with its workspace: the shared
 * cache's copy if it can, else (unless shared_only: then false) a private
 * one.
 */
static bool
fill_loaded(moe_loaded_model *lm, Oid relid, TransactionId xmin, bool transient, bool shared_only)
{
	int64		id = lm->id;
	moe_shared_model sm;
	moe_error	err;
	char	   *why = NULL;

	if (!transient && moe_shared_acquire(relid, id, xmin, &sm, &why))
	{
		if (moe_model_wrap(&sm.cfg, moe_cpu_backend(), sm.params, &lm->model, &err) != MOE_OK)
			moe_raise(&err);
		moe_model_use_row_panels(lm->model, sm.panels);
		lm->shared = true;
		lm->shared_slot = sm.slot;
		lm->shared_generation = sm.generation;
	}
	else if (shared_only)
		return false;
	else
	{
		if (!moe_shared_cache_enabled() && !said_not_shared)
		{
			ereport(NOTICE,
					(errmsg("moe_pg is not in shared_preload_libraries: each connection loads the models it uses"),
					 errhint("Add moe_pg to shared_preload_libraries (and size moe_pg.shared_cache_mb) to load each model once per server.")));
			said_not_shared = true;
		}
		else if (moe_shared_cache_enabled() && !transient)
			ereport(NOTICE,
					(errmsg("model %lld does not fit in the shared cache (moe_pg.shared_cache_mb = %d): this connection loads it for itself",
							(long long) id, moe_shared_cache_mb),
					 why ? errdetail("%s", why) : 0,
					 errhint("Its first use in a later transaction tries the shared cache again.")));
		load_local(id, relid, xmin, lm);
	}
	/* its own copy (when not shared) and the workspaces scoring makes */
	moe_check_memory_budget((lm->shared ? 0.0 : 2.0 * sizeof(float) * lm->model->layout.n_params) +
							moe_infer_ws_bytes(lm->model, 1) +
							moe_infer_ws_bytes(lm->model, MOE_INFER_BATCH),
							psprintf("serving model %lld", (long long) id),
							"Serve a smaller model");
	if (moe_infer_ws_create(lm->model, 1, &lm->ws, &err) != MOE_OK)
		moe_raise(&err);
	return true;
}

/* A loaded model (see fill_loaded); NULL only with shared_only.  ERROR
 * leaves nothing behind. */
static moe_loaded_model *
load_model(int64 id, Oid relid, TransactionId xmin, bool transient, bool shared_only)
{
	static uint64 loads = 0;
	moe_loaded_model *lm = MemoryContextAllocZero(TopMemoryContext, sizeof(moe_loaded_model));
	volatile bool loaded = false;

	lm->id = id;
	lm->load = ++loads;
	PG_TRY();
	{
		loaded = fill_loaded(lm, relid, xmin, transient, shared_only);
	}
	PG_CATCH();
	{
		loaded_free(lm);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!loaded)
	{
		loaded_free(lm);
		return NULL;
	}
	return lm;
}

moe_loaded_model *
moe_model_by_id(int64 id)
{
	cache_entry *e;
	Oid			relid = InvalidOid;
	TransactionId xmin = InvalidTransactionId;
	bool		row_read = false;

	cache_init();
	/* a cached model is served only to those who could load it themselves */
	moe_check_model_read(current_models_relid());
	e = hash_search(model_cache, &id, HASH_FIND, NULL);
	if (e != NULL && (!e->verified || e->transient))
	{
		row_read = true;
		if (!model_row_locate(id, &relid, &xmin))
		{
			drop_entry(e);
			model_missing(id);
		}
		if (relid != e->relid || !TransactionIdEquals(xmin, e->xmin))
		{
			drop_entry(e);
			e = NULL;
		}
		else
			e->verified = !e->transient;
	}
	if (e != NULL && e->lm->shared &&
		!moe_shared_repin(e->lm->shared_slot, e->lm->shared_generation, e->relid, id))
	{
		drop_entry(e);
		e = NULL;
	}
	if (e != NULL && !e->lm->shared && !e->transient && e->used_in != xact_serial &&
		moe_shared_cache_enabled())
	{
		/* it did not fit when it was loaded: room may have been made since */
		moe_loaded_model *lm = load_model(id, e->relid, e->xmin, false, true);

		if (lm != NULL)
		{
			loaded_free(e->lm);	/* not used in this transaction */
			e->lm = lm;
		}
	}
	if (e == NULL)
	{
		moe_loaded_model *lm;
		bool		transient,
					found;

		if (!row_read && !model_row_locate(id, &relid, &xmin))
			model_missing(id);
		transient = TransactionIdIsCurrentTransactionId(xmin);
		lm = load_model(id, relid, xmin, transient, false);
		make_room();
		e = hash_search(model_cache, &id, HASH_ENTER, &found);
		e->lm = lm;
		e->relid = relid;
		e->from_copy = relid != current_models_relid();
		e->xmin = xmin;
		e->transient = transient;
		e->verified = !transient;
		e->hits = 0;
	}
	e->last_use = ++use_clock;
	e->used_in = xact_serial;
	e->last_use_time = GetCurrentTimestamp();
	e->hits++;
	return e->lm;
}

void
moe_params_md5(const void *params, size_t n_params, char *out)
{
	const char *why = NULL;

	if (!pg_md5_hash(params, n_params * sizeof(float), out, &why))
		elog(ERROR, "could not compute MD5: %s", why ? why : "unknown error");
}

const char *
moe_loaded_params_md5(moe_loaded_model *lm)
{
	if (lm->params_md5_known)
		return lm->params_md5;
	/* read in place from the shared cache: computed once for the server */
	if (!(lm->shared && moe_shared_params_md5(lm->shared_slot, lm->shared_generation, lm->params_md5)))
	{
		moe_params_md5(lm->model->params, lm->model->layout.n_params, lm->params_md5);
		if (lm->shared)
			moe_shared_remember_params_md5(lm->shared_slot, lm->shared_generation, lm->params_md5);
	}
	lm->params_md5_known = true;
	return lm->params_md5;
}

moe_loaded_model *
moe_model_by_id_checked(int64 id, const char *expected)
{
	moe_loaded_model *lm;
	const char *actual;

	if (strlen(expected) != 32 || strspn(expected, "0123456789abcdef") != 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params_md5 must be 32 lowercase hexadecimal digits"),
				 errhint("Take it from moe_model_info(model) on the node the model was trained on.")));
	lm = moe_model_by_id(id);
	actual = moe_loaded_params_md5(lm);
	if (strcmp(actual, expected) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model %lld on this server has other weights than asked for", (long long) id),
				 errdetail("Its params_md5 is %s, the query asks for %s.", actual, expected),
				 errhint("Import the same checkpoint on every node under the same id (docs/citus.md).")));
	return lm;
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
		(*out)[n].shared = e->lm->shared;
		(*out)[n].bytes = e->lm->shared ? 0 : sizeof(float) * e->lm->model->layout.n_params;
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
	if (moe_spi_execute("SELECT d.model_id FROM moe.deployments d WHERE d.name = $1",
						1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.deployments");
	if (SPI_processed == 0)
	{
		int64		stored = 0,
					count = 0;

		/* a stored model of that name that no deployment points at (a
		 * sweep's or a cross-validation's, or one that was not better) */
		if (moe_spi_execute("SELECT max(m.id), count(*) FROM moe.models m WHERE m.name = $1",
							1, argtypes, args, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			Datum		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
			{
				stored = DatumGetInt64(v);
				count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			}
		}
		SPI_finish();
		if (stored > 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" is not deployed", name),
					 errdetail("moe.models holds %lld model%s of that name, the latest with id %lld.",
							   (long long) count, count == 1 ? "" : "s", (long long) stored),
					 errhint("Use the id (e.g. moe_predict(drug, protein, %lld)), or deploy it: SELECT moe_deploy(%s, %lld).",
							 (long long) stored, quote_literal_cstr(name), (long long) stored)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 errhint("Names come from moe_train(..., model_name => ...), moe_import_model() or moe_deploy(); see moe.deployments.")));
	}
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return id;
}

/* ---- writing moe.models ------------------------------------------------ */

/* moe_pg's own statements on moe.models under way in this backend. */
static int	models_write_depth = 0;

int
moe_models_write(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
				 long count)
{
	int			rc;

	models_write_depth++;
	PG_TRY();
	{
		rc = moe_spi_execute(sql, nargs, types, values, nulls, false, count);
	}
	PG_FINALLY();
	{
		models_write_depth--;
	}
	PG_END_TRY();
	return rc;
}

/* The role that owns the extension (what pg_restore runs as, or a superuser). */
static Oid
extension_owner(void)
{
	Oid			owner = InvalidOid;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute("SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'moe_pg'",
						0, NULL, NULL, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return owner;
}

/*
 * BEFORE INSERT or DELETE (per row) and BEFORE TRUNCATE on moe.models:
 * rows come and go only through moe_pg's functions (training, import,
 * moe_drop_model), which check what they store and who may drop it.  A
 * superuser or the extension's owner may still write directly (that is
 * how pg_restore fills the table).
 */
PG_FUNCTION_INFO_V1(moe_guard_models_trigger);
Datum
moe_guard_models_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	const char *action;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("moe.guard_models() must be called as a BEFORE trigger")));
	action = TRIGGER_FIRED_BY_INSERT(trig->tg_event) ? "insert into" :
		TRIGGER_FIRED_BY_DELETE(trig->tg_event) ? "delete from" :
		TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? "update" : "truncate";
	if (models_write_depth == 0 && !superuser() && GetUserId() != extension_owner())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s moe.models directly", action),
				 errdetail("Models are stored by moe_train() and moe_import_model() and removed by moe_drop_model(), which check what they write."),
				 errhint("Superusers and the extension's owner may write the table directly, e.g. to restore a dump.")));
	if (TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple);
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
	/* the shared entry goes when the delete commits (a rollback keeps it);
	 * this backend stops using the model now */
	moe_shared_forget_at_commit(relid, id);
	moe_model_cache_forget(id);
	/* other backends check their rows at their next transaction */
	CacheInvalidateRelcache(trig->tg_relation);
	return PointerGetDatum(NULL);
}
