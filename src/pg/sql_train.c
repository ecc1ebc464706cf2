/*
 * sql_train.c — CALL moe_train(dataset, fold => ..., ...).
 *
 * A procedure, so it can COMMIT after every epoch: the run row and each
 * epoch's history row become visible to other sessions while training goes
 * on.  Each unit of work (reading the data, one epoch, the final model)
 * runs in a subtransaction; if it fails or is cancelled, the subtransaction
 * is rolled back, the run is marked 'failed' or 'cancelled' and committed,
 * and the error is raised again.  No model row is written until the
 * training is complete, so a cancel never leaves half a model behind.
 *
 * Called inside a transaction block (or from a function) the procedure
 * cannot commit: it trains in the caller's transaction and says so.
 */
#include "moe_pg.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "checkpoint.h"
#include "dataset.h"
#include "metrics.h"
#include "train.h"

/* Argument positions of moe_train in sql/moe_pg--*.sql. */
enum
{
	ARG_DATASET, ARG_FOLD, ARG_MODEL_NAME, ARG_EXPERTS, ARG_TOP_K, ARG_LB_METHOD,
	ARG_LB_WEIGHT, ARG_EPOCHS, ARG_BATCH_SIZE, ARG_LR, ARG_LR_SCHEDULE, ARG_WEIGHT_DECAY,
	ARG_DROPOUT, ARG_TEMPERATURE, ARG_PATIENCE, ARG_SEED, ARG_DRUG_HIDDEN, ARG_PROTEIN_HIDDEN,
	ARG_GATE_HIDDEN, ARG_EXPERT_HIDDEN, ARG_GRAD_CLIP, ARG_DEPLOY, N_ARGS
};

static const char *const arg_names[N_ARGS] = {
	"dataset", "fold", "model_name", "experts", "top_k", "lb_method", "lb_weight", "epochs",
	"batch_size", "lr", "lr_schedule", "weight_decay", "dropout", "temperature", "patience",
	"seed", "drug_hidden", "protein_hidden", "gate_hidden", "expert_hidden", "grad_clip", "deploy"
};

/* Everything one training run carries from step to step. */
typedef struct train_run
{
	bool		nonatomic;		/* may commit */
	char	   *dataset;
	int			fold;
	char	   *model_name;
	bool		deploy;
	moe_config	arch;
	moe_train_options opt;
	char	   *config_json;	/* hyperparameters, for the run and model rows */
	int64		run_id;
	MemoryContext cxt;			/* data and strings; lives across commits */
	moe_dataset_def *def;
	moe_dataset_data data;
	moe_trainer *trainer;
	moe_epoch_report last;
	double		seconds;
	int64		model_id;
} train_run;

/* ---- arguments ----------------------------------------------------------- */

static void
require_arg(FunctionCallInfo fcinfo, int i)
{
	if (PG_ARGISNULL(i))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", arg_names[i])));
}

static int
int_arg(FunctionCallInfo fcinfo, int i)
{
	require_arg(fcinfo, i);
	return PG_GETARG_INT32(i);
}

static float
real_arg(FunctionCallInfo fcinfo, int i)
{
	float		v;

	require_arg(fcinfo, i);
	v = PG_GETARG_FLOAT4(i);
	if (!isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", arg_names[i])));
	return v;
}

/* An integer[] of layer widths into n / widths. */
static void
widths_arg(FunctionCallInfo fcinfo, int i, int min_layers, int32_t *n, int32_t *widths)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			count;

	require_arg(fcinfo, i);
	arr = PG_GETARG_ARRAYTYPE_P(i);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array of layer widths", arg_names[i])));
	deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &count);
	if (count < min_layers || count > MOE_MAX_LAYERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must list between %d and %d layer widths, not %d", arg_names[i],
						min_layers, MOE_MAX_LAYERS, count)));
	for (int j = 0; j < count; j++)
	{
		if (nulls[j])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", arg_names[i])));
		widths[j] = DatumGetInt32(elems[j]);
	}
	*n = count;
}

/* "key": — with a comma unless it opens an object. */
static void
json_key(StringInfo s, const char *key)
{
	if (s->len > 0 && s->data[s->len - 1] != '{')
		appendStringInfoString(s, ", ");
	escape_json(s, key);
	appendStringInfoString(s, ": ");
}

static void
json_widths(StringInfo s, const char *key, int n, const int32_t *w)
{
	json_key(s, key);
	appendStringInfoChar(s, '[');
	for (int i = 0; i < n; i++)
		appendStringInfo(s, "%s%d", i ? ", " : "", w[i]);
	appendStringInfoChar(s, ']');
}

/* A float that jsonb reads back as the same float. */
static void
json_real(StringInfo s, const char *key, double v)
{
	json_key(s, key);
	if (isfinite(v))
		appendStringInfo(s, "%.9g", v);
	else
		appendStringInfoString(s, "null");
}

static char *
config_json(const train_run *r)
{
	StringInfoData s;
	const moe_config *a = &r->arch;
	const moe_train_options *o = &r->opt;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	json_key(&s, "experts");
	appendStringInfo(&s, "%d", a->n_experts);
	json_key(&s, "top_k");
	appendStringInfo(&s, "%d", a->top_k);
	json_key(&s, "lb_method");
	escape_json(&s, moe_lb_method_name(o->lb_method));
	json_real(&s, "lb_weight", o->lb_weight);
	json_key(&s, "epochs");
	appendStringInfo(&s, "%d", o->epochs);
	json_key(&s, "batch_size");
	appendStringInfo(&s, "%d", o->batch_size);
	json_real(&s, "lr", o->lr);
	json_key(&s, "lr_schedule");
	escape_json(&s, moe_lr_schedule_name(o->lr_schedule));
	json_real(&s, "weight_decay", o->weight_decay);
	json_real(&s, "grad_clip", o->grad_clip);
	json_real(&s, "dropout", a->dropout);
	json_real(&s, "temperature", a->temperature);
	json_key(&s, "patience");
	appendStringInfo(&s, "%d", o->patience);
	json_key(&s, "seed");
	appendStringInfo(&s, "%llu", (unsigned long long) o->seed);
	json_widths(&s, "drug_hidden", a->n_drug_layers, a->drug_hidden);
	json_widths(&s, "protein_hidden", a->n_protein_layers, a->protein_hidden);
	json_widths(&s, "gate_hidden", a->n_gate_layers, a->gate_hidden);
	json_widths(&s, "expert_hidden", a->n_expert_layers, a->expert_hidden);
	appendStringInfoChar(&s, '}');
	return s.data;
}

static void
parse_arguments(FunctionCallInfo fcinfo, train_run *r)
{
	moe_error	err;
	int64		seed;

	require_arg(fcinfo, ARG_DATASET);
	r->dataset = text_to_cstring(PG_GETARG_TEXT_PP(ARG_DATASET));
	r->fold = int_arg(fcinfo, ARG_FOLD);
	r->model_name = PG_ARGISNULL(ARG_MODEL_NAME) ? pstrdup(r->dataset)
		: text_to_cstring(PG_GETARG_TEXT_PP(ARG_MODEL_NAME));
	if (r->model_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_name must not be empty")));
	require_arg(fcinfo, ARG_DEPLOY);
	r->deploy = PG_GETARG_BOOL(ARG_DEPLOY);

	/* dimensions come from the data; everything else from the arguments */
	moe_config_defaults(&r->arch, 1, 1);
	r->arch.n_experts = int_arg(fcinfo, ARG_EXPERTS);
	r->arch.top_k = int_arg(fcinfo, ARG_TOP_K);
	r->arch.dropout = real_arg(fcinfo, ARG_DROPOUT);
	r->arch.temperature = real_arg(fcinfo, ARG_TEMPERATURE);
	widths_arg(fcinfo, ARG_DRUG_HIDDEN, 1, &r->arch.n_drug_layers, r->arch.drug_hidden);
	widths_arg(fcinfo, ARG_PROTEIN_HIDDEN, 1, &r->arch.n_protein_layers, r->arch.protein_hidden);
	widths_arg(fcinfo, ARG_GATE_HIDDEN, 0, &r->arch.n_gate_layers, r->arch.gate_hidden);
	widths_arg(fcinfo, ARG_EXPERT_HIDDEN, 0, &r->arch.n_expert_layers, r->arch.expert_hidden);
	moe_check(moe_config_validate(&r->arch, &err), &err);

	moe_train_options_defaults(&r->opt);
	r->opt.epochs = int_arg(fcinfo, ARG_EPOCHS);
	r->opt.batch_size = int_arg(fcinfo, ARG_BATCH_SIZE);
	r->opt.lr = real_arg(fcinfo, ARG_LR);
	r->opt.weight_decay = real_arg(fcinfo, ARG_WEIGHT_DECAY);
	r->opt.grad_clip = real_arg(fcinfo, ARG_GRAD_CLIP);
	r->opt.lb_weight = real_arg(fcinfo, ARG_LB_WEIGHT);
	r->opt.patience = int_arg(fcinfo, ARG_PATIENCE);
	require_arg(fcinfo, ARG_SEED);
	seed = PG_GETARG_INT64(ARG_SEED);
	if (seed < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("seed must not be negative")));
	r->opt.seed = (uint64_t) seed;
	require_arg(fcinfo, ARG_LB_METHOD);
	moe_check(moe_lb_method_parse(text_to_cstring(PG_GETARG_TEXT_PP(ARG_LB_METHOD)),
								  &r->opt.lb_method, &err), &err);
	require_arg(fcinfo, ARG_LR_SCHEDULE);
	moe_check(moe_lr_schedule_parse(text_to_cstring(PG_GETARG_TEXT_PP(ARG_LR_SCHEDULE)),
									&r->opt.lr_schedule, &err), &err);
	moe_check(moe_train_options_validate(&r->opt, &err), &err);
	r->config_json = config_json(r);
}

/* ---- rows of moe.training_runs and moe.training_history ------------------ */

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, int expect)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expect)
		elog(ERROR, "moe_train: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

static int64
insert_run(train_run *r)
{
	Oid			types[4] = {TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(r->model_name), CStringGetTextDatum(r->dataset),
		Int32GetDatum(r->fold), CStringGetTextDatum(r->config_json)};
	bool		isnull;

	spi_exec("INSERT INTO moe.training_runs (model_name, dataset, fold, config, status) "
			 "VALUES ($1, $2, $3, $4::jsonb, 'running') RETURNING id",
			 4, types, values, NULL, SPI_OK_INSERT_RETURNING);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
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

static Datum
float8_array(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
int8_array(const int64_t *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static void
insert_history(const train_run *r, const moe_epoch_report *e)
{
	Oid			types[11] = {INT8OID, INT4OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
		FLOAT8OID, FLOAT8OID, BOOLOID, FLOAT8ARRAYOID, INT8ARRAYOID};
	Datum		values[11] = {Int64GetDatum(r->run_id), Int32GetDatum(e->epoch),
		Float8GetDatum(e->train_loss), Float8GetDatum(e->train_mse), Float8GetDatum(e->aux_loss),
		Float8GetDatum(e->val_mse), Float8GetDatum(e->lr), Float8GetDatum(e->seconds),
		BoolGetDatum(e->improved), float8_array(e->expert_prob, e->n_experts),
	int8_array(e->expert_count, e->n_experts)};
	char		nulls[11] = {' ', ' ', ' ', ' ', ' ', isnan(e->val_mse) ? 'n' : ' ', ' ', ' ', ' ',
	' ', ' '};

	spi_exec("INSERT INTO moe.training_history (run_id, epoch, train_loss, train_mse, aux_loss, "
			 "val_mse, lr, seconds, is_best, expert_prob, expert_count) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
			 11, types, values, nulls, SPI_OK_INSERT);
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
	moe_trainer_free(r->trainer);
	r->trainer = NULL;
}

static void
step_prepare(train_run *r)
{
	MemoryContext old = MemoryContextSwitchTo(r->cxt);
	moe_dataset_data *d = &r->data;
	moe_train_data td;
	moe_error	err;

	r->def = moe_dataset_lookup(r->dataset);
	if (r->def->fold_col == NULL && r->fold != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dataset \"%s\" has no fold column, so fold must be 0", r->dataset)));
	moe_dataset_read(r->def, r->fold, d);
	MemoryContextSwitchTo(old);

	if (d->split[MOE_SPLIT_TRAIN].n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset \"%s\" has no training rows%s", r->dataset,
						r->def->fold_col ? psprintf(" in fold %d", r->fold) : ""),
				 errhint("Rows are used when their split is 'train', 'valid' or 'test'.")));
	if (d->ignored_rows > 0)
		ereport(NOTICE,
				(errmsg("%lld rows of dataset \"%s\" have a split other than train, valid or test and are ignored",
						(long long) d->ignored_rows, r->dataset)));
	if (d->split[MOE_SPLIT_VALID].n == 0)
		ereport(NOTICE,
				(errmsg("dataset \"%s\" has no validation rows: early stopping is off and the last epoch is kept",
						r->dataset)));
	ereport(NOTICE,
			(errmsg("training on %d rows (%d validation, %d test): %d drugs x %d values, %d proteins x %d values",
					d->split[MOE_SPLIT_TRAIN].n, d->split[MOE_SPLIT_VALID].n,
					d->split[MOE_SPLIT_TEST].n, d->n_drugs, d->drug_dim, d->n_proteins,
					d->protein_dim)));

	r->arch.drug_dim = d->drug_dim;
	r->arch.protein_dim = d->protein_dim;
	td.n_drugs = d->n_drugs;
	td.drug_dim = d->drug_dim;
	td.drug_vec = d->drug_vec;
	td.n_proteins = d->n_proteins;
	td.protein_dim = d->protein_dim;
	td.protein_vec = d->protein_vec;
	td.train = moe_split_as_rows(&d->split[MOE_SPLIT_TRAIN]);
	td.valid = moe_split_as_rows(&d->split[MOE_SPLIT_VALID]);
	moe_backend_cpu_set_threads(moe_threads);
	moe_check(moe_trainer_create(&r->arch, &r->opt, &td, moe_cpu_backend(), poll_interrupts, r,
								 &r->trainer, &err), &err);
}

static void
step_epoch(train_run *r)
{
	moe_error	err;
	moe_epoch_report report;
	moe_epoch_report *e = &report;
	char		val[32];

	/* r->last changes only when an epoch completes, so a run stopped
	 * half-way through an epoch reports the epochs it finished. */
	moe_check(moe_trainer_epoch(r->trainer, e, &err), &err);
	insert_history(r, e);
	r->last = report;
	r->seconds += e->seconds;
	if (isnan(e->val_mse))
		snprintf(val, sizeof(val), "n/a");
	else
		snprintf(val, sizeof(val), "%.4f", e->val_mse);
	ereport(NOTICE,
			(errmsg("epoch %d/%d: loss %.4f (mse %.4f, aux %.4f), val_mse %s, lr %.2g, %.1f s%s",
					e->epoch, r->opt.epochs, e->train_loss, e->train_mse, e->aux_loss, val, e->lr,
					e->seconds, e->improved && !isnan(e->val_mse) ? " (best)" : "")));
}

static void
json_metrics(StringInfo s, const moe_metrics *m)
{
	json_key(s, "n");
	appendStringInfo(s, "%lld", (long long) m->n);
	json_real(s, "mse", m->mse);
	json_real(s, "rmse", m->rmse);
	json_real(s, "ci", m->ci);
	json_real(s, "r2", m->r2);
	json_real(s, "pearson", m->pearson);
	json_real(s, "spearman", m->spearman);
	json_real(s, "rm2", m->rm2);
}

/* Test metrics of the best model, as a JSON object (training facts too). */
static char *
final_metrics_json(train_run *r, moe_model *model)
{
	StringInfoData s;
	const moe_split_rows *test = &r->data.split[MOE_SPLIT_TEST];

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	json_key(&s, "epochs_run");
	appendStringInfo(&s, "%d", r->last.epoch);
	json_key(&s, "best_epoch");
	appendStringInfo(&s, "%d", r->last.best_epoch);
	json_real(&s, "best_val_mse", r->last.best_val_mse);
	json_real(&s, "train_seconds", r->seconds);
	json_key(&s, "n_train");
	appendStringInfo(&s, "%d", r->data.split[MOE_SPLIT_TRAIN].n);
	json_key(&s, "n_valid");
	appendStringInfo(&s, "%d", r->data.split[MOE_SPLIT_VALID].n);
	if (test->n > 0)
	{
		moe_workspace *ws;
		moe_rows	rows = moe_split_as_rows(test);
		float	   *pred = palloc_extended(sizeof(float) * test->n, MCXT_ALLOC_HUGE);
		moe_metrics m;
		moe_error	err;
		moe_status	st;

		moe_check(moe_workspace_create(model, MOE_INFER_BATCH, false, &ws, &err), &err);
		st = moe_predict_rows(model, ws, r->data.drug_vec, r->data.protein_vec, &rows, pred, &err);
		moe_workspace_free(model, ws);
		moe_check(st, &err);
		moe_check(moe_compute_metrics(test->label, pred, test->n, &m, &err), &err);
		json_key(&s, "test");
		appendStringInfoChar(&s, '{');
		json_metrics(&s, &m);
		appendStringInfoChar(&s, '}');
		ereport(NOTICE,
				(errmsg("test (%lld rows): mse %.4f, rmse %.4f, ci %.4f, r2 %.4f, pearson %.4f, spearman %.4f, rm2 %.4f",
						(long long) m.n, m.mse, m.rmse, m.ci, m.r2, m.pearson, m.spearman, m.rm2)));
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

static void
step_finish(train_run *r)
{
	moe_model  *model = moe_trainer_best_model(r->trainer);
	char	   *metrics = final_metrics_json(r, model);
	StringInfoData meta;
	size_t		size;
	bytea	   *blob;
	moe_error	err;
	bool		isnull;

	/* The checkpoint carries its own description, so an exported file can
	 * be imported elsewhere with nothing lost. */
	initStringInfo(&meta);
	appendStringInfoChar(&meta, '{');
	json_key(&meta, "name");
	escape_json(&meta, r->model_name);
	json_key(&meta, "dataset");
	escape_json(&meta, r->dataset);
	json_key(&meta, "fold");
	appendStringInfo(&meta, "%d", r->fold);
	json_key(&meta, "config");
	appendStringInfoString(&meta, r->config_json);
	json_key(&meta, "metrics");
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
		Datum		values[6] = {CStringGetTextDatum(r->model_name), CStringGetTextDatum(r->dataset),
			Int32GetDatum(r->fold), CStringGetTextDatum(r->config_json),
		CStringGetTextDatum(metrics), PointerGetDatum(blob)};

		spi_exec("INSERT INTO moe.models (name, dataset, fold, config, metrics, checkpoint) "
				 "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6) RETURNING id",
				 6, types, values, NULL, SPI_OK_INSERT_RETURNING);
		r->model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												  &isnull));
	}
	if (r->deploy)
	{
		Oid			types[2] = {TEXTOID, INT8OID};
		Datum		values[2] = {CStringGetTextDatum(r->model_name), Int64GetDatum(r->model_id)};

		spi_exec("INSERT INTO moe.deployments (name, model_id) VALUES ($1, $2) "
				 "ON CONFLICT (name) DO UPDATE SET model_id = EXCLUDED.model_id, "
				 "updated_at = now(), updated_by = current_user",
				 2, types, values, NULL, SPI_OK_INSERT);
	}
	finish_run(r->run_id, "completed", NULL, r->last.epoch, r->last.best_epoch, r->model_id);
	ereport(NOTICE,
			(errmsg("model %lld \"%s\" saved (best epoch %d of %d, %.1f s)%s",
					(long long) r->model_id, r->model_name, r->last.best_epoch, r->last.epoch,
					r->seconds, r->deploy ? "" : "; not deployed")));
}

/*
 * Run step(r) in a subtransaction.  On error: roll it back, free the
 * trainer, mark the run (committed where possible) and raise again.
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
		const char *status;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		release_trainer(r);

		status = edata->sqlerrcode == ERRCODE_QUERY_CANCELED ? "cancelled" : "failed";
		finish_run(r->run_id, status, edata->message, r->last.epoch, r->last.best_epoch, 0);
		if (r->nonatomic)
			SPI_commit();
		ReThrowError(edata);
	}
	PG_END_TRY();
}

static void
commit_if_allowed(train_run *r)
{
	if (r->nonatomic)
		SPI_commit();
}

PG_FUNCTION_INFO_V1(moe_train_sql);
Datum
moe_train_sql(PG_FUNCTION_ARGS)
{
	train_run	r;

	memset(&r, 0, sizeof(r));
	r.nonatomic = fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	r.cxt = AllocSetContextCreate(TopMemoryContext, "moe_train", ALLOCSET_DEFAULT_SIZES);

	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(r.cxt);

		parse_arguments(fcinfo, &r);
		MemoryContextSwitchTo(old);

		if (SPI_connect_ext(r.nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (!r.nonatomic)
			ereport(NOTICE,
					(errmsg("moe_train is running inside a transaction block: progress becomes visible only when it commits")));

		r.run_id = insert_run(&r);
		commit_if_allowed(&r);

		in_subtransaction(&r, step_prepare);
		while (!moe_trainer_done(r.trainer))
		{
			in_subtransaction(&r, step_epoch);
			commit_if_allowed(&r);
		}
		in_subtransaction(&r, step_finish);
		commit_if_allowed(&r);
		SPI_finish();
	}
	PG_FINALLY();
	{
		release_trainer(&r);
		MemoryContextDelete(r.cxt);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}
