/*
 * shared_cache.c — see shared_cache.h.
 *
 * Layout: a control block in the main shared memory (one LWLock, one
 * condition variable, a fixed table of entries, and the free extents of
 * the area), followed by the area itself: moe_pg.shared_cache_mb bytes
 * handed out by a first-fit allocator whose bookkeeping lives in the
 * control block, not in the area.  With nothing pinned, everything evicted
 * leaves one free extent the size of the area, so the accounting and what
 * the allocator can give never drift apart.  An entry's data is its
 * moe_config followed by the parameters and the row panels, which
 * backends wrap without copying.
 *
 * Pins: a transaction that uses an entry pins it (an atomic counter taken
 * under the shared lock); the pins are dropped when the transaction (or
 * parallel worker) ends, or when the process exits.  Eviction and freeing
 * happen under the exclusive lock and only when an entry has no pins.
 */
#include "checkpoint_rows.h"
#include "device.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "access/transam.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "checkpoint.h"
#include "infer.h"
#include "shared_cache.h"

#define SLOTS 64
#define TRANCHE "moe_pg"

int			moe_shared_cache_mb = 256;

typedef enum entry_state
{
	ENTRY_EMPTY = 0,
	ENTRY_LOADING,				/* a backend is reading it; others wait */
	ENTRY_READY,
	ENTRY_RETIRED				/* forgotten while pinned; freed at the last unpin */
} entry_state;

typedef struct shared_entry
{
	Oid			dbid;			/* with relid, model_id and xmin: the key */
	Oid			relid;
	int64		model_id;
	TransactionId xmin;			/* the version of the model's row */
	entry_state state;
	bool		forget_when_loaded; /* forgotten while LOADING: retire it then */
	uint64		generation;
	Size		data;			/* offset in the area: configuration, parameters, row panels */
	Size		bytes;
	Size		panels_at;		/* byte offset of the row panels in data */
	Size		entities;		/* offset of the entity_table, made on the first publish */
	Size		entity_bytes;
	bool		entities_refused;	/* it did not fit when last tried ... */
	uint64		entities_refused_at;	/* ... at this count of frees: try again after one */
	pg_atomic_uint32 pins;
	pg_atomic_uint64 hits;
	pg_atomic_uint64 last_use;	/* TimestampTz */
	bool		params_md5_known;	/* the weights' fingerprint, once a backend asked */
	char		params_md5[33];
} shared_entry;

/* A run of free bytes in the area. */
typedef struct area_extent
{
	Size		offset;
	Size		length;
} area_extent;

#define NO_OFFSET ((Size) -1)

/* How many times each model was loaded since the server started. */
#define LOAD_COUNTS 256

typedef struct load_count
{
	Oid			dbid;
	Oid			relid;
	int64		model_id;
	int64		loads;
} load_count;

typedef struct shared_control
{
	LWLock	   *lock;
	ConditionVariable loaded;	/* broadcast when a load finishes or fails */
	uint64		next_generation;
	Size		capacity;		/* the area's size */
	Size		used;			/* taken by entries and their entity tables */
	uint64		frees;			/* entries freed so far: room may have appeared */
	shared_entry slots[SLOTS];
	load_count	load_counts[LOAD_COUNTS];
	/* free extents of the area, by offset; each allocation splits at most
	 * one, so there are never more than the allocations plus one */
	int			n_free;
	area_extent free[2 * SLOTS + 1];
	/* the area follows, at a MAXALIGNed offset */
} shared_control;

int			moe_shared_entity_mb = 16;

static shared_control *control = NULL;
static char *area = NULL;		/* the area's first byte (same in every backend) */
static shmem_request_hook_type prev_request_hook = NULL;
static shmem_startup_hook_type prev_startup_hook = NULL;

/* Slots this backend has pinned in the current transaction. */
static bool pinned[SLOTS];
static bool callbacks_registered = false;

/* Models whose rows this transaction deleted: forgotten when it commits. */
typedef struct pending_forget
{
	Oid			relid;
	int64		id;
} pending_forget;

static List *pending_forgets = NIL;

static void forget_pending(bool commit);

static Size
area_size(void)
{
	return (Size) moe_shared_cache_mb * 1024 * 1024;
}

static Size
control_size(void)
{
	return MAXALIGN(sizeof(shared_control));
}

bool
moe_shared_cache_enabled(void)
{
	return control != NULL && moe_shared_cache_mb > 0;
}

/* ---- startup ---------------------------------------------------------- */

static void
request_hook(void)
{
	if (prev_request_hook)
		prev_request_hook();
	RequestAddinShmemSpace(control_size() + area_size());
	RequestNamedLWLockTranche(TRANCHE, 1);
}

static void
startup_hook(void)
{
	bool		found;

	if (prev_startup_hook)
		prev_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	control = ShmemInitStruct("moe_pg shared model cache", control_size() + area_size(), &found);
	if (!found)
	{
		memset(control, 0, sizeof(shared_control));
		control->lock = &(GetNamedLWLockTranche(TRANCHE))->lock;
		ConditionVariableInit(&control->loaded);
		control->next_generation = 1;
		control->capacity = area_size();
		control->n_free = 1;
		control->free[0].offset = 0;
		control->free[0].length = area_size();
		for (int i = 0; i < SLOTS; i++)
		{
			pg_atomic_init_u32(&control->slots[i].pins, 0);
			pg_atomic_init_u64(&control->slots[i].hits, 0);
			pg_atomic_init_u64(&control->slots[i].last_use, 0);
			control->slots[i].data = control->slots[i].entities = NO_OFFSET;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
moe_shared_cache_init(void)
{
	DefineCustomIntVariable("moe_pg.shared_entity_mb",
							"Shared memory per cached model for drug and protein parts that every backend reuses.",
							"Taken from moe_pg.shared_cache_mb when a model's first part is shared; 0 shares none.",
							&moe_shared_entity_mb,
							16, 0, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_MB,
							NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
	{
		/*
		 * Loaded into a running backend: PGC_POSTMASTER variables can no
		 * longer be created, and there is no shared cache, which SHOW says
		 * with a read-only 0.
		 */
		moe_shared_cache_mb = 0;
		DefineCustomIntVariable("moe_pg.shared_cache_mb",
								"Shared memory for models loaded once per server (needs shared_preload_libraries).",
								"moe_pg was not preloaded, so there is no shared cache.",
								&moe_shared_cache_mb,
								0, 0, 0,
								PGC_INTERNAL, GUC_UNIT_MB,
								NULL, NULL, NULL);
		return;
	}
	DefineCustomIntVariable("moe_pg.shared_cache_mb",
							"Shared memory for models loaded once per server (needs shared_preload_libraries).",
							"0 turns the shared cache off: every backend loads models itself.",
							&moe_shared_cache_mb,
							256, 0, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_MB,
							NULL, NULL, NULL);
	if (moe_shared_cache_mb == 0)
		return;
	prev_request_hook = shmem_request_hook;
	shmem_request_hook = request_hook;
	prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_hook;
}

/* ---- the area's allocator (exclusive lock held) ------------------------- */

/* Allocations are whole cache lines: a model's floats start aligned. */
static Size
footprint(Size bytes)
{
	return TYPEALIGN(PG_CACHE_LINE_SIZE, bytes > 0 ? bytes : 1);
}

/* The offset of bytes (a footprint) from the smallest free extent that
 * holds them, or NO_OFFSET. */
static Size
area_allocate(Size bytes)
{
	int			best = -1;
	Size		offset;

	for (int i = 0; i < control->n_free; i++)
		if (control->free[i].length >= bytes &&
			(best < 0 || control->free[i].length < control->free[best].length))
			best = i;
	if (best < 0)
		return NO_OFFSET;
	offset = control->free[best].offset;
	control->free[best].offset += bytes;
	control->free[best].length -= bytes;
	if (control->free[best].length == 0)
	{
		memmove(&control->free[best], &control->free[best + 1],
				sizeof(area_extent) * (control->n_free - best - 1));
		control->n_free--;
	}
	return offset;
}

/* Give back bytes at offset, merging with the free neighbours. */
static void
area_release(Size offset, Size bytes)
{
	int			at = 0;

	while (at < control->n_free && control->free[at].offset < offset)
		at++;
	if (at > 0 && control->free[at - 1].offset + control->free[at - 1].length == offset)
	{
		control->free[at - 1].length += bytes;
		if (at < control->n_free && offset + bytes == control->free[at].offset)
		{
			control->free[at - 1].length += control->free[at].length;
			memmove(&control->free[at], &control->free[at + 1],
					sizeof(area_extent) * (control->n_free - at - 1));
			control->n_free--;
		}
		return;
	}
	if (at < control->n_free && offset + bytes == control->free[at].offset)
	{
		control->free[at].offset = offset;
		control->free[at].length += bytes;
		return;
	}
	Assert(control->n_free < lengthof(control->free));
	memmove(&control->free[at + 1], &control->free[at], sizeof(area_extent) * (control->n_free - at));
	control->free[at].offset = offset;
	control->free[at].length = bytes;
	control->n_free++;
}

static void *
area_address(Size offset)
{
	return area + offset;
}

/* ---- pins ------------------------------------------------------------- */

static void
free_entry(shared_entry *e)
{
	if (e->data != NO_OFFSET)
		area_release(e->data, e->bytes);
	if (e->entities != NO_OFFSET)
		area_release(e->entities, e->entity_bytes);
	control->used -= e->bytes + e->entity_bytes;
	control->frees++;
	e->data = NO_OFFSET;
	e->entities = NO_OFFSET;
	e->entity_bytes = 0;
	e->entities_refused = false;
	e->bytes = 0;
	e->state = ENTRY_EMPTY;
	e->forget_when_loaded = false;
	e->model_id = 0;
	e->xmin = InvalidTransactionId;
	e->dbid = InvalidOid;
	e->relid = InvalidOid;
}

static void
unpin_all(void)
{
	bool		retire = false;

	if (control == NULL)
		return;
	for (int i = 0; i < SLOTS; i++)
		if (pinned[i])
		{
			pinned[i] = false;
			if (pg_atomic_sub_fetch_u32(&control->slots[i].pins, 1) == 0 &&
				control->slots[i].state == ENTRY_RETIRED)
				retire = true;
		}
	if (retire)
	{
		LWLockAcquire(control->lock, LW_EXCLUSIVE);
		for (int i = 0; i < SLOTS; i++)
		{
			shared_entry *e = &control->slots[i];

			if (e->state == ENTRY_RETIRED && pg_atomic_read_u32(&e->pins) == 0)
				free_entry(e);
		}
		LWLockRelease(control->lock);
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			forget_pending(true);
			unpin_all();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_pending(false);
			unpin_all();
			break;
		default:
			break;
	}
}

static void
exit_callback(int code, Datum arg)
{
	unpin_all();
}

/* Find the area and register the pin cleanups, once per backend. */
static void
attach(void)
{
	if (area == NULL)
		area = (char *) control + control_size();
	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		on_shmem_exit(exit_callback, (Datum) 0);
		callbacks_registered = true;
	}
}

/* Pin slot i (lock held, shared or exclusive); a transaction pins once. */
static void
pin(int i)
{
	shared_entry *e = &control->slots[i];

	if (!pinned[i])
	{
		pg_atomic_add_fetch_u32(&e->pins, 1);
		pinned[i] = true;
	}
	pg_atomic_add_fetch_u64(&e->hits, 1);
	pg_atomic_write_u64(&e->last_use, (uint64) GetCurrentTimestamp());
}

static void
describe(int i, moe_shared_model *out)
{
	shared_entry *e = &control->slots[i];
	char	   *base = area_address(e->data);

	out->slot = i;
	out->generation = e->generation;
	memcpy(&out->cfg, base, sizeof(moe_config));
	out->params = (float *) (base + MAXALIGN(sizeof(moe_config)));
	out->panels = (float *) (base + e->panels_at);
	out->bytes = e->bytes;
}

/* ---- lookup and load ---------------------------------------------------- */

static bool
same_key(Oid dbid, Oid relid, int64 id, Oid d2, Oid r2, int64 i2)
{
	return dbid == d2 && relid == r2 && id == i2;
}

/* The load counter of a model (exclusive lock held); a full table
 * recycles the slot the model hashes to. */
static load_count *
load_counter(Oid relid, int64 id)
{
	int			home = (int) (((uint64) id * 31 + relid + MyDatabaseId) % LOAD_COUNTS);

	for (int j = 0; j < LOAD_COUNTS; j++)
	{
		load_count *c = &control->load_counts[(home + j) % LOAD_COUNTS];

		if (same_key(c->dbid, c->relid, c->model_id, MyDatabaseId, relid, id) || c->model_id == 0)
		{
			c->dbid = MyDatabaseId;
			c->relid = relid;
			c->model_id = id;
			return c;
		}
	}
	control->load_counts[home].dbid = MyDatabaseId;
	control->load_counts[home].relid = relid;
	control->load_counts[home].model_id = id;
	control->load_counts[home].loads = 0;
	return &control->load_counts[home];
}

static int64
loads_of(const shared_entry *e)
{
	for (int j = 0; j < LOAD_COUNTS; j++)
	{
		const load_count *c = &control->load_counts[j];

		if (same_key(c->dbid, c->relid, c->model_id, e->dbid, e->relid, e->model_id))
			return c->loads;
	}
	return 0;
}

static bool
is_entry(const shared_entry *e, Oid relid, int64 id)
{
	return same_key(e->dbid, e->relid, e->model_id, MyDatabaseId, relid, id);
}

static bool
is_version(const shared_entry *e, Oid relid, int64 id, TransactionId xmin)
{
	return is_entry(e, relid, id) && TransactionIdEquals(e->xmin, xmin);
}

static int
find(Oid relid, int64 id, TransactionId xmin, bool ready_only)
{
	for (int i = 0; i < SLOTS; i++)
	{
		shared_entry *e = &control->slots[i];

		if (is_version(e, relid, id, xmin) &&
			(e->state == ENTRY_READY || (!ready_only && e->state == ENTRY_LOADING)))
			return i;
	}
	return -1;
}

bool
moe_shared_params_md5(int slot, uint64 generation, char *out)
{
	bool		known;

	if (!moe_shared_cache_enabled() || slot < 0 || slot >= SLOTS)
		return false;
	attach();
	LWLockAcquire(control->lock, LW_SHARED);
	known = control->slots[slot].generation == generation && control->slots[slot].params_md5_known;
	if (known)
		memcpy(out, control->slots[slot].params_md5, sizeof(control->slots[slot].params_md5));
	LWLockRelease(control->lock);
	return known;
}

void
moe_shared_remember_params_md5(int slot, uint64 generation, const char *md5)
{
	if (!moe_shared_cache_enabled() || slot < 0 || slot >= SLOTS)
		return;
	attach();
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	if (control->slots[slot].generation == generation)
	{
		strlcpy(control->slots[slot].params_md5, md5, sizeof(control->slots[slot].params_md5));
		control->slots[slot].params_md5_known = true;
	}
	LWLockRelease(control->lock);
}

bool
moe_shared_repin(int slot, uint64 generation, Oid relid, int64 id)
{
	bool		ok;

	if (!moe_shared_cache_enabled() || slot < 0 || slot >= SLOTS)
		return false;
	attach();
	LWLockAcquire(control->lock, LW_SHARED);
	ok = control->slots[slot].state == ENTRY_READY && is_entry(&control->slots[slot], relid, id) &&
		control->slots[slot].generation == generation;
	if (ok)
		pin(slot);
	LWLockRelease(control->lock);
	return ok;
}

/* The least recently used entry no transaction pins, or -1; lock held. */
static int
lru_unpinned(void)
{
	int			victim = -1;

	for (int i = 0; i < SLOTS; i++)
	{
		shared_entry *e = &control->slots[i];

		if (e->state == ENTRY_READY && pg_atomic_read_u32(&e->pins) == 0 &&
			(victim < 0 || pg_atomic_read_u64(&e->last_use) <
			 pg_atomic_read_u64(&control->slots[victim].last_use)))
			victim = i;
	}
	return victim;
}

/*
 * bytes from the area, evicting unpinned entries least recently used first
 * until a free extent holds them (the free space of pinned entries' gaps
 * can be fragmented, so this can take more than the accounting says);
 * exclusive lock held.  *taken is the footprint accounted.  NO_OFFSET only
 * when no unpinned entry is left to evict.
 */
static Size
allocate_evicting(Size bytes, Size *taken)
{
	*taken = footprint(bytes);
	for (;;)
	{
		Size		offset = area_allocate(*taken);
		int			victim;

		if (offset != NO_OFFSET)
		{
			control->used += *taken;
			return offset;
		}
		victim = lru_unpinned();
		if (victim < 0)
			return NO_OFFSET;
		free_entry(&control->slots[victim]);
	}
}

/* Why need bytes found no room although everything unpinned was evicted:
 * the pinned entries and their sizes; lock held. */
static char *
why_no_room(Size need)
{
	StringInfoData s;
	int			pinned_entries = 0;

	initStringInfo(&s);
	if (footprint(need) > control->capacity)
	{
		appendStringInfo(&s, "It needs %.1f MB, more than the whole cache holds (%.1f MB).",
						 footprint(need) / 1048576.0, control->capacity / 1048576.0);
		return s.data;
	}
	appendStringInfo(&s, "It needs %.1f MB; every model left in the cache is in use by a transaction:",
					 footprint(need) / 1048576.0);
	for (int i = 0; i < SLOTS; i++)
	{
		shared_entry *e = &control->slots[i];

		if ((e->state == ENTRY_READY || e->state == ENTRY_RETIRED || e->state == ENTRY_LOADING) &&
			(pg_atomic_read_u32(&e->pins) > 0 || e->state == ENTRY_LOADING))
		{
			appendStringInfo(&s, "%s model %lld (%.1f MB, %s)", pinned_entries > 0 ? "," : "",
							 (long long) e->model_id, (e->bytes + e->entity_bytes) / 1048576.0,
							 e->state == ENTRY_LOADING ? "loading" : "pinned");
			pinned_entries++;
		}
	}
	appendStringInfo(&s, " (%.1f of %.1f MB used).", control->used / 1048576.0,
					 control->capacity / 1048576.0);
	return s.data;
}

/* The checkpoint of row version xmin of model id in relid (moe.models or
 * a copies shard, model_copies.h), parsed; false when there is no such
 * row. */
static bool
read_checkpoint(Oid relid, int64 id, TransactionId xmin, moe_checkpoint_view *view, bytea **blob)
{
	moe_error	err;

	*blob = moe_checkpoint_row_in(relid, id, xmin, NULL);
	if (*blob == NULL)
		return false;
	if (moe_checkpoint_read(VARDATA(*blob), VARSIZE(*blob) - VARHDRSZ, view, &err) != MOE_OK)
		ereport(ERROR,
				(errcode(err.status == MOE_ERR_VERSION ? ERRCODE_FEATURE_NOT_SUPPORTED
						 : ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot load model %lld: %s", (long long) id, err.message)));
	return true;
}

/*
 * A model of cfg reading params in place, for sizing and packing its row
 * panels (infer.h); the caller frees it.
 */
static moe_model *
wrap_for_panels(const moe_config *cfg, float *params)
{
	moe_model  *model;
	moe_error	err;

	if (moe_model_wrap(cfg, moe_cpu_backend(), params, &model, &err) != MOE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot load model: %s", err.message)));
	return model;
}

/* Bytes of the row panels that a model of cfg is served with. */
static Size
panel_bytes(const moe_config *cfg)
{
	moe_model  *model = wrap_for_panels(cfg, NULL);
	Size		bytes = sizeof(float) * moe_row_panels_floats(model);

	moe_model_free(model);
	return bytes;
}

/*
 * Copy a parsed checkpoint into entry i's memory (allocated by the caller)
 * and pack its row panels after the parameters: once per server, like the
 * weights they copy.
 */
static void
fill_entry(int i, const moe_checkpoint_view *view)
{
	char	   *base = area_address(control->slots[i].data);
	float	   *params = (float *) (base + MAXALIGN(sizeof(moe_config)));
	moe_model  *model;

	memcpy(base, &view->cfg, sizeof(moe_config));
	for (size_t j = 0; j < view->n_params; j++)
	{
		const unsigned char *b = view->data + 4 * j;
		uint32		v = (uint32) b[0] | ((uint32) b[1] << 8) | ((uint32) b[2] << 16) |
			((uint32) b[3] << 24);

		memcpy(&params[j], &v, 4);
		if (!isfinite(params[j]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("cannot load model: parameter %zu is not finite", j)));
	}
	model = wrap_for_panels(&view->cfg, params);
	moe_row_panels_pack(model, params, (float *) (base + control->slots[i].panels_at));
	moe_model_free(model);
}

/* Load model id into a LOADING slot; on any error the slot is released.
 * False (with the reason in *why) when it cannot be made to fit. */
static bool
load_into(int i, Oid relid, int64 id, TransactionId xmin, char **why)
{
	moe_checkpoint_view view;
	bytea	   *blob = NULL;
	volatile bool fits = false;

	PG_TRY();
	{
		Size		need,
					taken;

		if (!read_checkpoint(relid, id, xmin, &view, &blob))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model %lld does not exist", (long long) id)));
		need = MAXALIGN(sizeof(moe_config)) + sizeof(float) * view.n_params + panel_bytes(&view.cfg);
		LWLockAcquire(control->lock, LW_EXCLUSIVE);
		control->slots[i].data = allocate_evicting(need, &taken);
		fits = control->slots[i].data != NO_OFFSET;
		if (fits)
		{
			control->slots[i].bytes = taken;
			control->slots[i].panels_at = MAXALIGN(sizeof(moe_config)) + sizeof(float) * view.n_params;
		}
		else
			*why = why_no_room(need);
		LWLockRelease(control->lock);
		if (fits)
			fill_entry(i, &view);
	}
	PG_CATCH();
	{
		LWLockAcquire(control->lock, LW_EXCLUSIVE);
		free_entry(&control->slots[i]);
		LWLockRelease(control->lock);
		ConditionVariableBroadcast(&control->loaded);
		PG_RE_THROW();
	}
	PG_END_TRY();

	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	if (fits)
	{
		/* a delete that committed while we loaded: serve this transaction
		 * (its snapshot still sees the row), then free it */
		control->slots[i].state = control->slots[i].forget_when_loaded ? ENTRY_RETIRED : ENTRY_READY;
		control->slots[i].generation = control->next_generation++;
		control->slots[i].params_md5_known = false;
		load_counter(relid, id)->loads++;
		pin(i);
	}
	else
		free_entry(&control->slots[i]);
	LWLockRelease(control->lock);
	ConditionVariableBroadcast(&control->loaded);
	return fits;
}

bool
moe_shared_acquire(Oid relid, int64 id, TransactionId xmin, moe_shared_model *out, char **why)
{
	*why = NULL;
	if (!moe_shared_cache_enabled())
		return false;
	attach();
	for (;;)
	{
		int			i;

		LWLockAcquire(control->lock, LW_SHARED);
		i = find(relid, id, xmin, true);
		if (i >= 0)
		{
			pin(i);
			describe(i, out);
			LWLockRelease(control->lock);
			return true;
		}
		LWLockRelease(control->lock);

		LWLockAcquire(control->lock, LW_EXCLUSIVE);
		i = find(relid, id, xmin, false);
		if (i >= 0 && control->slots[i].state == ENTRY_READY)
		{
			pin(i);
			describe(i, out);
			LWLockRelease(control->lock);
			return true;
		}
		if (i >= 0)
		{
			/* someone else is loading it: wait, then look again */
			LWLockRelease(control->lock);
			ConditionVariablePrepareToSleep(&control->loaded);
			for (;;)
			{
				bool		loading;

				LWLockAcquire(control->lock, LW_SHARED);
				loading = is_version(&control->slots[i], relid, id, xmin) &&
					control->slots[i].state == ENTRY_LOADING;
				LWLockRelease(control->lock);
				if (!loading)
					break;
				ConditionVariableSleep(&control->loaded, PG_WAIT_EXTENSION);
			}
			ConditionVariableCancelSleep();
			continue;
		}
		/* claim a free slot and load it ourselves */
		for (i = 0; i < SLOTS; i++)
			if (control->slots[i].state == ENTRY_EMPTY)
				break;
		if (i == SLOTS)
		{
			/* every slot busy: evict the least recently used unpinned one */
			int			victim = -1;

			for (int j = 0; j < SLOTS; j++)
				if (control->slots[j].state == ENTRY_READY &&
					pg_atomic_read_u32(&control->slots[j].pins) == 0 &&
					(victim < 0 || pg_atomic_read_u64(&control->slots[j].last_use) <
					 pg_atomic_read_u64(&control->slots[victim].last_use)))
					victim = j;
			if (victim < 0)
			{
				*why = psprintf("All %d entries of the cache hold models in use by a transaction.", SLOTS);
				LWLockRelease(control->lock);
				return false;
			}
			free_entry(&control->slots[victim]);
			i = victim;
		}
		control->slots[i].dbid = MyDatabaseId;
		control->slots[i].relid = relid;
		control->slots[i].model_id = id;
		control->slots[i].xmin = xmin;
		control->slots[i].forget_when_loaded = false;
		control->slots[i].state = ENTRY_LOADING;
		control->slots[i].data = NO_OFFSET;
		control->slots[i].bytes = 0;
		pg_atomic_write_u64(&control->slots[i].hits, 0);
		LWLockRelease(control->lock);
		if (!load_into(i, relid, id, xmin, why))
			return false;
		LWLockAcquire(control->lock, LW_SHARED);
		describe(i, out);
		LWLockRelease(control->lock);
		return true;
	}
}

void
moe_shared_forget(Oid relid, int64 id)
{
	if (!moe_shared_cache_enabled())
		return;
	attach();
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SLOTS; i++)
	{
		shared_entry *e = &control->slots[i];

		if (e->dbid != MyDatabaseId || e->relid != relid || (id >= 0 && e->model_id != id))
			continue;
		if (e->state == ENTRY_READY)
		{
			if (pg_atomic_read_u32(&e->pins) == 0)
				free_entry(e);
			else
				e->state = ENTRY_RETIRED;
		}
		else if (e->state == ENTRY_LOADING)
			e->forget_when_loaded = true;
	}
	LWLockRelease(control->lock);
}

void
moe_shared_forget_at_commit(Oid relid, int64 id)
{
	MemoryContext old;
	pending_forget *p;

	if (!moe_shared_cache_enabled())
		return;
	attach();					/* registers the commit callback */
	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc(sizeof(pending_forget));
	p->relid = relid;
	p->id = id;
	pending_forgets = lappend(pending_forgets, p);
	MemoryContextSwitchTo(old);
}

static void
forget_pending(bool commit)
{
	ListCell   *lc;

	foreach(lc, pending_forgets)
	{
		pending_forget *p = lfirst(lc);

		if (commit)
			moe_shared_forget(p->relid, p->id);
	}
	list_free_deep(pending_forgets);
	pending_forgets = NIL;
}

void
moe_shared_forget_all(void)
{
	if (!moe_shared_cache_enabled())
		return;
	attach();
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SLOTS; i++)
	{
		shared_entry *e = &control->slots[i];

		if (e->state == ENTRY_READY)
		{
			if (pg_atomic_read_u32(&e->pins) == 0)
				free_entry(e);
			else
				e->state = ENTRY_RETIRED;
		}
	}
	LWLockRelease(control->lock);
}

/* ---- entity parts shared by every backend -------------------------------- */

/*
 * One model entry's table of entity parts: an open-addressing index of
 * n_buckets (a power of two; 0 = empty, else 1 + the part's number), then
 * capacity keys and capacity parts in the order they were published.
 * Parts are never removed one by one: the table goes with its model entry.
 */
typedef struct entity_table
{
	int32		part_floats;
	uint32		n_buckets;
	uint32		capacity;
	uint32		count;
} entity_table;

static uint32 *
table_buckets(entity_table *t)
{
	return (uint32 *) ((char *) t + MAXALIGN(sizeof(entity_table)));
}

static moe_shared_entity_key *
table_keys(entity_table *t)
{
	return (moe_shared_entity_key *) (table_buckets(t) + t->n_buckets);
}

static float *
table_part(entity_table *t, uint32 i)
{
	return (float *) (table_keys(t) + t->capacity) + (size_t) i * t->part_floats;
}

static Size
table_bytes(uint32 n_buckets, uint32 capacity, int part_floats)
{
	return MAXALIGN(sizeof(entity_table)) + sizeof(uint32) * n_buckets +
		(sizeof(moe_shared_entity_key) + sizeof(float) * (Size) part_floats) * capacity;
}

static int64
shared_entity_count(shared_entry *e)
{
	return e->entities != NO_OFFSET ? ((entity_table *) area_address(e->entities))->count : 0;
}

/* The bucket of key: its part's bucket, or the empty one where it would go. */
static uint32 *
find_bucket(entity_table *t, const moe_shared_entity_key *key)
{
	uint32	   *buckets = table_buckets(t);
	uint32		mask = t->n_buckets - 1;

	for (uint32 b = hash_bytes((const unsigned char *) key, sizeof(*key)) & mask;; b = (b + 1) & mask)
		if (buckets[b] == 0 ||
			memcmp(&table_keys(t)[buckets[b] - 1], key, sizeof(*key)) == 0)
			return &buckets[b];
}

/* The table of slot if it still holds the model of generation. */
static entity_table *
entity_table_of(int slot, uint64 generation)
{
	shared_entry *e;

	if (!moe_shared_cache_enabled() || slot < 0 || slot >= SLOTS)
		return NULL;
	e = &control->slots[slot];
	if ((e->state != ENTRY_READY && e->state != ENTRY_RETIRED) || e->generation != generation ||
		e->entities == NO_OFFSET)
		return NULL;
	return area_address(e->entities);
}

bool
moe_shared_entity_find(int slot, uint64 generation, const moe_shared_entity_key *key, float *part,
					   int part_floats)
{
	entity_table *t;
	bool		found = false;

	if (!moe_shared_cache_enabled())
		return false;
	attach();
	LWLockAcquire(control->lock, LW_SHARED);
	t = entity_table_of(slot, generation);
	if (t != NULL && t->part_floats == part_floats)
	{
		uint32	   *b = find_bucket(t, key);

		if (*b != 0)
		{
			memcpy(part, table_part(t, *b - 1), sizeof(float) * part_floats);
			found = true;
		}
	}
	LWLockRelease(control->lock);
	return found;
}

/*
 * Give slot's entry a table of moe_pg.shared_entity_mb, at most a quarter
 * of the cache (parts must not crowd out the models), making room like a
 * model load; exclusive lock held.  When it does not fit (everything else
 * is pinned), the entry asks again once some entry has been freed.
 */
static void
make_entity_table(shared_entry *e, int part_floats)
{
	Size		budget = Min((Size) moe_shared_entity_mb * 1024 * 1024, control->capacity / 4);
	/* a part, its key and (about) its share of the index */
	Size		per_part = sizeof(moe_shared_entity_key) + sizeof(float) * (Size) part_floats +
		4 * sizeof(uint32);
	uint32		capacity = (uint32) Min(budget / per_part, (Size) 1 << 24);
	uint32		n_buckets = 1;
	Size		bytes;
	entity_table *t;

	while (n_buckets < 2 * capacity)
		n_buckets <<= 1;		/* at most half full: short probes */
	bytes = table_bytes(n_buckets, capacity, part_floats);
	if (capacity == 0 || (e->entities = allocate_evicting(bytes, &e->entity_bytes)) == NO_OFFSET)
	{
		e->entities = NO_OFFSET;
		e->entity_bytes = 0;
		e->entities_refused = true;
		e->entities_refused_at = control->frees;
		return;
	}
	e->entities_refused = false;
	t = area_address(e->entities);
	t->part_floats = part_floats;
	t->n_buckets = n_buckets;
	t->capacity = capacity;
	t->count = 0;
	memset(table_buckets(t), 0, sizeof(uint32) * n_buckets);
}

void
moe_shared_entity_publish(int slot, uint64 generation, const moe_shared_entity_key *key,
						  const float *part, int part_floats)
{
	shared_entry *e;
	entity_table *t;

	if (!moe_shared_cache_enabled() || slot < 0 || slot >= SLOTS || moe_shared_entity_mb <= 0)
		return;
	attach();
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	e = &control->slots[slot];
	if (e->state == ENTRY_READY && e->generation == generation && e->entities == NO_OFFSET &&
		(!e->entities_refused || e->entities_refused_at != control->frees))
		make_entity_table(e, part_floats);
	t = entity_table_of(slot, generation);
	if (t != NULL && t->part_floats == part_floats && t->count < t->capacity)
	{
		uint32	   *b = find_bucket(t, key);

		if (*b == 0)
		{
			table_keys(t)[t->count] = *key;
			memcpy(table_part(t, t->count), part, sizeof(float) * part_floats);
			*b = ++t->count;
		}
	}
	LWLockRelease(control->lock);
}

int
moe_shared_stats_list(Oid relid, moe_shared_stats **out, Size *used, Size *capacity)
{
	int			n = 0;

	*out = NULL;
	*used = *capacity = 0;
	if (!moe_shared_cache_enabled())
		return 0;
	attach();					/* entity tables are read through the area */
	*out = palloc0(sizeof(moe_shared_stats) * SLOTS);
	LWLockAcquire(control->lock, LW_SHARED);
	for (int i = 0; i < SLOTS; i++)
	{
		shared_entry *e = &control->slots[i];

		if (e->state != ENTRY_READY || e->dbid != MyDatabaseId || e->relid != relid)
			continue;
		(*out)[n].model_id = e->model_id;
		(*out)[n].bytes = e->bytes;
		(*out)[n].loads = loads_of(e);
		(*out)[n].hits = (int64) pg_atomic_read_u64(&e->hits);
		(*out)[n].pins = pg_atomic_read_u32(&e->pins);
		(*out)[n].last_use = (TimestampTz) pg_atomic_read_u64(&e->last_use);
		(*out)[n].entity_parts = shared_entity_count(e);
		n++;
	}
	*used = control->used;
	*capacity = control->capacity;
	LWLockRelease(control->lock);
	return n;
}
