/*
 * sql_train.c — CALL moe_train(), moe_cross_validate() and moe_sweep().
 *
 * Procedures, so they can COMMIT after every epoch: a run's row and each
 * epoch's history row become visible to other sessions while training goes
 * on.  Each unit of work (reading the data, one epoch, the final model)
 * runs in a subtransaction; if it fails or is cancelled, the subtransaction
 * is rolled back, the run is marked 'failed' or 'cancelled' and committed,
 * and the error is raised again.  No model row is written until a run is
 * complete, so a cancel never leaves half a model behind.
 *
 * Called inside a transaction block (or from a function) the procedures
 * cannot commit: they train in the caller's transaction and say so.
 */
#include "glue.h"
#include "device.h"
#include "model_store.h"
#include "progress.h"
#include "json_write.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "checkpoint.h"
#include "dataset.h"
#include "featurizer_spec.h"
#include "memory_budget.h"
#include "metrics.h"
#include "router_stats.h"
#include "spi_safe.h"
#include "train.h"
#include "train_options.h"

#define MAX_SWEEP_POINTS 1000

/* What to try when the router turns unhealthy: values that
 * bench/routing_study.sh shows to work (docs/training.md, "Why these
 * defaults"); which one depends on whether the run had the defaults. */
#define MOE_ROUTER_HINT_DEFAULTS \
	"Train with the default balancing, balance => '" MOE_DEFAULT_BALANCE_TEXT "' (balanced on the synthetic and the Davis data of bench/routing_study.sh)."
#define MOE_ROUTER_HINT_STRONGER \
	"Give the balanced assignment more weight, balance => '{\"importance\": 0.1, \"aux_free\": 0.01, \"sinkhorn\": 0.3}', or use fewer experts (docs/training.md, \"Why these defaults\")."
#define MAX_FOLDS 100

/* One training run in progress. */
typedef struct train_run
{
	train_spec *spec;
	bool		nonatomic;		/* may commit */
	char	   *config_json;
	int64		run_id;
	MemoryContext cxt;			/* data and strings; lives across commits */
	moe_dataset_def *def;
	moe_dataset_data data;
	moe_trainer *trainer;
	moe_model  *host_model;		/* the best model on the CPU, when trained on a GPU */
	moe_epoch_report last;		/* the last epoch that completed */
	moe_router_status router_status;	/* at the last epoch */
	moe_router_status kept_router_status;	/* at the best epoch so far */
	double		seconds;
	int64		model_id;
	/* refit => true: the selection run this one retrains for (0: none) and
	 * what it chose, kept for the model's metrics */
	int64		refit_of;
	moe_epoch_report selection;
	const char *stop_message;	/* why training ended early (max_seconds), or NULL */
} train_run;

static bool
call_is_nonatomic(FunctionCallInfo fcinfo)
{
	return fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
}

static void
check_spi_result(const char *sql, int rc, int expect)
{
	if (rc != expect)
		elog(ERROR, "moe_pg: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expect)
{
	check_spi_result(sql, moe_spi_execute(sql, nargs, types, values, nulls, false, 0), expect);
}

static int64
returned_id(void)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* ---- rows of moe.training_runs and moe.training_history ------------------ */

/*
 * Runs left 'running' by a backend that is gone (killed, or the server
 * crashed: nothing could mark them) are marked failed, with the epochs
 * they committed.  A backend is gone when no live one has its pid and
 * started before the run did (pids are reused).  The live backends are read
 * from the backend status array directly: pg_stat_activity hides other
 * users' start times from a caller without pg_read_all_stats, which would
 * make every other user's run look abandoned.  Only runs that started before
 * that read are judged, and rows another session is marking are skipped, so
 * this never waits (a run trained inside a transaction block holds its
 * locks until that block ends).
 */
static void
mark_abandoned_runs(void)
{
	TimestampTz read_at = GetCurrentTimestamp();
	int			n,
				live = 0;
	Datum	   *pids,
			   *starts;
	Oid			types[3] = {INT4ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZOID};
	Datum		values[3];

	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	pids = palloc(sizeof(Datum) * (n + 1));
	starts = palloc(sizeof(Datum) * (n + 1));
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *b = pgstat_fetch_stat_local_beentry(i);

		if (b == NULL || b->backendStatus.st_procpid <= 0)
			continue;
		pids[live] = Int32GetDatum(b->backendStatus.st_procpid);
		starts[live] = TimestampTzGetDatum(b->backendStatus.st_proc_start_timestamp);
		live++;
	}
	values[0] = PointerGetDatum(construct_array(pids, live, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(starts, live, TIMESTAMPTZOID, sizeof(TimestampTz),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = TimestampTzGetDatum(read_at);
	spi_exec("UPDATE moe.training_runs r SET status = 'failed', finished_at = clock_timestamp(), "
			 "message = 'the training backend (pid ' || r.backend_pid || ') ended without finishing "
			 "the run: the server crashed or the process was killed', "
			 "epochs_run = (SELECT max(h.epoch) FROM moe.training_history h WHERE h.run_id = r.id), "
			 "best_epoch = (SELECT max(h.epoch) FROM moe.training_history h WHERE h.run_id = r.id AND h.is_best) "
			 "WHERE r.id IN (SELECT g.id FROM moe.training_runs g "
			 "WHERE g.status = 'running' AND g.started_at < $3 "
			 "AND NOT EXISTS (SELECT 1 FROM unnest($1, $2) a(pid, started) "
			 "WHERE a.pid = g.backend_pid AND a.started <= g.started_at) "
			 "FOR UPDATE SKIP LOCKED)",
			 3, types, values, NULL, SPI_OK_UPDATE);
}

static int64
insert_run(train_run *r)
{
	train_spec *s = r->spec;
	Oid			types[7] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, INT8OID, INT8OID, TEXTOID};
	Datum		values[7] = {CStringGetTextDatum(s->model_name), CStringGetTextDatum(s->dataset),
		Int32GetDatum(s->fold), CStringGetTextDatum(r->config_json), Int64GetDatum(s->experiment_id),
		Int64GetDatum(r->refit_of),
	s->params_json != NULL ? CStringGetTextDatum(s->params_json) : (Datum) 0};
	char		nulls[7] = {' ', ' ', ' ', ' ', s->experiment_id > 0 ? ' ' : 'n', r->refit_of > 0 ? ' ' : 'n',
	s->params_json != NULL ? ' ' : 'n'};

	mark_abandoned_runs();
	spi_exec("INSERT INTO moe.training_runs (model_name, dataset, fold, config, status, experiment_id, "
			 "refit_of, params) VALUES ($1, $2, $3, $4::jsonb, 'running', $5, $6, $7::jsonb) RETURNING id",
			 7, types, values, nulls, SPI_OK_INSERT_RETURNING);
	return returned_id();
}

static void
finish_run(int64 run_id, const char *status, const char *message, int epochs, int best_epoch,
		   int64 model_id)
{
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID};
	Datum		values[6] = {Int64GetDatum(run_id), CStringGetTextDatum(status),
		message ? CStringGetTextDatum(message) : (Datum) 0, Int32GetDatum(epochs),
		Int32GetDatum(best_epoch), Int64GetDatum(model_id)};
	char		nulls[6] = {' ', ' ', message ? ' ' : 'n', ' ', best_epoch > 0 ? ' ' : 'n',
		model_id > 0 ? ' ' : 'n'};

	spi_exec("UPDATE moe.training_runs SET status = $2, message = $3, epochs_run = $4, "
			 "best_epoch = $5, model_id = $6, finished_at = clock_timestamp() WHERE id = $1",
			 6, types, values, nulls, SPI_OK_UPDATE);
}

/* Every auxiliary method's unweighted value this epoch, as a JSON object. */
static char *
aux_terms_json(const moe_epoch_report *e)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (int m = MOE_LB_ENTROPY; m < MOE_LB_N_METHODS; m++)
		if (m != MOE_LB_AUX_FREE)
			moe_json_real(&s, moe_lb_method_name((moe_lb_method) m), e->aux_value[m]);
	appendStringInfoChar(&s, '}');
	return s.data;
}

static void
insert_history(const train_run *r, const moe_epoch_report *e)
{
	Oid			types[12] = {INT8OID, INT4OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
		FLOAT8OID, FLOAT8OID, BOOLOID, FLOAT8OID, FLOAT8OID, TEXTOID};
	Datum		values[12] = {Int64GetDatum(r->run_id), Int32GetDatum(e->epoch),
		Float8GetDatum(e->train_loss), Float8GetDatum(e->train_mse), Float8GetDatum(e->aux_loss),
		Float8GetDatum(e->val_mse), Float8GetDatum(e->lr), Float8GetDatum(e->seconds),
		BoolGetDatum(e->improved), Float8GetDatum(e->temperature), Float8GetDatum(e->lb_scale),
	CStringGetTextDatum(aux_terms_json(e))};
	char		nulls[12] = {' ', ' ', ' ', ' ', ' ', isnan(e->val_mse) ? 'n' : ' ', ' ', ' ', ' ',
	' ', ' ', ' '};

	spi_exec("INSERT INTO moe.training_history (run_id, epoch, train_loss, train_mse, aux_loss, "
			 "val_mse, lr, seconds, is_best, temperature, lb_scale, aux_terms) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)",
			 12, types, values, nulls, SPI_OK_INSERT);
}

/* One row per expert, then the router's summary (its statistics in *stats). */
static void
insert_router_history(const train_run *r, const moe_epoch_report *e, moe_router_stats *stats)
{
	moe_router_stats st;
	int			E = e->n_experts;

	moe_router_stats_compute(e->expert_prob, e->expert_count, e->expert_leads, E,
							 -e->aux_value[MOE_LB_ROUTER_ENTROPY], &st);
	{
		Oid			types[10] = {INT8OID, INT4OID, INT4OID, FLOAT8OID, FLOAT8OID, INT8OID, FLOAT8OID,
		FLOAT8OID, INT8OID, FLOAT8OID};

		for (int x = 0; x < E; x++)
		{
			Datum		values[10] = {Int64GetDatum(r->run_id), Int32GetDatum(e->epoch), Int32GetDatum(x),
				Float8GetDatum(e->expert_prob[x]), Float8GetDatum(st.share[x]),
				Int64GetDatum(e->expert_count[x]), Float8GetDatum(st.selection_fraction[x]),
				Float8GetDatum(e->expert_bias[x]), Int64GetDatum(e->expert_leads[x]),
			Float8GetDatum(st.lead_fraction[x])};

			spi_exec("INSERT INTO moe.expert_history (run_id, epoch, expert, mean_prob, share, "
					 "selections, selection_fraction, bias, leads, lead_fraction) "
					 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
					 10, types, values, NULL, SPI_OK_INSERT);
		}
	}
	{
		Oid			types[19] = {INT8OID, INT4OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
			FLOAT8OID, FLOAT8OID, FLOAT8OID, INT4OID, INT4OID, TEXTOID, FLOAT8OID, FLOAT8OID,
		FLOAT8OID, FLOAT8OID, TEXTOID, TEXTOID, TEXTOID};
		Datum		values[19] = {Int64GetDatum(r->run_id), Int32GetDatum(e->epoch),
			Float8GetDatum(st.cv), Float8GetDatum(st.max_min_ratio), Float8GetDatum(st.gini),
			Float8GetDatum(st.balance_entropy), Float8GetDatum(st.normalized_entropy),
			Float8GetDatum(st.row_entropy), Float8GetDatum(st.max_violation),
			Int32GetDatum(st.dead_experts), Int32GetDatum(st.dominant_expert),
			CStringGetTextDatum(moe_router_status_name(st.status)),
			Float8GetDatum(st.selection_cv), Float8GetDatum(st.selection_max_min_ratio),
			Float8GetDatum(st.lead_cv), Float8GetDatum(st.lead_max_min_ratio),
			CStringGetTextDatum(moe_router_status_name(st.probability_status)),
			CStringGetTextDatum(moe_router_status_name(st.selection_status)),
		CStringGetTextDatum(moe_router_status_name(st.lead_status))};

		spi_exec("INSERT INTO moe.router_history (run_id, epoch, cv, max_min_ratio, gini, "
				 "balance_entropy, normalized_entropy, row_entropy, max_violation, dead_experts, "
				 "dominant_expert, status, selection_cv, selection_max_min_ratio, lead_cv, "
				 "lead_max_min_ratio, probability_status, selection_status, lead_status) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
				 19, types, values, NULL, SPI_OK_INSERT);
	}
	*stats = st;
}

/* True when the run balances with the default terms and weights. */
static bool
default_balancing(const train_spec *spec)
{
	moe_train_options d;

	moe_train_options_default_balance(&d);
	if (spec->opt.n_balance != d.n_balance)
		return false;
	for (int i = 0; i < d.n_balance; i++)
		if (spec->opt.balance[i].method != d.balance[i].method ||
			spec->opt.balance[i].weight != d.balance[i].weight)
			return false;
	return true;
}

static const char *
router_hint(const train_run *r)
{
	return default_balancing(r->spec) ? MOE_ROUTER_HINT_STRONGER : MOE_ROUTER_HINT_DEFAULTS;
}

/*
 * Say so during training when the router degenerates (collapsed, or an
 * expert dead in either view), once per change.  Imbalance alone is usual
 * in the first epochs, while the balancing terms pull the gate back from
 * its early rush to one expert, so it is reported for the kept epoch only
 * (warn_on_kept_routing).
 */
static void
warn_on_health(train_run *r, const moe_epoch_report *e, const moe_router_stats *st)
{
	moe_router_status status = st->status;

	if (status != MOE_ROUTER_BALANCED && status != MOE_ROUTER_IMBALANCED && status != r->router_status)
		ereport(WARNING,
				(errmsg("router of \"%s\" is %s at epoch %d", r->spec->model_name,
						moe_router_status_name(status), e->epoch),
				 errdetail("Gate probabilities: %s (cv %.2f); top-%d selections: %s (cv %.2f, %d dead). See moe.router_health for run %lld; thresholds in docs/monitoring.md.",
						   moe_router_status_name(st->probability_status), st->cv, r->spec->arch.top_k,
						   moe_router_status_name(st->selection_status), st->selection_cv,
						   st->dead_experts, (long long) r->run_id),
				 errhint("%s", router_hint(r))));
	r->router_status = status;
	if (e->improved)
		r->kept_router_status = status;
}

/* The kept model's routing, on the training rows of its epoch and on the
 * held-out rows (heldout: NULL when there are none): a WARNING unless both
 * are balanced. */
static void
warn_on_kept_routing(train_run *r, const char *heldout, moe_router_status heldout_status)
{
	if (r->kept_router_status == MOE_ROUTER_BALANCED &&
		(heldout == NULL || heldout_status == MOE_ROUTER_BALANCED))
		return;
	ereport(WARNING,
			(errmsg("router of \"%s\" is not balanced at its kept epoch %d", r->spec->model_name,
					r->last.best_epoch),
			 heldout != NULL
			 ? errdetail("Training rows: %s; %s rows: %s. See moe.expert_usage and docs/monitoring.md.",
						 moe_router_status_name(r->kept_router_status), heldout,
						 moe_router_status_name(heldout_status))
			 : errdetail("Training rows: %s. See moe.expert_usage and docs/monitoring.md.",
						 moe_router_status_name(r->kept_router_status)),
			 errhint("%s", router_hint(r))));
}

/* ---- units of work, each in a subtransaction ------------------------------ */

static bool
poll_interrupts(void *ctx)
{
	/* Raising here unwinds through the engine between two steps, where it
	 * holds nothing but memory we free on the way out. */
	CHECK_FOR_INTERRUPTS();
	return false;
}

static void
release_trainer(train_run *r)
{
	moe_model_free(r->host_model);	/* its parameters are in r->cxt */
	r->host_model = NULL;
	moe_trainer_free(r->trainer);
	r->trainer = NULL;
}

/* The training rows followed by the validation rows, for a refit. */
static moe_rows
refit_rows(MemoryContext cxt, const moe_split_rows *train, const moe_split_rows *valid)
{
	int			n = train->n + valid->n;
	int32	   *di = MemoryContextAllocHuge(cxt, sizeof(int32) * n);
	int32	   *pi = MemoryContextAllocHuge(cxt, sizeof(int32) * n);
	float	   *label = MemoryContextAllocHuge(cxt, sizeof(float) * n);
	moe_rows	rows = {n, di, pi, label};

	memcpy(di, train->drug_idx, sizeof(int32) * train->n);
	memcpy(di + train->n, valid->drug_idx, sizeof(int32) * valid->n);
	memcpy(pi, train->protein_idx, sizeof(int32) * train->n);
	memcpy(pi + train->n, valid->protein_idx, sizeof(int32) * valid->n);
	memcpy(label, train->label, sizeof(float) * train->n);
	memcpy(label + train->n, valid->label, sizeof(float) * valid->n);
	return rows;
}

static void
step_prepare(train_run *r)
{
	train_spec *s = r->spec;
	MemoryContext old = MemoryContextSwitchTo(r->cxt);
	moe_dataset_data *d = &r->data;
	moe_train_data td;
	moe_error	err;

	r->def = moe_dataset_lookup(s->dataset);
	if (r->def->fold_col == NULL && s->fold != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dataset \"%s\" has no fold column, so fold must be 0", s->dataset)));
	moe_dataset_read(r->def, s->fold, NULL, d);
	MemoryContextSwitchTo(old);

	if (d->split[MOE_SPLIT_TRAIN].n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset \"%s\" has no training rows%s", s->dataset,
						r->def->fold_col ? psprintf(" in fold %d", s->fold) : ""),
				 errhint("Rows are used when their split is 'train', 'valid' or 'test'.")));
	if (d->ignored_rows > 0 && progress_at(MOE_PROGRESS_SUMMARY))
		ereport(NOTICE,
				(errmsg("%lld rows of dataset \"%s\" have a split other than train, valid or test and are ignored",
						(long long) d->ignored_rows, s->dataset)));
	if (d->split[MOE_SPLIT_VALID].n == 0 && progress_at(MOE_PROGRESS_SUMMARY))
		ereport(NOTICE,
				(errmsg("dataset \"%s\" has no validation rows: early stopping is off and the last epoch is kept",
						s->dataset)));
	if (progress_at(MOE_PROGRESS_SUMMARY))
		ereport(NOTICE,
			(errmsg("training \"%s\" on %d rows (%d validation, %d test): %d drugs x %d values, %d proteins x %d values",
					s->model_name, d->split[MOE_SPLIT_TRAIN].n, d->split[MOE_SPLIT_VALID].n,
					d->split[MOE_SPLIT_TEST].n, d->n_drugs, d->drug_dim, d->n_proteins,
					d->protein_dim)));

	s->arch.drug_dim = d->drug_dim;
	s->arch.protein_dim = d->protein_dim;
	td.n_drugs = d->n_drugs;
	td.drug_dim = d->drug_dim;
	td.drug_vec = d->drug_vec;
	td.n_proteins = d->n_proteins;
	td.protein_dim = d->protein_dim;
	td.protein_vec = d->protein_vec;
	td.train = moe_split_as_rows(&d->split[MOE_SPLIT_TRAIN]);
	td.valid = moe_split_as_rows(&d->split[MOE_SPLIT_VALID]);
	if (r->refit_of > 0)
	{
		td.train = refit_rows(r->cxt, &d->split[MOE_SPLIT_TRAIN], &d->split[MOE_SPLIT_VALID]);
		td.valid.n = 0;
		if (progress_at(MOE_PROGRESS_SUMMARY))
			ereport(NOTICE,
				(errmsg("refit of run %lld: a fresh model on the %d training and validation rows for %d epochs",
						(long long) r->refit_of, td.train.n, s->opt.epochs)));
	}
	{
		size_t		bytes;

		moe_check(moe_trainer_bytes(&s->arch, &s->opt, &td, &bytes, &err), &err);
		moe_check_memory_budget((double) bytes, psprintf("training \"%s\"", s->model_name),
								"Use narrower layers (drug_hidden, protein_hidden, gate_hidden, expert_hidden), fewer experts or a smaller batch_size");
	}
	moe_backend_cpu_set_threads(moe_threads);
	moe_check(moe_trainer_create(&s->arch, &s->opt, &td, moe_device_backend(s->device, "training"),
								 poll_interrupts, r, &r->trainer, &err), &err);
	{
		double		density[2];
		bool		sparse[2];

		moe_trainer_inputs(r->trainer, density, sparse);
		if ((sparse[0] || sparse[1]) && progress_at(MOE_PROGRESS_EPOCH))
			ereport(NOTICE,
					(errmsg("first layers read sparse inputs: drugs %.1f %% non-zero (%s), proteins %.1f %% (%s)",
							100 * density[0], sparse[0] ? "sparse" : "dense", 100 * density[1],
							sparse[1] ? "sparse" : "dense")));
	}
}

static void
step_epoch(train_run *r)
{
	moe_error	err;
	moe_epoch_report e;
	moe_router_stats stats;
	char		val[32];

	/* r->last changes only when an epoch completes and is recorded, so a
	 * run stopped half-way through an epoch reports the epochs it finished. */
	moe_check(moe_trainer_epoch(r->trainer, &e, &err), &err);
	insert_history(r, &e);
	insert_router_history(r, &e, &stats);
	r->last = e;
	r->seconds += e.seconds;
	if (isnan(e.val_mse))
		snprintf(val, sizeof(val), "n/a");
	else
		snprintf(val, sizeof(val), "%.4f", e.val_mse);
	if (progress_at(MOE_PROGRESS_EPOCH))
		ereport(NOTICE,
			(errmsg("epoch %d/%d: loss %.4f (mse %.4f, aux %.4f), val_mse %s, lr %.2g, %.1f s%s",
					e.epoch, r->spec->opt.epochs, e.train_loss, e.train_mse, e.aux_loss, val, e.lr,
					e.seconds, e.improved && !isnan(e.val_mse) ? " (best)" : "")));
	warn_on_health(r, &e, &stats);
}

static void
json_metrics(StringInfo s, const moe_metrics *m)
{
	moe_json_key(s, "n");
	appendStringInfo(s, "%lld", (long long) m->n);
	moe_json_real(s, "mse", m->mse);
	moe_json_real(s, "rmse", m->rmse);
	moe_json_real(s, "ci", m->ci);
	moe_json_real(s, "r2", m->r2);
	moe_json_real(s, "pearson", m->pearson);
	moe_json_real(s, "spearman", m->spearman);
	moe_json_real(s, "rm2", m->rm2);
}

/*
 * "routing": how the kept model routes the held-out rows (split), which can
 * differ from the training rows the epoch history describes: both views and
 * the leads per expert, and the status (docs/monitoring.md).
 */
static moe_router_status
json_heldout_routing(StringInfo s, const char *split, const moe_usage_acc *usage)
{
	double		mean[MOE_ROUTER_MAX_EXPERTS];
	moe_router_stats st;

	if (!moe_usage_finish(usage, mean, &st))
		return MOE_ROUTER_BALANCED;
	moe_json_key(s, "routing");
	appendStringInfoChar(s, '{');
	moe_json_key(s, "split");
	escape_json(s, split);
	moe_json_key(s, "rows");
	appendStringInfo(s, "%lld", (long long) usage->n);
	moe_json_key(s, "status");
	escape_json(s, moe_router_status_name(st.status));
	moe_json_key(s, "probability_status");
	escape_json(s, moe_router_status_name(st.probability_status));
	moe_json_key(s, "selection_status");
	escape_json(s, moe_router_status_name(st.selection_status));
	moe_json_key(s, "lead_status");
	escape_json(s, moe_router_status_name(st.lead_status));
	moe_json_real_array(s, "mean_prob", mean, st.n_experts);
	moe_json_real_array(s, "selection_fraction", st.selection_fraction, st.n_experts);
	moe_json_real_array(s, "lead_fraction", st.lead_fraction, st.n_experts);
	appendStringInfoChar(s, '}');
	{
		StringInfoData shares;

		initStringInfo(&shares);
		for (int i = 0; i < st.n_experts; i++)
			appendStringInfo(&shares, "%s%.2f/%.2f", i > 0 ? " " : "", st.selection_fraction[i],
							 st.lead_fraction[i]);
		if (progress_at(MOE_PROGRESS_SUMMARY))
			ereport(NOTICE,
				(errmsg("routing of the %s rows: %s (probabilities %s, selections %s); per expert, share of selections / of leads: %s",
						split, moe_router_status_name(st.status),
						moe_router_status_name(st.probability_status),
						moe_router_status_name(st.selection_status), shares.data)));
	}
	return st.status;
}

/* Test metrics of the best model, as a JSON object (training facts too). */
static char *
final_metrics_json(train_run *r, moe_model *model)
{
	StringInfoData s;
	const moe_split_rows *test = &r->data.split[MOE_SPLIT_TEST];

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	moe_json_key(&s, "epochs_run");
	appendStringInfo(&s, "%d", r->last.epoch);
	moe_json_key(&s, "best_epoch");
	appendStringInfo(&s, "%d", r->last.best_epoch);
	moe_json_real(&s, "best_val_mse", r->last.best_val_mse);
	moe_json_real(&s, "temperature", model->cfg.temperature);
	moe_json_real(&s, "train_seconds", r->seconds);
	moe_json_key(&s, "n_train");
	appendStringInfo(&s, "%d", r->data.split[MOE_SPLIT_TRAIN].n +
					 (r->refit_of > 0 ? r->data.split[MOE_SPLIT_VALID].n : 0));
	moe_json_key(&s, "n_valid");
	appendStringInfo(&s, "%d", r->refit_of > 0 ? 0 : r->data.split[MOE_SPLIT_VALID].n);
	if (r->refit_of > 0)
	{
		/* what the selection run chose, on the validation rows now trained on */
		moe_json_key(&s, "refit_of");
		appendStringInfo(&s, "%lld", (long long) r->refit_of);
		moe_json_key(&s, "selection_best_epoch");
		appendStringInfo(&s, "%d", r->selection.best_epoch);
		moe_json_real(&s, "selection_best_val_mse", r->selection.best_val_mse);
	}
	{
		/* the held-out rows: test, or validation when there is no test split */
		const moe_split_rows *held = test->n > 0 ? test : &r->data.split[MOE_SPLIT_VALID];

		if (held->n > 0)
		{
			moe_infer_ws *ws;
			moe_rows	rows = moe_split_as_rows(held);
			float	   *pred = palloc_extended(sizeof(float) * held->n, MCXT_ALLOC_HUGE);
			moe_usage_acc usage;
			moe_error	err;
			moe_status	st;

			moe_usage_init(&usage);
			moe_check(moe_infer_ws_create(model, MOE_INFER_BATCH, &ws, &err), &err);
			st = moe_predict_rows_usage(model, ws, r->data.drug_vec, r->data.protein_vec, &rows, pred,
										&usage, &err);
			moe_infer_ws_free(model, ws);
			moe_check(st, &err);
			if (held == test)
			{
				moe_metrics m;

				moe_check(moe_compute_metrics(test->label, pred, test->n, &m, &err), &err);
				moe_json_key(&s, "test");
				appendStringInfoChar(&s, '{');
				json_metrics(&s, &m);
				appendStringInfoChar(&s, '}');
				if (progress_at(MOE_PROGRESS_SUMMARY))
					ereport(NOTICE,
						(errmsg("test (%lld rows): mse %.4f, rmse %.4f, ci %.4f, r2 %.4f, pearson %.4f, spearman %.4f, rm2 %.4f",
								(long long) m.n, m.mse, m.rmse, m.ci, m.r2, m.pearson, m.spearman, m.rm2)));
			}
			warn_on_kept_routing(r, held == test ? "test" : "valid",
								 json_heldout_routing(&s, held == test ? "test" : "valid", &usage));
		}
		else
			warn_on_kept_routing(r, NULL, MOE_ROUTER_BALANCED);
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* Which expert each target and drug of the run's fold goes to, kept with
 * the model for the dashboards (moe.specialization). */
static void
record_specialization(train_run *r)
{
	Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
	Datum		values[3] = {Int64GetDatum(r->model_id), CStringGetTextDatum(r->spec->dataset),
	Int32GetDatum(r->spec->fold)};
	const char *schema = moe_extension_schema();

	for (int by_drug = 0; by_drug <= 1; by_drug++)
		spi_exec(psprintf("INSERT INTO moe.specialization_snapshots "
						  "SELECT $1, '%s', s.* FROM %s.moe_specialization($1, $2, 'all', $3, '%s') s",
						  by_drug ? "drug" : "target", schema, by_drug ? "drug" : "target"),
				 3, types, values, NULL, SPI_OK_INSERT);
}

/*
 * The best model as the CPU will serve it: on a GPU, its parameters copied
 * to the host and wrapped as a CPU model.  The test metrics and the
 * checkpoint come from this, so a checkpoint never depends on the device
 * that trained it.
 */
static moe_model *
host_model(train_run *r, moe_model *model)
{
	moe_backend *be = model->be;
	size_t		bytes = sizeof(float) * model->layout.n_params;
	float	   *params;
	moe_error	err;

	if (be->host_memory)
		return model;
	params = MemoryContextAllocHuge(r->cxt, bytes);
	be->download(be, params, model->params, bytes);
	moe_check(be->check(be, &err), &err);
	moe_check(moe_model_wrap(&model->cfg, moe_cpu_backend(), params, &r->host_model, &err), &err);
	return r->host_model;
}

/*
 * Whether the new model takes its name (deploy option), and why, in words
 * for the NOTICE.  'if_better' deploys when the name points at nothing, or
 * at a model tested on the same dataset, fold and number of test rows with
 * a higher test MSE; a model it cannot be compared with keeps the name.
 */
static bool
deploy_decision(train_run *r, StringInfo why)
{
	train_spec *s = r->spec;
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2] = {CStringGetTextDatum(s->model_name), Int64GetDatum(r->model_id)};
	bool		isnull[5];
	int64		old_id;
	double		old_mse,
				new_mse;
	bool		comparable;

	initStringInfo(why);
	if (s->deploy == MOE_DEPLOY_NEVER)
	{
		appendStringInfoString(why, "not deployed (deploy => 'never')");
		return false;
	}
	if (s->deploy == MOE_DEPLOY_ALWAYS)
	{
		appendStringInfo(why, "deployed as \"%s\"", s->model_name);
		return true;
	}
	/* the deployed model and the new one, side by side */
	check_spi_result("deployment comparison",
					 moe_spi_execute("SELECT o.id, (o.metrics -> 'test' ->> 'mse')::float8, "
									 "(n.metrics -> 'test' ->> 'mse')::float8, "
									 "o.dataset = n.dataset AND o.fold IS NOT DISTINCT FROM n.fold "
									 "AND o.metrics -> 'test' -> 'n' = n.metrics -> 'test' -> 'n' "
									 "AND o.metrics -> 'test' ? 'mse' AND n.metrics -> 'test' ? 'mse' "
									 "FROM moe.deployments d JOIN moe.models o ON o.id = d.model_id, "
									 "moe.models n WHERE d.name = $1 AND n.id = $2",
									 /* not read-only: it must see the model row just written */
									 2, types, values, NULL, false, 1), SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		appendStringInfo(why, "deployed as \"%s\" (the name pointed at no model)", s->model_name);
		return true;
	}
	old_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull[0]));
	old_mse = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull[1]));
	new_mse = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull[2]));
	comparable = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull[3]));
	if (isnull[3] || !comparable || isnull[1] || isnull[2])
	{
		appendStringInfo(why, "not deployed: \"%s\" keeps model %lld, which was not tested on the same dataset, fold and test rows (deploy => 'if_better')",
						 s->model_name, (long long) old_id);
		return false;
	}
	if (new_mse < old_mse)
	{
		appendStringInfo(why, "deployed as \"%s\": test MSE %.4f, better than %.4f of model %lld",
						 s->model_name, new_mse, old_mse, (long long) old_id);
		return true;
	}
	appendStringInfo(why, "not deployed: \"%s\" keeps model %lld, test MSE %.4f against %.4f for this one (deploy => 'if_better')",
					 s->model_name, (long long) old_id, old_mse, new_mse);
	return false;
}

/*
 * The best epoch so far as a stored model, row and checkpoint.  metrics
 * and specialisation snapshots come with it; the caller deploys and
 * finishes the run.
 */
static void
store_best_model(train_run *r)
{
	train_spec *s = r->spec;
	moe_model  *model = host_model(r, moe_trainer_best_model(r->trainer));
	char	   *metrics = final_metrics_json(r, model);
	StringInfoData meta;
	size_t		size;
	bytea	   *blob;
	moe_error	err;

	/* The checkpoint carries its own description, so an exported file can
	 * be imported elsewhere with nothing lost. */
	initStringInfo(&meta);
	appendStringInfoChar(&meta, '{');
	moe_json_key(&meta, "name");
	escape_json(&meta, s->model_name);
	moe_json_key(&meta, "dataset");
	escape_json(&meta, s->dataset);
	moe_json_key(&meta, "fold");
	appendStringInfo(&meta, "%d", s->fold);
	moe_json_key(&meta, "config");
	appendStringInfoString(&meta, r->config_json);
	moe_json_key(&meta, "metrics");
	appendStringInfoString(&meta, metrics);
	appendStringInfoChar(&meta, '}');

	moe_check(moe_checkpoint_size(model, meta.len, &size, &err), &err);
	if (size > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model of %zu bytes is too large to store", size)));
	blob = palloc(VARHDRSZ + size);
	SET_VARSIZE(blob, VARHDRSZ + size);
	moe_check(moe_checkpoint_write(model, model->params, meta.data, meta.len, VARDATA(blob), size,
								   &err), &err);

	{
		Oid			types[6] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, BYTEAOID};
		Datum		values[6] = {CStringGetTextDatum(s->model_name), CStringGetTextDatum(s->dataset),
			Int32GetDatum(s->fold), CStringGetTextDatum(r->config_json),
		CStringGetTextDatum(metrics), PointerGetDatum(blob)};

		const char *sql = "INSERT INTO moe.models (name, dataset, fold, config, metrics, checkpoint) "
			"VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6) RETURNING id";

		check_spi_result(sql, moe_models_write(sql, 6, types, values, NULL, 0), SPI_OK_INSERT_RETURNING);
		r->model_id = returned_id();
	}
	record_specialization(r);
}

static void
step_finish(train_run *r)
{
	train_spec *s = r->spec;
	StringInfoData why;
	bool		deployed;

	store_best_model(r);
	deployed = deploy_decision(r, &why);
	if (deployed)
	{
		Oid			types[2] = {TEXTOID, INT8OID};
		Datum		values[2] = {CStringGetTextDatum(s->model_name), Int64GetDatum(r->model_id)};

		spi_exec("INSERT INTO moe.deployments (name, model_id) VALUES ($1, $2) "
				 "ON CONFLICT (name) DO UPDATE SET model_id = EXCLUDED.model_id, "
				 "updated_at = now(), updated_by = current_user",
				 2, types, values, NULL, SPI_OK_INSERT);
	}
	finish_run(r->run_id, "completed", r->stop_message, r->last.epoch, r->last.best_epoch, r->model_id);
	if (progress_at(MOE_PROGRESS_SUMMARY))
		ereport(NOTICE,
			(errmsg("model %lld \"%s\" saved (best epoch %d of %d, %.1f s); %s",
					(long long) r->model_id, s->model_name, r->last.best_epoch, r->last.epoch,
					r->seconds, why.data),
			 deployed || s->deploy == MOE_DEPLOY_NEVER ? 0 :
			 errhint("Deploy it with SELECT moe_deploy(%s, %lld), or train with deploy => 'always'.",
					 quote_literal_cstr(s->model_name), (long long) r->model_id)));
}

/*
 * Run step(r) in a subtransaction.  On error: roll it back, free the
 * trainer, mark the run (committed where possible) and raise again.
 */
/*
 * After a cancel during an epoch: the best epoch so far as a stored model
 * (not deployed), in a subtransaction of its own, so that it is written
 * whole or not at all (a second cancel while it is written leaves none).
 * Returns its id, or 0.
 */
static int64
keep_best_after_cancel(train_run *r)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int64		kept = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		store_best_model(r);
		kept = r->model_id;
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		kept = 0;
	}
	PG_END_TRY();
	return kept;
}

/*
 * Run step(r) in a subtransaction.  On error: roll it back, free the
 * trainer, mark the run (committed where possible) and raise again.  A
 * cancel during an epoch first keeps the best epoch so far as a model.
 */
static void
in_subtransaction(train_run *r, void (*step) (train_run *))
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		step(r);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		cancelled;
		int64		kept = 0;
		char	   *message;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		cancelled = edata->sqlerrcode == ERRCODE_QUERY_CANCELED;
		if (cancelled && step == step_epoch && r->trainer != NULL && r->last.best_epoch > 0)
			kept = keep_best_after_cancel(r);
		release_trainer(r);
		message = edata->message;
		if (kept > 0)
		{
			message = psprintf("%s; the best epoch (%d of %d) was kept as model %lld, not deployed",
							   edata->message, r->last.best_epoch, r->last.epoch, (long long) kept);
			ereport(NOTICE,
					(errmsg("training of \"%s\" cancelled after epoch %d: the best epoch (%d, val_mse %.4f) was kept as model %lld, not deployed",
							r->spec->model_name, r->last.epoch, r->last.best_epoch, r->last.best_val_mse,
							(long long) kept),
					 errhint("Deploy it with SELECT moe_deploy(%s, %lld).",
							 quote_literal_cstr(r->spec->model_name), (long long) kept)));
		}
		finish_run(r->run_id, cancelled ? "cancelled" : "failed", message, r->last.epoch,
				   r->last.best_epoch, kept);
		if (r->nonatomic)
			SPI_commit();
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * The end of a selection run (refit => true): no model; the refit that
 * follows trains for the best epoch count this run found.
 */
static void
step_finish_selection(train_run *r)
{
	finish_run(r->run_id, "completed", "selection run: a refit on the training and validation rows makes the model",
			   r->last.epoch, r->last.best_epoch, 0);
	if (progress_at(MOE_PROGRESS_SUMMARY))
		ereport(NOTICE,
			(errmsg("run %lld chose %d epochs (val_mse %.4f at the best of %d epochs); refitting on training and validation rows",
					(long long) r->run_id, r->last.best_epoch, r->last.best_val_mse, r->last.epoch)));
}

/* What one run left behind. */
typedef struct run_outcome
{
	int64		run_id;
	int64		model_id;		/* 0: a selection run, to be refitted */
	moe_epoch_report last;		/* its last completed epoch */
} run_outcome;

/* How the dataset's vectors were made (moe.datasets), into spec, to be
 * recorded with the model; nothing when the dataset is not there (reading
 * it raises the error). */
static void
dataset_featurizers(train_spec *spec)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(spec->dataset)};
	MemoryContext outer = CurrentMemoryContext;

	moe_featurizer_defaults(MOE_FZ_NONE, &spec->drug_featurizer);
	moe_featurizer_defaults(MOE_FZ_NONE, &spec->protein_featurizer);
	check_spi_result("dataset featurizers",
					 moe_spi_execute("SELECT d.drug_featurizer, d.protein_featurizer FROM moe.datasets d "
									 "WHERE d.name = $1", 1, types, values, NULL, true, 1), SPI_OK_SELECT);
	if (SPI_processed != 1)
		return;
	for (int i = 0; i < 2; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);

		if (!isnull)
		{
			MemoryContext spi = MemoryContextSwitchTo(outer);

			moe_featurizer_from_jsonb(DatumGetJsonbPCopy(d), i == 0 ? "drug" : "protein",
									  psprintf("dataset \"%s\"", spec->dataset),
									  i == 0 ? &spec->drug_featurizer : &spec->protein_featurizer);
			MemoryContextSwitchTo(spi);
		}
	}
}

/* max_seconds: whether the run's time is up after this epoch (its
 * training seconds so far, validation included). */
static bool
out_of_time(train_run *r)
{
	if (r->spec->max_seconds <= 0.0 || r->seconds < r->spec->max_seconds)
		return false;
	r->stop_message = MemoryContextStrdup(r->cxt,
										  psprintf("stopped by max_seconds (%g s) after epoch %d of %d",
												   r->spec->max_seconds, r->last.epoch, r->spec->opt.epochs));
	if (progress_at(MOE_PROGRESS_SUMMARY))
		ereport(NOTICE,
			(errmsg("max_seconds (%g s) reached after epoch %d (%.1f s): keeping the best epoch, %d",
					r->spec->max_seconds, r->last.epoch, r->seconds, r->last.best_epoch)));
	return true;
}

/*
 * One run from start to finish; the caller has an SPI connection
 * (non-atomic when it may commit).  A refit (refit_of > 0) trains on the
 * training and validation rows; a run with refit asked for and validation
 * rows to choose with ends without a model instead.
 */
static void
train_one_run(train_spec *spec, bool nonatomic, int64 refit_of, const moe_epoch_report *selection,
			  run_outcome *out)
{
	train_run	r;

	memset(&r, 0, sizeof(r));
	r.spec = spec;
	r.nonatomic = nonatomic;
	r.refit_of = refit_of;
	if (selection != NULL)
		r.selection = *selection;
	r.cxt = AllocSetContextCreate(TopMemoryContext, "moe_train run", ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		bool		choose_epochs = spec->refit && refit_of == 0;
		bool		select_only;

		dataset_featurizers(spec);
		r.config_json = MemoryContextStrdup(r.cxt, train_spec_config_json(spec));
		r.run_id = insert_run(&r);
		if (nonatomic)
			SPI_commit();
		in_subtransaction(&r, step_prepare);
		select_only = choose_epochs && r.data.split[MOE_SPLIT_VALID].n > 0;
		if (choose_epochs && !select_only)
			if (progress_at(MOE_PROGRESS_SUMMARY))
				ereport(NOTICE,
					(errmsg("refit => true does nothing here: with no validation rows every training row is already used")));
		while (!moe_trainer_done(r.trainer))
		{
			in_subtransaction(&r, step_epoch);
			if (nonatomic)
				SPI_commit();
			if (out_of_time(&r))
				break;
		}
		in_subtransaction(&r, select_only ? step_finish_selection : step_finish);
		if (nonatomic)
			SPI_commit();
		out->run_id = r.run_id;
		out->model_id = r.model_id;
		out->last = r.last;
	}
	PG_FINALLY();
	{
		release_trainer(&r);
		MemoryContextDelete(r.cxt);
	}
	PG_END_TRY();
}

/*
 * A training run, and with refit => true the refit that follows it: a
 * fresh model, same options and seed, trained on the training and
 * validation rows for the best epoch count the first run found (its
 * schedules spanning those epochs).  Returns the new model's id.
 */
static int64
run_training(train_spec *spec, bool nonatomic)
{
	run_outcome sel,
				fit;
	train_spec	refit;

	train_one_run(spec, nonatomic, 0, NULL, &sel);
	if (sel.model_id > 0)
		return sel.model_id;
	refit = *spec;
	refit.opt.epochs = Max(sel.last.best_epoch, spec->opt.lr_warmup_epochs + 1);
	train_one_run(&refit, nonatomic, sel.run_id, &sel.last, &fit);
	return fit.model_id;
}

/* The spec's strings and its balance jsonb must survive commits. */
static train_spec *
spec_in(MemoryContext cxt, const train_spec *spec)
{
	train_spec *copy = MemoryContextAlloc(cxt, sizeof(train_spec));

	*copy = *spec;
	copy->dataset = MemoryContextStrdup(cxt, spec->dataset);
	copy->model_name = MemoryContextStrdup(cxt, spec->model_name);
	copy->lb_method = spec->lb_method != NULL ? MemoryContextStrdup(cxt, spec->lb_method) : NULL;
	copy->params_json = spec->params_json != NULL ? MemoryContextStrdup(cxt, spec->params_json) : NULL;
	if (spec->balance != NULL)
	{
		copy->balance = MemoryContextAlloc(cxt, VARSIZE(spec->balance));
		memcpy(copy->balance, spec->balance, VARSIZE(spec->balance));
	}
	return copy;
}

static void
connect_spi(bool nonatomic)
{
	if (SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!nonatomic)
		ereport(NOTICE,
				(errmsg("training inside a transaction block: progress becomes visible only when it commits")));
}

PG_FUNCTION_INFO_V1(moe_train_sql);
Datum
moe_train_sql(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "moe_train", ALLOCSET_DEFAULT_SIZES);

	PG_TRY();
	{
		bool		nonatomic = call_is_nonatomic(fcinfo);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		train_spec	spec;

		train_spec_from_call(&spec, fcinfo);
		train_spec_finalize(&spec);
		MemoryContextSwitchTo(old);

		connect_spi(nonatomic);
		run_training(&spec, nonatomic);
		SPI_finish();
	}
	PG_FINALLY();
	{
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/* ---- experiments: cross-validation and sweeps ---------------------------- */

static int64
insert_experiment(const char *kind, const train_spec *base, Jsonb *options, Jsonb *grid, int folds)
{
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, INT4OID, INT4OID};
	Datum		values[7] = {CStringGetTextDatum(kind), CStringGetTextDatum(base->dataset),
		CStringGetTextDatum(base->model_name), PointerGetDatum(options), PointerGetDatum(grid),
	Int32GetDatum(folds), Int32GetDatum(base->fold)};
	char		nulls[7] = {' ', ' ', ' ', ' ', grid ? ' ' : 'n', folds > 0 ? ' ' : 'n',
	folds > 0 ? 'n' : ' '};

	spi_exec("INSERT INTO moe.experiments (kind, dataset, model_name, options, grid, folds, fold) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
			 7, types, values, nulls, SPI_OK_INSERT_RETURNING);
	return returned_id();
}

/* Procedures with an INOUT argument return it as a one-column record. */
static Datum
return_experiment_id(FunctionCallInfo fcinfo, int64 id)
{
	TupleDesc	desc;
	Datum		values[1] = {Int64GetDatum(id)};
	bool		nulls[1] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) == TYPEFUNC_COMPOSITE)
		return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
	PG_RETURN_INT64(id);
}

static Jsonb *
jsonb_arg_or_empty(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	return PG_GETARG_JSONB_P_COPY(argno);
}

static void
summarise_experiment(int64 experiment_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(experiment_id)};

	spi_exec("SELECT round(mse::numeric, 4), round(mse_std::numeric, 4), round(ci::numeric, 4), "
			 "round(ci_std::numeric, 4) FROM moe.cross_validation_summary WHERE experiment_id = $1",
			 1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1 && progress_at(MOE_PROGRESS_SUMMARY))
	{
		/* the standard deviation is NULL when only one fold completed */
#define CELL(col) \
	(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col) ? \
	 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col) : "n/a")
		ereport(NOTICE,
				(errmsg("cross-validation %lld: test mse %s +- %s, ci %s +- %s",
						(long long) experiment_id, CELL(1), CELL(2), CELL(3), CELL(4))));
#undef CELL
	}
}

/*
 * CALL moe_cross_validate(dataset, folds, model_name, options, INOUT experiment_id):
 * one run per fold 0..folds-1, each a model "<name>_fold<k>" (not deployed).
 */
PG_FUNCTION_INFO_V1(moe_cross_validate_sql);
Datum
moe_cross_validate_sql(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "moe_cross_validate",
											  ALLOCSET_DEFAULT_SIZES);
	volatile int64 experiment_id = 0;

	PG_TRY();
	{
		bool		nonatomic = call_is_nonatomic(fcinfo);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		train_spec	base;
		Jsonb	   *options;
		int			folds;

		train_spec_defaults(&base);
		if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("dataset and folds must not be NULL")));
		base.dataset = text_to_cstring(PG_GETARG_TEXT_PP(0));
		folds = PG_GETARG_INT32(1);
		if (folds < 1 || folds > MAX_FOLDS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("folds must be between 1 and %d, not %d", MAX_FOLDS, folds)));
		base.model_name = PG_ARGISNULL(2) ? psprintf("%s_cv", base.dataset)
			: text_to_cstring(PG_GETARG_TEXT_PP(2));
		options = jsonb_arg_or_empty(fcinfo, 3);
		train_spec_apply_json(&base, options, "options");
		base.deploy = MOE_DEPLOY_NEVER;
		train_spec_finalize(&base);
		/* the dataset must have folds when more than one is asked for */
		if (folds > 1 && moe_dataset_lookup(base.dataset)->fold_col == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dataset \"%s\" has no fold column, so folds must be 1", base.dataset)));
		MemoryContextSwitchTo(old);

		connect_spi(nonatomic);
		experiment_id = insert_experiment("cross_validation", &base, options, NULL, folds);
		if (nonatomic)
			SPI_commit();
		for (int k = 0; k < folds; k++)
		{
			train_spec *spec = spec_in(cxt, &base);

			spec->fold = k;
			spec->model_name = MemoryContextStrdup(cxt, psprintf("%s_fold%d", base.model_name, k));
			spec->experiment_id = experiment_id;
			run_training(spec, nonatomic);
		}
		summarise_experiment(experiment_id);
		SPI_finish();
	}
	PG_FINALLY();
	{
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	return return_experiment_id(fcinfo, experiment_id);
}

/* The grid's axes: option names and their JSON arrays of values. */
typedef struct sweep_axis
{
	char	   *name;
	int			n;
	JsonbValue *values;
} sweep_axis;

static int
read_grid(Jsonb *grid, sweep_axis **axes_out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	sweep_axis *axes = palloc0(sizeof(sweep_axis) * 64);
	int			n_axes = 0;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(grid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("grid must be a JSON object mapping option names to arrays of values")));
	it = JsonbIteratorInit(&grid->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			if (strcmp(key, "deploy") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("grid: \"deploy\" cannot vary in a sweep"),
						 errdetail("A sweep records its runs and deploys none of them; deploy the chosen model with moe_deploy().")));
			if (!train_option_exists(key))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("grid: unknown training option \"%s\"", key),
						 errhint("Valid options: %s.", train_option_names())));
		}
		else if (tok == WJB_VALUE)
		{
			JsonbIterator *ait;
			JsonbValue	elem;
			sweep_axis *a;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data) ||
				JsonContainerSize(v.val.binary.data) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("grid: \"%s\" must be a non-empty array of values", key)));
			if (n_axes == 64)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("grid has too many options")));
			a = &axes[n_axes++];
			a->name = key;
			a->values = palloc(sizeof(JsonbValue) * JsonContainerSize(v.val.binary.data));
			ait = JsonbIteratorInit(v.val.binary.data);
			while ((tok = JsonbIteratorNext(&ait, &elem, true)) != WJB_DONE)
				if (tok == WJB_ELEM)
					a->values[a->n++] = elem;
		}
	}
	*axes_out = axes;
	return n_axes;
}

/* A one-key jsonb object {name: value}, to apply one grid value. */
static Jsonb *
single_option(const char *name, JsonbValue *value)
{
	JsonbParseState *state = NULL;
	JsonbValue	key;

	key.type = jbvString;
	key.val.string.val = (char *) name;
	key.val.string.len = strlen(name);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	pushJsonbValue(&state, WJB_KEY, &key);
	pushJsonbValue(&state, WJB_VALUE, value);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* One grid value as text for a model name: strings bare, the rest as JSON. */
static char *
grid_value_text(JsonbValue *value)
{
	if (value->type == jbvString)
		return pnstrdup(value->val.string.val, value->val.string.len);
	if (value->type == jbvBinary)
		return JsonbToCString(NULL, value->val.binary.data, value->val.binary.len);
	{
		Jsonb	   *j = JsonbValueToJsonb(value);

		return JsonbToCString(NULL, &j->root, VARSIZE(j));
	}
}

/*
 * The point of a grid that p numbers (the last axis varies fastest): as
 * jsonb text of just those options, as the user wrote them
 * (moe.training_runs.params), and as "name=value,..." for the model name.
 */
static void
grid_point(sweep_axis *axes, int n_axes, int p, char **json, char **label)
{
	StringInfoData j,
				l;
	int		   *pick = palloc(sizeof(int) * n_axes);
	int			rest = p;

	for (int a = n_axes - 1; a >= 0; a--)
	{
		pick[a] = rest % axes[a].n;
		rest /= axes[a].n;
	}
	initStringInfo(&j);
	initStringInfo(&l);
	appendStringInfoChar(&j, '{');
	for (int a = 0; a < n_axes; a++)
	{
		Jsonb	   *one = single_option(axes[a].name, &axes[a].values[pick[a]]);
		char	   *text = JsonbToCString(NULL, &one->root, VARSIZE(one));

		/* "{"name": value}" without its braces */
		appendStringInfo(&j, "%s%.*s", a > 0 ? ", " : "", (int) strlen(text) - 2, text + 1);
		appendStringInfo(&l, "%s%s=%s", a > 0 ? "," : "", axes[a].name,
						 grid_value_text(&axes[a].values[pick[a]]));
	}
	appendStringInfoChar(&j, '}');
	*json = j.data;
	*label = l.data;
}

/*
 * CALL moe_sweep(dataset, grid, fold, model_name, options, INOUT experiment_id):
 * one run per point of the grid's cartesian product, each a model
 * "<name>_<i>" (not deployed).  All points are validated before the first
 * run starts.
 */
PG_FUNCTION_INFO_V1(moe_sweep_sql);
Datum
moe_sweep_sql(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "moe_sweep", ALLOCSET_DEFAULT_SIZES);
	volatile int64 experiment_id = 0;

	PG_TRY();
	{
		bool		nonatomic = call_is_nonatomic(fcinfo);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		train_spec	base;
		Jsonb	   *options,
				   *grid;
		sweep_axis *axes;
		int			n_axes;
		int64		points = 1;
		train_spec **specs;

		train_spec_defaults(&base);
		if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("dataset, grid and fold must not be NULL")));
		base.dataset = text_to_cstring(PG_GETARG_TEXT_PP(0));
		grid = PG_GETARG_JSONB_P_COPY(1);
		base.fold = PG_GETARG_INT32(2);
		base.model_name = PG_ARGISNULL(3) ? psprintf("%s_sweep", base.dataset)
			: text_to_cstring(PG_GETARG_TEXT_PP(3));
		if (base.model_name[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model_name must not be empty")));
		options = jsonb_arg_or_empty(fcinfo, 4);
		train_spec_apply_json(&base, options, "options");
		base.deploy = MOE_DEPLOY_NEVER;

		n_axes = read_grid(grid, &axes);
		for (int a = 0; a < n_axes; a++)
		{
			points *= axes[a].n;
			if (points > MAX_SWEEP_POINTS)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("grid has more than %d points", MAX_SWEEP_POINTS)));
		}
		specs = palloc(sizeof(train_spec *) * points);
		for (int p = 0; p < points; p++)
		{
			int			rest = p;
			train_spec	spec = base;

			/* the last axis varies fastest */
			for (int a = n_axes - 1; a >= 0; a--)
			{
				train_spec_apply_json(&spec, single_option(axes[a].name, &axes[a].values[rest % axes[a].n]),
									  "grid");
				rest /= axes[a].n;
			}
			{
				char	   *label;

				grid_point(axes, n_axes, p, &spec.params_json, &label);
				spec.model_name = psprintf("%s_%d[%s]", base.model_name, p + 1, label);
			}
			train_spec_finalize(&spec);
			specs[p] = spec_in(cxt, &spec);
		}
		MemoryContextSwitchTo(old);

		connect_spi(nonatomic);
		experiment_id = insert_experiment("sweep", &base, options, grid, 0);
		if (nonatomic)
			SPI_commit();
		for (int p = 0; p < points; p++)
		{
			specs[p]->experiment_id = experiment_id;
			if (progress_at(MOE_PROGRESS_SUMMARY))
				ereport(NOTICE, (errmsg("sweep %lld: point %d of %d", (long long) experiment_id, p + 1, (int) points)));
			run_training(specs[p], nonatomic);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	return return_experiment_id(fcinfo, experiment_id);
}
