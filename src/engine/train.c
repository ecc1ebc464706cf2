/*
 * train.c — the training loop (see train.h).
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"

static const char *const lr_names[] = {"constant", "cosine"};

const char *
moe_lr_schedule_name(moe_lr_schedule s)
{
	if ((int) s < 0 || (size_t) s >= sizeof(lr_names) / sizeof(lr_names[0]))
		return "unknown";
	return lr_names[s];
}

moe_status
moe_lr_schedule_parse(const char *name, moe_lr_schedule *out, moe_error *err)
{
	for (size_t i = 0; i < sizeof(lr_names) / sizeof(lr_names[0]); i++)
		if (strcmp(name, lr_names[i]) == 0)
		{
			*out = (moe_lr_schedule) i;
			return MOE_OK;
		}
	return moe_fail(err, MOE_ERR_INVALID, "unknown learning-rate schedule \"%s\" (valid: %s)",
					name, MOE_LR_CHOICES);
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
	opt->weight_decay = 0.0f;
	opt->grad_clip = 0.0f;
	opt->lb_method = MOE_LB_ENTROPY;
	opt->lb_weight = 1e-3f;
	opt->patience = 10;
	opt->min_delta = 0.0f;
	opt->seed = 42;
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
	if (!(o->lr_min >= 0.0f) || o->lr_min > o->lr)
		return moe_fail(err, MOE_ERR_INVALID, "lr_min must be between 0 and lr (%g), not %g",
						(double) o->lr, (double) o->lr_min);
	if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay))
		return moe_fail(err, MOE_ERR_INVALID, "weight_decay must be a non-negative number, not %g",
						(double) o->weight_decay);
	if (!(o->grad_clip >= 0.0f) || !isfinite(o->grad_clip))
		return moe_fail(err, MOE_ERR_INVALID, "grad_clip must be a non-negative number, not %g",
						(double) o->grad_clip);
	if (!(o->lb_weight >= 0.0f) || !isfinite(o->lb_weight))
		return moe_fail(err, MOE_ERR_INVALID, "lb_weight must be a non-negative number, not %g",
						(double) o->lb_weight);
	if (o->patience < 0)
		return moe_fail(err, MOE_ERR_INVALID, "patience must be 0 (off) or positive, not %d",
						o->patience);
	if (!(o->min_delta >= 0.0f) || !isfinite(o->min_delta))
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
	moe_workspace *eval_ws;		/* inference workspace for validation */
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
	int			best_epoch;
	double		best_val;
	int			since_best;
	bool		stopped_early;
};

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
	moe_model_init(t->model, opt->seed);

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

		if ((st = moe_workspace_create(t->model, bs, true, &t->ws, err)) != MOE_OK ||
			(st = moe_workspace_create(t->model, opt->batch_size, false, &t->eval_ws, err)) != MOE_OK)
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
	if (!t->grads || !t->adam_m || !t->adam_v || !t->best_params || !t->label_std_host ||
		!t->batch_target || !t->batch_target_host || !t->batch_drug || !t->batch_protein ||
		!t->order || !t->val_pred)
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
	t->total_steps = (int64_t) opt->epochs * ((data->train.n + opt->batch_size - 1) / opt->batch_size);
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
		moe_workspace_free(t->model, t->eval_ws);
	}
	be->release(be, t->owned_drug_table);
	be->release(be, t->owned_protein_table);
	be->release(be, t->grads);
	be->release(be, t->adam_m);
	be->release(be, t->adam_v);
	be->release(be, t->batch_target);
	free(t->best_params);
	free(t->label_std_host);
	free(t->batch_target_host);
	free(t->batch_drug);
	free(t->batch_protein);
	free(t->order);
	free(t->val_pred);
	moe_model_free(t->model);
	free(t);
}

bool
moe_trainer_done(const moe_trainer *t)
{
	return t->epoch >= t->opt.epochs || t->stopped_early;
}

static float
learning_rate(const moe_trainer *t)
{
	const moe_train_options *o = &t->opt;

	if (o->lr_schedule == MOE_LR_COSINE && t->total_steps > 0)
	{
		double		progress = (double) t->step / (double) t->total_steps;

		if (progress > 1.0)
			progress = 1.0;
		return (float) (o->lr_min + 0.5 * (o->lr - o->lr_min) * (1.0 + cos(M_PI * progress)));
	}
	return o->lr;
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
					 M, true, step_key(t), err);
	if (st != MOE_OK)
		return st;
	mse = be->mse_forward_backward(be, ws->d_pred, ws->pred, t->batch_target, M);

	for (int i = 0; i < M * k; i++)
		count[ws->host_sel_idx[i]]++;
	for (int e = 0; e < E; e++)
		frac[e] = (float) count[e] / (float) (M * k);
	aux = moe_balance_loss(t->opt.lb_method, ws->host_pbar, frac, E, d_pbar);
	for (int e = 0; e < E; e++)
		d_pbar[e] *= t->opt.lb_weight;

	st = moe_backward(model, ws, t->grads, ws->d_pred,
					  t->opt.lb_method != MOE_LB_NONE ? d_pbar : NULL, err);
	if (st != MOE_OK)
		return st;
	if (t->opt.grad_clip > 0.0f)
		clip_gradients(t, t->grads + off, n);

	t->step++;
	lr = learning_rate(t);
	be->adam_update(be, model->params + off, t->grads + off, t->adam_m + off, t->adam_v + off, n,
					lr, 0.9f, 0.999f, 1e-8f, t->opt.weight_decay, t->step);
	if ((st = be->check(be, err)) != MOE_OK)
		return st;
	if (!isfinite(mse))
		return moe_fail(err, MOE_ERR_DATA,
						"training diverged at epoch %d (loss is not finite); try a smaller lr",
						t->epoch + 1);

	*sum_obj += (mse + t->opt.lb_weight * aux) * M;
	*sum_mse += mse * M;
	*sum_aux += aux * M;
	for (int e = 0; e < E; e++)
	{
		rep->expert_prob[e] += (double) ws->host_pbar[e] * M;
		rep->expert_count[e] += count[e];
	}
	return MOE_OK;
}

static double
validation_mse(moe_trainer *t, moe_error *err, moe_status *st)
{
	const moe_rows *v = &t->data.valid;
	double		sum = 0.0;

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
	rep->lr = learning_rate(t);
	for (int e = 0; e < E; e++)
		rep->expert_prob[e] /= N;

	if (t->data.valid.n > 0)
	{
		if (t->interrupted != NULL && t->interrupted(t->ctx))
			return moe_fail(err, MOE_ERR_CANCELLED, "training was interrupted");
		rep->val_mse = validation_mse(t, err, &st);
		if (st != MOE_OK)
			return st;
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
		if (t->data.valid.n > 0)
			t->best_val = rep->val_mse;
		t->since_best = 0;
		t->be->download(t->be, t->best_params, t->model->params,
						sizeof(float) * t->model->layout.n_params);
	}
	else if (++t->since_best >= t->opt.patience && t->opt.patience > 0)
		t->stopped_early = true;

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
	return t->model;
}

moe_status
moe_predict_rows(moe_model *model, moe_workspace *ws, const float *drug_table,
				 const float *protein_table, const moe_rows *rows, float *out, moe_error *err)
{
	moe_backend *be = model->be;
	const float mean = model->cfg.label_mean,
				std = model->cfg.label_std;

	for (int from = 0; from < rows->n; from += ws->max_rows)
	{
		int			M = rows->n - from < ws->max_rows ? rows->n - from : ws->max_rows;
		moe_status	st = moe_forward(model, ws, drug_table, protein_table, rows->drug_idx + from,
									 rows->protein_idx + from, M, false, 0, err);

		if (st != MOE_OK)
			return st;
		be->download(be, out + from, ws->pred, sizeof(float) * M);
		for (int i = 0; i < M; i++)
			out[from + i] = mean + std * out[from + i];
	}
	return MOE_OK;
}
