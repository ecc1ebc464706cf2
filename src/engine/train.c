/*
 * train.c — the training loop (see train.h).
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"

static const char *const lr_names[MOE_LR_N_SCHEDULES] = {
	"constant", "cosine", "linear", "step", "constant_linear", "warmup"
};
static const char *const lbs_names[MOE_LBS_N_SCHEDULES] = {
	"constant", "warmup", "interpolate", "adaptive"
};
static const char *const ts_names[MOE_TS_N_SCHEDULES] = {
	"constant", "linear", "cosine", "exponential", "step"
};

static int
name_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

const char *
moe_lr_schedule_name(moe_lr_schedule s)
{
	return (int) s >= 0 && s < MOE_LR_N_SCHEDULES ? lr_names[s] : "unknown";
}

moe_status
moe_lr_schedule_parse(const char *name, moe_lr_schedule *out, moe_error *err)
{
	int			i = name_index(lr_names, MOE_LR_N_SCHEDULES, name);

	if (i < 0)
		return moe_fail(err, MOE_ERR_INVALID, "unknown learning-rate schedule \"%s\" (valid: %s)",
						name, MOE_LR_CHOICES);
	*out = (moe_lr_schedule) i;
	return MOE_OK;
}

const char *
moe_lb_schedule_name(moe_lb_schedule s)
{
	return (int) s >= 0 && s < MOE_LBS_N_SCHEDULES ? lbs_names[s] : "unknown";
}

moe_status
moe_lb_schedule_parse(const char *name, moe_lb_schedule *out, moe_error *err)
{
	int			i = name_index(lbs_names, MOE_LBS_N_SCHEDULES, name);

	if (i < 0)
		return moe_fail(err, MOE_ERR_INVALID, "unknown load-balancing schedule \"%s\" (valid: %s)",
						name, MOE_LB_SCHEDULE_CHOICES);
	*out = (moe_lb_schedule) i;
	return MOE_OK;
}

const char *
moe_temperature_schedule_name(moe_temperature_schedule s)
{
	return (int) s >= 0 && s < MOE_TS_N_SCHEDULES ? ts_names[s] : "unknown";
}

moe_status
moe_temperature_schedule_parse(const char *name, moe_temperature_schedule *out, moe_error *err)
{
	int			i = name_index(ts_names, MOE_TS_N_SCHEDULES, name);

	if (i < 0)
		return moe_fail(err, MOE_ERR_INVALID, "unknown temperature schedule \"%s\" (valid: %s)",
						name, MOE_TEMPERATURE_SCHEDULE_CHOICES);
	*out = (moe_temperature_schedule) i;
	return MOE_OK;
}

void
moe_train_options_defaults(moe_train_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->epochs = 100;
	opt->batch_size = 256;
	opt->lr = 1e-3f;
	opt->lr_min = 0.0f;
	opt->lr_schedule = MOE_LR_COSINE;
	opt->lr_warmup_epochs = 0;
	opt->lr_step_epochs = 10;
	opt->lr_gamma = 0.5f;
	opt->lr_decay_start = 0.5f;
	opt->weight_decay = 0.0f;
	opt->grad_clip = 0.0f;
	opt->ema_decay = 0.0f;
	moe_train_options_default_balance(opt);
	opt->lb_schedule = MOE_LBS_CONSTANT;
	opt->lb_warmup_epochs = 5;
	opt->lb_min_scale = 0.1f;
	opt->lb_decay = 0.5f;
	opt->temperature_schedule = MOE_TS_CONSTANT;
	opt->temperature_end = NAN;
	opt->temperature_step_epochs = 10;
	opt->patience = 20;
	opt->min_delta = 0.0f;
	opt->seed = 42;
}

void
moe_train_options_default_balance(moe_train_options *opt)
{
	opt->n_balance = 3;
	opt->balance[0] = (moe_balance_term) {MOE_LB_IMPORTANCE, MOE_DEFAULT_IMPORTANCE};
	opt->balance[1] = (moe_balance_term) {MOE_LB_AUX_FREE, MOE_DEFAULT_AUX_FREE};
	opt->balance[2] = (moe_balance_term) {MOE_LB_SINKHORN, MOE_DEFAULT_SINKHORN};
}

void
moe_train_options_set_balance(moe_train_options *opt, moe_lb_method method, float weight)
{
	opt->n_balance = 0;
	if (method != MOE_LB_NONE)
	{
		opt->balance[0].method = method;
		opt->balance[0].weight = weight;
		opt->n_balance = 1;
	}
}

moe_status
moe_train_options_add_balance(moe_train_options *opt, moe_lb_method method, float weight,
							  moe_error *err)
{
	if (method == MOE_LB_NONE)
		return MOE_OK;
	for (int i = 0; i < opt->n_balance; i++)
		if (opt->balance[i].method == method)
			return moe_fail(err, MOE_ERR_INVALID, "load-balancing method \"%s\" is given twice",
							moe_lb_method_name(method));
	if (opt->n_balance == MOE_MAX_BALANCE_TERMS)
		return moe_fail(err, MOE_ERR_INVALID, "at most %d load-balancing terms can be combined",
						MOE_MAX_BALANCE_TERMS);
	opt->balance[opt->n_balance].method = method;
	opt->balance[opt->n_balance].weight = weight;
	opt->n_balance++;
	return MOE_OK;
}

static bool
finite_nonneg(float v)
{
	return v >= 0.0f && isfinite(v);
}

moe_status
moe_train_options_validate(const moe_train_options *o, moe_error *err)
{
	if (o->epochs < 1 || o->epochs > 100000)
		return moe_fail(err, MOE_ERR_INVALID, "epochs must be between 1 and 100000, not %d", o->epochs);
	if (o->batch_size < 1 || o->batch_size > 65536)
		return moe_fail(err, MOE_ERR_INVALID, "batch_size must be between 1 and 65536, not %d",
						o->batch_size);
	if (!(o->lr > 0.0f) || !isfinite(o->lr) || o->lr > 10.0f)
		return moe_fail(err, MOE_ERR_INVALID, "lr must be a positive number up to 10, not %g",
						(double) o->lr);
	if (!finite_nonneg(o->lr_min) || o->lr_min > o->lr)
		return moe_fail(err, MOE_ERR_INVALID, "lr_min must be between 0 and lr (%g), not %g",
						(double) o->lr, (double) o->lr_min);
	if ((int) o->lr_schedule < 0 || o->lr_schedule >= MOE_LR_N_SCHEDULES)
		return moe_fail(err, MOE_ERR_INVALID, "unknown learning-rate schedule (valid: %s)", MOE_LR_CHOICES);
	if (o->lr_warmup_epochs < 0 || o->lr_warmup_epochs >= o->epochs)
		return moe_fail(err, MOE_ERR_INVALID, "lr_warmup_epochs must be between 0 and epochs - 1 (%d), not %d",
						o->epochs - 1, o->lr_warmup_epochs);
	if (o->lr_schedule == MOE_LR_WARMUP && o->lr_warmup_epochs == 0)
		return moe_fail(err, MOE_ERR_INVALID, "lr_schedule \"warmup\" needs lr_warmup_epochs of at least 1");
	if (o->lr_step_epochs < 1)
		return moe_fail(err, MOE_ERR_INVALID, "lr_step_epochs must be at least 1, not %d", o->lr_step_epochs);
	if (!(o->lr_gamma > 0.0f && o->lr_gamma <= 1.0f))
		return moe_fail(err, MOE_ERR_INVALID, "lr_gamma must be in (0, 1], not %g", (double) o->lr_gamma);
	if (!(o->lr_decay_start >= 0.0f && o->lr_decay_start < 1.0f))
		return moe_fail(err, MOE_ERR_INVALID, "lr_decay_start must be in [0, 1), not %g",
						(double) o->lr_decay_start);
	if (!finite_nonneg(o->weight_decay))
		return moe_fail(err, MOE_ERR_INVALID, "weight_decay must be a non-negative number, not %g",
						(double) o->weight_decay);
	if (!(o->ema_decay >= 0.0f && o->ema_decay < 1.0f))
		return moe_fail(err, MOE_ERR_INVALID, "ema_decay must be in [0, 1), not %g",
						(double) o->ema_decay);
	if (!finite_nonneg(o->grad_clip))
		return moe_fail(err, MOE_ERR_INVALID, "grad_clip must be a non-negative number, not %g",
						(double) o->grad_clip);
	if (o->n_balance < 0 || o->n_balance > MOE_MAX_BALANCE_TERMS)
		return moe_fail(err, MOE_ERR_INVALID, "at most %d load-balancing terms can be combined",
						MOE_MAX_BALANCE_TERMS);
	for (int i = 0; i < o->n_balance; i++)
	{
		const moe_balance_term *t = &o->balance[i];

		if ((int) t->method <= MOE_LB_NONE || t->method >= MOE_LB_N_METHODS)
			return moe_fail(err, MOE_ERR_INVALID, "unknown load-balancing method (valid: %s)", MOE_LB_CHOICES);
		if (!finite_nonneg(t->weight))
			return moe_fail(err, MOE_ERR_INVALID, "the weight of \"%s\" must be a non-negative number, not %g",
							moe_lb_method_name(t->method), (double) t->weight);
	}
	if ((int) o->lb_schedule < 0 || o->lb_schedule >= MOE_LBS_N_SCHEDULES)
		return moe_fail(err, MOE_ERR_INVALID, "unknown load-balancing schedule (valid: %s)",
						MOE_LB_SCHEDULE_CHOICES);
	if (o->lb_warmup_epochs < 1)
		return moe_fail(err, MOE_ERR_INVALID, "lb_warmup_epochs must be at least 1, not %d",
						o->lb_warmup_epochs);
	if (!(o->lb_min_scale >= 0.0f && o->lb_min_scale <= 1.0f))
		return moe_fail(err, MOE_ERR_INVALID, "lb_min_scale must be in [0, 1], not %g",
						(double) o->lb_min_scale);
	if (!(o->lb_decay > 0.0f && o->lb_decay <= 1.0f))
		return moe_fail(err, MOE_ERR_INVALID, "lb_decay must be in (0, 1], not %g", (double) o->lb_decay);
	if ((int) o->temperature_schedule < 0 || o->temperature_schedule >= MOE_TS_N_SCHEDULES)
		return moe_fail(err, MOE_ERR_INVALID, "unknown temperature schedule (valid: %s)",
						MOE_TEMPERATURE_SCHEDULE_CHOICES);
	if (!isnan(o->temperature_end) && !(o->temperature_end > 0.0f && isfinite(o->temperature_end)))
		return moe_fail(err, MOE_ERR_INVALID, "temperature_end must be a positive number, not %g",
						(double) o->temperature_end);
	if (o->temperature_step_epochs < 1)
		return moe_fail(err, MOE_ERR_INVALID, "temperature_step_epochs must be at least 1, not %d",
						o->temperature_step_epochs);
	if (o->patience < 0)
		return moe_fail(err, MOE_ERR_INVALID, "patience must be 0 (off) or positive, not %d",
						o->patience);
	if (!finite_nonneg(o->min_delta))
		return moe_fail(err, MOE_ERR_INVALID, "min_delta must be a non-negative number, not %g",
						(double) o->min_delta);
	return MOE_OK;
}

struct moe_trainer
{
	moe_train_options opt;
	moe_train_data data;
	moe_backend *be;
	moe_model  *model;
	moe_workspace *ws;			/* training workspace */
	moe_infer_ws *eval_ws;		/* inference workspace for validation */
	float	   *val_drug_parts; /* backend: every entity's part for validation, or NULL */
	float	   *val_protein_parts;
	moe_interrupt_fn interrupted;
	void	   *ctx;

	const float *drug_table;	/* backend copies of the entity tables */
	const float *protein_table;
	float	   *owned_drug_table;	/* non-NULL when we uploaded them */
	float	   *owned_protein_table;

	float	   *grads;			/* backend, n_params */
	float	   *adam_m;
	float	   *adam_v;
	float	   *best_params;	/* host copy of the best epoch's parameters */
	float	   *ema;			/* backend: moving average of the weights (ema_decay > 0) */
	float	   *spare;			/* backend scratch of n_params (ema_decay > 0) */
	float	   *label_std_host; /* standardised training labels */
	float	   *batch_target;	/* backend [batch] */
	float	   *batch_target_host;
	int32_t    *batch_drug;
	int32_t    *batch_protein;
	uint32_t   *order;			/* shuffled training rows */
	float	   *val_pred;

	moe_rng		rng;
	int			epoch;			/* epochs completed */
	int64_t		step;			/* optimiser steps taken */
	int64_t		total_steps;
	int64_t		steps_per_epoch;
	int			best_epoch;
	double		best_val;
	float		best_temperature;
	float		start_temperature;
	int			since_best;
	bool		stopped_early;
	double		lb_scale;		/* the balancing schedule's multiplier */
	double		adaptive_scale; /* the adaptive schedule's current value */
	float		aux_free_rate;	/* gamma of aux-loss-free balancing, 0 = off */
	float	   *select_bias;	/* host copy of the model's selection bias */
	float	   *gate_probs;		/* host [batch, E]: the batch's gate probabilities */
	float	   *assign_target;	/* host [batch, E]: their balanced assignment, then its gradient */
	double	   *assign_work;	/* host [batch, E]: the assignment's Sinkhorn scaling */
	double		density[2];		/* of the drug and protein tables */
	moe_sparse_table sparse[2];	/* their sparse copies, when trained sparse */
};

/*
 * Validation computes every entity's part once per epoch (instead of once
 * per batch that holds it) when the tables have fewer entities than there
 * are validation rows and their parts take at most this much memory.
 */
#define WHOLE_VALIDATION_MAX_BYTES ((size_t) 256 << 20)

static size_t
whole_validation_bytes(const moe_model *shape, const moe_train_data *data)
{
	size_t		bytes = sizeof(float) * moe_entity_part_floats(shape) *
		((size_t) data->n_drugs + (size_t) data->n_proteins);

	if ((int64_t) data->n_drugs + data->n_proteins > data->valid.n || bytes > WHOLE_VALIDATION_MAX_BYTES)
		return 0;
	return bytes;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static moe_status
check_rows(const moe_rows *rows, const moe_train_data *d, const char *what, moe_error *err)
{
	for (int i = 0; i < rows->n; i++)
	{
		if (rows->drug_idx[i] < 0 || rows->drug_idx[i] >= d->n_drugs ||
			rows->protein_idx[i] < 0 || rows->protein_idx[i] >= d->n_proteins)
			return moe_fail(err, MOE_ERR_INVALID, "%s row %d refers to a missing drug or protein",
							what, i + 1);
		if (!isfinite(rows->label[i]))
			return moe_fail(err, MOE_ERR_DATA, "%s row %d has a label that is not finite",
							what, i + 1);
	}
	return MOE_OK;
}

/*
 * Column means and 1/std over the distinct entities used by the training
 * rows, so a drug measured against many targets does not count many times.
 */
static moe_status
entity_stats(const float *table, int n_entities, int dim, const int32_t *idx, int n_rows,
			 float *shift, float *scale, moe_error *err)
{
	char	   *used = calloc(n_entities > 0 ? n_entities : 1, 1);
	double	   *sum = calloc(dim, sizeof(double));
	double	   *sq = calloc(dim, sizeof(double));
	int			count = 0;

	if (used == NULL || sum == NULL || sq == NULL)
	{
		free(used);
		free(sum);
		free(sq);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory computing input statistics");
	}
	for (int i = 0; i < n_rows; i++)
		used[idx[i]] = 1;
	for (int e = 0; e < n_entities; e++)
	{
		if (!used[e])
			continue;
		count++;
		for (int j = 0; j < dim; j++)
			sum[j] += table[(size_t) e * dim + j];
	}
	for (int j = 0; j < dim; j++)
		sum[j] /= count;
	for (int e = 0; e < n_entities; e++)
	{
		if (!used[e])
			continue;
		for (int j = 0; j < dim; j++)
		{
			double		d = table[(size_t) e * dim + j] - sum[j];

			sq[j] += d * d;
		}
	}
	for (int j = 0; j < dim; j++)
	{
		double		sd = sqrt(sq[j] / count);

		shift[j] = (float) sum[j];
		/* a constant column carries no information: centre it only */
		scale[j] = sd > 1e-6 ? (float) (1.0 / sd) : 1.0f;
	}
	free(used);
	free(sum);
	free(sq);
	return MOE_OK;
}

static moe_status
set_standardisation(moe_trainer *t, moe_config *cfg, moe_error *err)
{
	const moe_train_data *d = &t->data;
	double		mean = 0.0,
				var = 0.0;

	for (int i = 0; i < d->train.n; i++)
		mean += d->train.label[i];
	mean /= d->train.n;
	for (int i = 0; i < d->train.n; i++)
		var += (d->train.label[i] - mean) * (d->train.label[i] - mean);
	var /= d->train.n;
	cfg->label_mean = (float) mean;
	cfg->label_std = var > 1e-12 ? (float) sqrt(var) : 1.0f;
	return MOE_OK;
}

static moe_status
upload_table(moe_trainer *t, const float *host, size_t n, const float **dst, float **owned,
			 moe_error *err)
{
	moe_backend *be = t->be;

	if (be->host_memory)
	{
		*dst = host;
		return MOE_OK;
	}
	*owned = be->alloc(be, sizeof(float) * n);
	if (*owned == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of device memory for the training data");
	be->upload(be, *owned, host, sizeof(float) * n);
	*dst = *owned;
	return MOE_OK;
}

static const char *const sparse_names[] = {"auto", "off", "on"};

const char *
moe_sparse_inputs_name(moe_sparse_inputs s)
{
	return (int) s >= 0 && (size_t) s < sizeof(sparse_names) / sizeof(sparse_names[0])
		? sparse_names[s] : "unknown";
}

moe_status
moe_sparse_inputs_parse(const char *name, moe_sparse_inputs *out, moe_error *err)
{
	for (size_t i = 0; i < sizeof(sparse_names) / sizeof(sparse_names[0]); i++)
		if (strcmp(name, sparse_names[i]) == 0)
		{
			*out = (moe_sparse_inputs) i;
			return MOE_OK;
		}
	return moe_fail(err, MOE_ERR_INVALID, "unknown sparse_inputs \"%s\" (valid: %s)", name,
					MOE_SPARSE_INPUT_CHOICES);
}

/* Whether a table of this density trains its encoder's first layer sparse. */
static bool
use_sparse(const moe_train_options *opt, double density)
{
	return opt->sparse_inputs == MOE_SPARSE_ON ||
		(opt->sparse_inputs == MOE_SPARSE_AUTO && density <= MOE_SPARSE_DENSITY);
}

void
moe_trainer_inputs(const moe_trainer *t, double density[2], bool sparse[2])
{
	for (int i = 0; i < 2; i++)
	{
		density[i] = t->density[i];
		sparse[i] = t->sparse[i].row_ptr != NULL;
	}
}

moe_status
moe_trainer_bytes(const moe_config *arch, const moe_train_options *opt, const moe_train_data *data,
				  size_t *bytes, moe_error *err)
{
	moe_model  *shape;
	moe_status	st;
	size_t		np,
				b;
	int			bs = opt->batch_size < data->train.n ? opt->batch_size : data->train.n;

	*bytes = 0;
	if ((st = moe_model_wrap(arch, NULL, NULL, &shape, err)) != MOE_OK)
		return st;
	np = shape->layout.n_params;
	/* parameters, gradients, Adam's two moments, the best epoch's copy, and
	 * with an average of the weights that average and a spare */
	b = sizeof(float) * np * (5 + (opt->ema_decay > 0.0f ? 2 : 0));
	b += moe_workspace_bytes(shape, bs > 0 ? bs : 1);
	b += moe_infer_ws_bytes(shape, opt->batch_size > 0 ? opt->batch_size : 1);
	b += whole_validation_bytes(shape, data);
	/* per training row: standardised label and shuffle order; per validation row: a prediction */
	b += (sizeof(float) + sizeof(uint32_t)) * (size_t) data->train.n + sizeof(float) * (size_t) data->valid.n;
	/* input statistics */
	b += 4 * sizeof(float) * (size_t) (arch->drug_dim + arch->protein_dim);
	/* the batch's gate probabilities and their balanced assignment */
	b += (2 * sizeof(float) + sizeof(double)) * (size_t) opt->batch_size * arch->n_experts;
	/* sparse first layers: the tables and the products' buffers */
	for (int i = 0; i < 2; i++)
	{
		const float *x = i == 0 ? data->drug_vec : data->protein_vec;
		int			n = i == 0 ? data->n_drugs : data->n_proteins,
					dim = i == 0 ? data->drug_dim : data->protein_dim;
		int64_t		nnz,
					widest,
					total = (int64_t) n * dim;

		if (x == NULL)
			continue;
		/* counted, not copied: the estimate allocates nothing of its size */
		moe_sparse_count(x, n, dim, &nnz, &widest);
		if (use_sparse(opt, total > 0 ? (double) nnz / (double) total : 1.0))
			b += sizeof(int64_t) * ((size_t) n + 1) + (sizeof(int32_t) + sizeof(float)) * (size_t) nnz +
				moe_sparse_first_bytes(shape, i, n, widest, bs > 0 ? bs : 1);
	}
	moe_model_free(shape);
	*bytes = b;
	return MOE_OK;
}

moe_status
moe_trainer_create(const moe_config *arch, const moe_train_options *opt,
				   const moe_train_data *data, moe_backend *be, moe_interrupt_fn interrupted,
				   void *ctx, moe_trainer **out, moe_error *err)
{
	moe_trainer *t;
	moe_config	cfg = *arch;
	moe_status	st;
	size_t		np;
	float	   *dshift = NULL,
			   *dscale = NULL,
			   *pshift = NULL,
			   *pscale = NULL;

	*out = NULL;
	if ((st = moe_train_options_validate(opt, err)) != MOE_OK)
		return st;
	if (data->train.n < 1)
		return moe_fail(err, MOE_ERR_DATA, "no training rows");
	if (arch->drug_dim != data->drug_dim || arch->protein_dim != data->protein_dim)
		return moe_fail(err, MOE_ERR_INVALID, "model expects vectors of %d and %d values, data has %d and %d",
						arch->drug_dim, arch->protein_dim, data->drug_dim, data->protein_dim);
	if ((st = check_rows(&data->train, data, "training", err)) != MOE_OK ||
		(st = check_rows(&data->valid, data, "validation", err)) != MOE_OK)
		return st;

	t = calloc(1, sizeof(moe_trainer));
	if (t == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating a trainer");
	t->opt = *opt;
	t->data = *data;
	t->be = be;
	t->interrupted = interrupted;
	t->ctx = ctx;
	t->best_val = INFINITY;
	moe_rng_seed(&t->rng, opt->seed);

	set_standardisation(t, &cfg, err);
	if ((st = moe_model_create(&cfg, be, &t->model, err)) != MOE_OK)
		goto fail;
	if ((st = moe_model_init(t->model, opt->seed, err)) != MOE_OK)
		goto fail;

	dshift = malloc(sizeof(float) * cfg.drug_dim);
	dscale = malloc(sizeof(float) * cfg.drug_dim);
	pshift = malloc(sizeof(float) * cfg.protein_dim);
	pscale = malloc(sizeof(float) * cfg.protein_dim);
	if (!dshift || !dscale || !pshift || !pscale)
	{
		st = moe_fail(err, MOE_ERR_NOMEM, "out of memory computing input statistics");
		goto fail;
	}
	if ((st = entity_stats(data->drug_vec, data->n_drugs, data->drug_dim, data->train.drug_idx,
						   data->train.n, dshift, dscale, err)) != MOE_OK ||
		(st = entity_stats(data->protein_vec, data->n_proteins, data->protein_dim,
						   data->train.protein_idx, data->train.n, pshift, pscale, err)) != MOE_OK)
		goto fail;
	moe_model_set_input_norm(t->model, dshift, dscale, pshift, pscale);

	if ((st = upload_table(t, data->drug_vec, (size_t) data->n_drugs * data->drug_dim,
						   &t->drug_table, &t->owned_drug_table, err)) != MOE_OK ||
		(st = upload_table(t, data->protein_vec, (size_t) data->n_proteins * data->protein_dim,
						   &t->protein_table, &t->owned_protein_table, err)) != MOE_OK)
		goto fail;

	{
		int			bs = opt->batch_size < data->train.n ? opt->batch_size : data->train.n;

		if ((st = moe_workspace_create(t->model, bs, &t->ws, err)) != MOE_OK ||
			(st = moe_infer_ws_create(t->model, opt->batch_size, &t->eval_ws, err)) != MOE_OK)
			goto fail;
		if (whole_validation_bytes(t->model, data) > 0)
		{
			size_t		pf = moe_entity_part_floats(t->model);

			t->val_drug_parts = be->alloc(be, sizeof(float) * pf * data->n_drugs);
			t->val_protein_parts = be->alloc(be, sizeof(float) * pf * data->n_proteins);
			if (t->val_drug_parts == NULL || t->val_protein_parts == NULL)
			{
				st = moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating the validation parts");
				goto fail;
			}
		}
		/* first layers over sparse tables, when they are sparse enough */
		t->density[0] = moe_density(data->drug_vec, data->n_drugs, data->drug_dim);
		t->density[1] = moe_density(data->protein_vec, data->n_proteins, data->protein_dim);
		for (int i = 0; i < 2; i++)
			if (use_sparse(opt, t->density[i]) &&
				((st = moe_sparse_table_build(i == 0 ? data->drug_vec : data->protein_vec,
											  i == 0 ? data->n_drugs : data->n_proteins,
											  i == 0 ? data->drug_dim : data->protein_dim,
											  &t->sparse[i], err)) != MOE_OK ||
				 (st = moe_workspace_use_sparse(t->model, t->ws, i, &t->sparse[i], err)) != MOE_OK))
				goto fail;
	}

	np = t->model->layout.n_params;
	t->grads = be->alloc(be, sizeof(float) * np);
	t->adam_m = be->alloc(be, sizeof(float) * np);
	t->adam_v = be->alloc(be, sizeof(float) * np);
	t->best_params = malloc(sizeof(float) * np);
	t->label_std_host = malloc(sizeof(float) * data->train.n);
	t->batch_target = be->alloc(be, sizeof(float) * opt->batch_size);
	t->batch_target_host = malloc(sizeof(float) * opt->batch_size);
	t->batch_drug = malloc(sizeof(int32_t) * opt->batch_size);
	t->batch_protein = malloc(sizeof(int32_t) * opt->batch_size);
	t->order = malloc(sizeof(uint32_t) * data->train.n);
	t->val_pred = malloc(sizeof(float) * (data->valid.n > 0 ? data->valid.n : 1));
	t->select_bias = calloc(cfg.n_experts, sizeof(float));
	t->gate_probs = malloc(sizeof(float) * opt->batch_size * cfg.n_experts);
	t->assign_target = malloc(sizeof(float) * opt->batch_size * cfg.n_experts);
	t->assign_work = malloc(sizeof(double) * opt->batch_size * cfg.n_experts);
	if (opt->ema_decay > 0.0f)
	{
		t->ema = be->alloc(be, sizeof(float) * np);
		t->spare = be->alloc(be, sizeof(float) * np);
		if (t->ema == NULL || t->spare == NULL)
		{
			st = moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating the weight average (%zu parameters)",
						  np);
			goto fail;
		}
		be->copy(be, t->ema, t->model->params, sizeof(float) * np);
	}
	if (!t->grads || !t->adam_m || !t->adam_v || !t->best_params || !t->label_std_host ||
		!t->batch_target || !t->batch_target_host || !t->batch_drug || !t->batch_protein ||
		!t->order || !t->val_pred || !t->select_bias || !t->gate_probs || !t->assign_target ||
		!t->assign_work)
	{
		st = moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating the optimiser state (%zu parameters)",
					  np);
		goto fail;
	}
	for (int i = 0; i < data->train.n; i++)
	{
		t->label_std_host[i] = (data->train.label[i] - cfg.label_mean) / cfg.label_std;
		t->order[i] = (uint32_t) i;
	}
	t->steps_per_epoch = (data->train.n + opt->batch_size - 1) / opt->batch_size;
	t->total_steps = (int64_t) opt->epochs * t->steps_per_epoch;
	t->start_temperature = cfg.temperature;
	t->best_temperature = cfg.temperature;
	t->adaptive_scale = 1.0;
	t->lb_scale = 1.0;
	for (int i = 0; i < opt->n_balance; i++)
		if (opt->balance[i].method == MOE_LB_AUX_FREE)
			t->aux_free_rate = opt->balance[i].weight;
	be->download(be, t->best_params, t->model->params, sizeof(float) * np);

	free(dshift);
	free(dscale);
	free(pshift);
	free(pscale);
	*out = t;
	return MOE_OK;

fail:
	free(dshift);
	free(dscale);
	free(pshift);
	free(pscale);
	moe_trainer_free(t);
	return st;
}

void
moe_trainer_free(moe_trainer *t)
{
	moe_backend *be;

	if (t == NULL)
		return;
	be = t->be;
	if (t->model != NULL)
	{
		moe_workspace_free(t->model, t->ws);
		moe_infer_ws_free(t->model, t->eval_ws);
		be->release(be, t->val_drug_parts);
		be->release(be, t->val_protein_parts);
	}
	be->release(be, t->owned_drug_table);
	be->release(be, t->owned_protein_table);
	be->release(be, t->grads);
	be->release(be, t->adam_m);
	be->release(be, t->adam_v);
	be->release(be, t->ema);
	be->release(be, t->spare);
	be->release(be, t->batch_target);
	free(t->best_params);
	free(t->label_std_host);
	free(t->batch_target_host);
	free(t->batch_drug);
	free(t->batch_protein);
	free(t->order);
	free(t->val_pred);
	free(t->select_bias);
	free(t->gate_probs);
	free(t->assign_target);
	free(t->assign_work);
	moe_model_free(t->model);
	moe_sparse_table_free(&t->sparse[0]);
	moe_sparse_table_free(&t->sparse[1]);
	free(t);
}

bool
moe_trainer_done(const moe_trainer *t)
{
	return t->epoch >= t->opt.epochs || t->stopped_early;
}

/* The learning rate of the current step (t->step counts from 0). */
static float
learning_rate(const moe_trainer *t)
{
	const moe_train_options *o = &t->opt;
	int64_t		warm = (int64_t) o->lr_warmup_epochs * t->steps_per_epoch;
	int64_t		span = t->total_steps - warm;
	double		p;

	if (t->step < warm)
		return (float) (o->lr * (double) (t->step + 1) / (double) warm);
	p = span > 0 ? (double) (t->step - warm) / (double) span : 1.0;
	if (p > 1.0)
		p = 1.0;
	switch (o->lr_schedule)
	{
		case MOE_LR_COSINE:
			return (float) (o->lr_min + 0.5 * (o->lr - o->lr_min) * (1.0 + cos(M_PI * p)));
		case MOE_LR_LINEAR:
			return (float) (o->lr + (o->lr_min - o->lr) * p);
		case MOE_LR_STEP:
			return (float) (o->lr * pow(o->lr_gamma,
										(double) ((t->step / t->steps_per_epoch) / o->lr_step_epochs)));
		case MOE_LR_CONSTANT_LINEAR:
			if (p <= o->lr_decay_start)
				return o->lr;
			return (float) (o->lr + (o->lr_min - o->lr) * (p - o->lr_decay_start) /
							(1.0 - o->lr_decay_start));
		case MOE_LR_CONSTANT:
		case MOE_LR_WARMUP:
		default:
			return o->lr;
	}
}

/* Router temperature of epoch e0 (0-based). */
static float
epoch_temperature(const moe_trainer *t, int e0)
{
	const moe_train_options *o = &t->opt;
	double		t0 = t->start_temperature,
				t1 = isnan(o->temperature_end) ? t0 : o->temperature_end,
				last = o->epochs > 1 ? o->epochs - 1 : 1,
				p = e0 / last;

	switch (o->temperature_schedule)
	{
		case MOE_TS_LINEAR:
			return (float) (t0 + (t1 - t0) * p);
		case MOE_TS_COSINE:
			return (float) (t1 + (t0 - t1) * 0.5 * (1.0 + cos(M_PI * p)));
		case MOE_TS_EXPONENTIAL:
			return (float) (t0 * pow(t1 / t0, p));
		case MOE_TS_STEP:
			{
				int			steps = (o->epochs - 1) / o->temperature_step_epochs;
				int			k = e0 / o->temperature_step_epochs;

				return steps > 0 ? (float) (t0 * pow(t1 / t0, (double) (k < steps ? k : steps) / steps))
					: (float) t0;
			}
		case MOE_TS_CONSTANT:
		default:
			return (float) t0;
	}
}

/* The balancing schedule's multiplier for epoch e (1-based). */
static double
balance_scale(const moe_trainer *t, int e)
{
	const moe_train_options *o = &t->opt;
	double		ramp = (double) (e - 1) / o->lb_warmup_epochs;

	if (ramp > 1.0)
		ramp = 1.0;
	switch (o->lb_schedule)
	{
		case MOE_LBS_WARMUP:
			return e >= o->lb_warmup_epochs ? 1.0 : (double) e / o->lb_warmup_epochs;
		case MOE_LBS_INTERPOLATE:
			return o->lb_min_scale + (1.0 - o->lb_min_scale) * ramp;
		case MOE_LBS_ADAPTIVE:
			return t->adaptive_scale;
		case MOE_LBS_CONSTANT:
		default:
			return 1.0;
	}
}

/* A different dropout key for every step, derived from the seed. */
static uint64_t
step_key(const moe_trainer *t)
{
	uint64_t	z = t->opt.seed * 0x9e3779b97f4a7c15ULL + (uint64_t) t->step;

	z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdULL;
	return z ^ (z >> 33);
}

static void
clip_gradients(moe_trainer *t, float *g, size_t n)
{
	double		norm = sqrt(t->be->sum_squares(t->be, g, n));

	if (t->opt.grad_clip > 0.0f && norm > t->opt.grad_clip)
		t->be->scale(t->be, g, n, (float) (t->opt.grad_clip / norm));
}

/*
 * The auxiliary terms of one batch: fills the router gradient, adds every
 * method's unweighted value to the report sums, returns the weighted sum.
 */
static double
auxiliary_terms(moe_trainer *t, const moe_workspace *ws, const float *frac, int M,
				moe_router_grad *router, float *d_pbar, double *value_sum)
{
	const int	E = t->model->cfg.n_experts;
	float		dP[MOE_MAX_EXPERTS];
	double		value[MOE_LB_N_METHODS] = {0},
				weighted = 0.0;
	float		sinkhorn_weight = 0.0f;
	bool		any_pbar = false;

	for (int m = MOE_LB_ENTROPY; m < MOE_LB_N_METHODS; m++)
		if (moe_lb_uses_pbar((moe_lb_method) m))
			value[m] = moe_balance_loss((moe_lb_method) m, ws->host_pbar, frac, E, NULL);
	value[MOE_LB_ZLOSS] = ws->zloss;
	value[MOE_LB_ROUTER_ENTROPY] = -ws->row_entropy;
	t->be->download(t->be, t->gate_probs, ws->probs, sizeof(float) * M * E);
	value[MOE_LB_SINKHORN] = moe_balanced_assignment(t->gate_probs, M, E, t->assign_target,
													 t->assign_work);

	memset(router, 0, sizeof(*router));
	for (int e = 0; e < E; e++)
		d_pbar[e] = 0.0f;
	for (int i = 0; i < t->opt.n_balance; i++)
	{
		moe_lb_method m = t->opt.balance[i].method;
		float		w = (float) (t->opt.balance[i].weight * t->lb_scale);

		if (m == MOE_LB_AUX_FREE)
			continue;			/* a bias update, not a loss */
		weighted += w * value[m];
		if (moe_lb_uses_pbar(m))
		{
			moe_balance_loss(m, ws->host_pbar, frac, E, dP);
			for (int e = 0; e < E; e++)
				d_pbar[e] += w * dP[e];
			any_pbar = true;
		}
		else if (m == MOE_LB_ZLOSS)
			router->zloss_weight += w;
		else if (m == MOE_LB_ROUTER_ENTROPY)
			router->row_entropy_weight += w;
		else if (m == MOE_LB_SINKHORN)
			sinkhorn_weight += w;
	}
	if (sinkhorn_weight != 0.0f)
	{
		/* d/dz of the mean cross-entropy to the assignment: (p - q) / (M T) */
		float		scale = sinkhorn_weight / (M * t->model->cfg.temperature);

		for (size_t i = 0; i < (size_t) M * E; i++)
			t->assign_target[i] = scale * (t->gate_probs[i] - t->assign_target[i]);
		router->d_logits_extra = t->assign_target;
	}
	router->d_pbar = any_pbar ? d_pbar : NULL;
	for (int m = 0; m < MOE_LB_N_METHODS; m++)
		value_sum[m] += value[m] * M;
	return weighted;
}

/* DeepSeek-V3's aux-loss-free balancing: nudge each expert's selection
 * bias towards the mean load, b_i += gamma * sign(mean load - load_i). */
static void
update_selection_bias(moe_trainer *t, const float *frac)
{
	const int	E = t->model->cfg.n_experts;
	const float mean = 1.0f / E;

	for (int e = 0; e < E; e++)
		t->select_bias[e] += t->aux_free_rate * (float) ((frac[e] < mean) - (frac[e] > mean));
	t->be->upload(t->be, t->model->params + t->model->layout.select_bias, t->select_bias,
				  sizeof(float) * E);
}

/*
 * ema = d ema + (1 - d) params over the trainable parameters, with the
 * usual warm-up d = min(decay, (1 + step) / (10 + step)) so that the early
 * average is not dominated by the initial weights.
 */
static void
update_weight_average(moe_trainer *t, size_t off, size_t n)
{
	moe_backend *be = t->be;
	float		d = (float) (1 + t->step) / (float) (10 + t->step);

	if (d > t->opt.ema_decay)
		d = t->opt.ema_decay;
	be->scale(be, t->ema + off, n, d);
	be->copy(be, t->spare + off, t->model->params + off, sizeof(float) * n);
	be->scale(be, t->spare + off, n, 1.0f - d);
	be->add(be, t->ema + off, t->spare + off, n);
}

/* Swap the model's weights with their average (ema_decay > 0): validation
 * and the kept checkpoint use the average; training goes on with its own. */
static void
swap_in_average(moe_trainer *t, bool in)
{
	size_t		bytes = sizeof(float) * t->model->layout.n_params;
	size_t		off = t->model->layout.trainable_offset;
	size_t		tb = sizeof(float) * (t->model->layout.n_params - off);

	if (in)
	{
		t->be->copy(t->be, t->spare, t->model->params, bytes);
		t->be->copy(t->be, t->model->params + off, t->ema + off, tb);
	}
	else
		t->be->copy(t->be, t->model->params, t->spare, bytes);
}

/* One optimiser step on rows order[from .. from + M). Adds to the report. */
static moe_status
train_step(moe_trainer *t, int from, int M, moe_epoch_report *rep, double *sum_obj,
		   double *sum_mse, double *sum_aux, moe_error *err)
{
	moe_backend *be = t->be;
	moe_model  *model = t->model;
	moe_workspace *ws = t->ws;
	const moe_config *c = &model->cfg;
	const int	E = c->n_experts,
				k = c->top_k;
	size_t		off = model->layout.trainable_offset,
				n = model->layout.n_params - off;
	float		d_pbar[MOE_MAX_EXPERTS],
				frac[MOE_MAX_EXPERTS];
	int64_t		count[MOE_MAX_EXPERTS] = {0};
	moe_router_grad router;
	double		mse,
				aux;
	moe_status	st;
	float		lr;

	for (int i = 0; i < M; i++)
	{
		uint32_t	r = t->order[from + i];

		t->batch_drug[i] = t->data.train.drug_idx[r];
		t->batch_protein[i] = t->data.train.protein_idx[r];
		t->batch_target_host[i] = t->label_std_host[r];
	}
	be->upload(be, t->batch_target, t->batch_target_host, sizeof(float) * M);

	st = moe_forward(model, ws, t->drug_table, t->protein_table, t->batch_drug, t->batch_protein,
					 M, step_key(t), err);
	if (st != MOE_OK)
		return st;
	mse = be->mse_forward_backward(be, ws->d_pred, ws->pred, t->batch_target, M);

	for (int i = 0; i < M * k; i++)
		count[ws->host_sel_idx[i]]++;
	for (int e = 0; e < E; e++)
		frac[e] = (float) count[e] / (float) (M * k);
	aux = auxiliary_terms(t, ws, frac, M, &router, d_pbar, rep->aux_value);

	st = moe_backward(model, ws, t->grads, ws->d_pred, &router, err);
	if (st != MOE_OK)
		return st;
	if (t->opt.grad_clip > 0.0f)
		clip_gradients(t, t->grads + off, n);

	lr = learning_rate(t);
	t->step++;
	be->adam_update(be, model->params + off, t->grads + off, t->adam_m + off, t->adam_v + off, n,
					lr, 0.9f, 0.999f, 1e-8f, t->opt.weight_decay, t->step);
	if (t->aux_free_rate > 0.0f)
		update_selection_bias(t, frac);
	if (t->ema != NULL)
		update_weight_average(t, off, n);
	if ((st = be->check(be, err)) != MOE_OK)
		return st;
	if (!isfinite(mse) || !isfinite(aux))
		return moe_fail(err, MOE_ERR_DATA,
						"training diverged at epoch %d (loss is not finite); try a smaller lr",
						t->epoch + 1);

	*sum_obj += (mse + aux) * M;
	*sum_mse += mse * M;
	*sum_aux += aux * M;
	rep->lr = lr;
	for (int e = 0; e < E; e++)
	{
		rep->expert_prob[e] += (double) ws->host_pbar[e] * M;
		rep->expert_count[e] += count[e];
	}
	for (int i = 0; i < M; i++)
		rep->expert_leads[ws->host_sel_idx[i * k]]++;	/* selections are best first */
	return MOE_OK;
}

static double
validation_mse(moe_trainer *t, moe_error *err, moe_status *st)
{
	const moe_rows *v = &t->data.valid;
	double		sum = 0.0;

	if (t->val_drug_parts != NULL)
		*st = moe_predict_rows_whole(t->model, t->eval_ws, t->drug_table, t->data.n_drugs,
									 t->protein_table, t->data.n_proteins, v, t->val_drug_parts,
									 t->val_protein_parts, t->val_pred, err);
	else
		*st = moe_predict_rows(t->model, t->eval_ws, t->drug_table, t->protein_table, v, t->val_pred, err);
	if (*st != MOE_OK)
		return NAN;
	for (int i = 0; i < v->n; i++)
	{
		double		d = (double) t->val_pred[i] - v->label[i];

		sum += d * d;
	}
	return sum / v->n;
}

moe_status
moe_trainer_epoch(moe_trainer *t, moe_epoch_report *rep, moe_error *err)
{
	const int	N = t->data.train.n,
				B = t->opt.batch_size,
				E = t->model->cfg.n_experts;
	const double std2 = (double) t->model->cfg.label_std * t->model->cfg.label_std;
	double		start = now_seconds(),
				sum_obj = 0.0,
				sum_mse = 0.0,
				sum_aux = 0.0;
	moe_status	st;

	memset(rep, 0, sizeof(*rep));
	if (moe_trainer_done(t))
		return moe_fail(err, MOE_ERR_INVALID, "training is already finished");
	rep->n_experts = E;
	/* this epoch's temperature and balancing scale */
	t->model->cfg.temperature = epoch_temperature(t, t->epoch);
	t->lb_scale = balance_scale(t, t->epoch + 1);
	rep->temperature = t->model->cfg.temperature;
	rep->lb_scale = t->lb_scale;

	moe_rng_shuffle_u32(&t->rng, t->order, N);
	for (int from = 0; from < N; from += B)
	{
		int			M = N - from < B ? N - from : B;

		if (t->interrupted != NULL && t->interrupted(t->ctx))
			return moe_fail(err, MOE_ERR_CANCELLED, "training was interrupted");
		if ((st = train_step(t, from, M, rep, &sum_obj, &sum_mse, &sum_aux, err)) != MOE_OK)
			return st;
	}
	t->epoch++;

	rep->epoch = t->epoch;
	rep->train_loss = sum_obj / N;
	rep->train_mse = sum_mse / N * std2;
	rep->aux_loss = sum_aux / N;
	for (int m = 0; m < MOE_LB_N_METHODS; m++)
		rep->aux_value[m] /= N;
	for (int e = 0; e < E; e++)
	{
		rep->expert_prob[e] /= N;
		rep->expert_bias[e] = t->select_bias[e];
	}

	if (t->ema != NULL)
		swap_in_average(t, true);
	if (t->data.valid.n > 0)
	{
		if (t->interrupted != NULL && t->interrupted(t->ctx))
		{
			if (t->ema != NULL)
				swap_in_average(t, false);
			return moe_fail(err, MOE_ERR_CANCELLED, "training was interrupted");
		}
		rep->val_mse = validation_mse(t, err, &st);
		if (st != MOE_OK)
		{
			/* training goes on with its own weights, not the average */
			if (t->ema != NULL)
				swap_in_average(t, false);
			return st;
		}
		rep->improved = rep->val_mse < t->best_val - t->opt.min_delta;
	}
	else
	{
		/* Without validation rows the latest epoch is the best one. */
		rep->val_mse = NAN;
		rep->improved = true;
	}

	if (rep->improved)
	{
		t->best_epoch = t->epoch;
		t->best_temperature = t->model->cfg.temperature;
		if (t->data.valid.n > 0)
			t->best_val = rep->val_mse;
		t->since_best = 0;
		if (t->opt.lb_schedule == MOE_LBS_ADAPTIVE)
		{
			t->adaptive_scale *= t->opt.lb_decay;
			if (t->adaptive_scale < t->opt.lb_min_scale)
				t->adaptive_scale = t->opt.lb_min_scale;
		}
		t->be->download(t->be, t->best_params, t->model->params,
						sizeof(float) * t->model->layout.n_params);
	}
	else if (++t->since_best >= t->opt.patience && t->opt.patience > 0)
		t->stopped_early = true;
	if (t->ema != NULL)
		swap_in_average(t, false);

	rep->best_epoch = t->best_epoch;
	rep->best_val_mse = t->data.valid.n > 0 ? t->best_val : NAN;
	rep->seconds = now_seconds() - start;
	return t->be->check(t->be, err);
}

moe_model *
moe_trainer_best_model(moe_trainer *t)
{
	t->be->upload(t->be, t->model->params, t->best_params,
				  sizeof(float) * t->model->layout.n_params);
	t->model->cfg.temperature = t->best_temperature;
	return t->model;
}
