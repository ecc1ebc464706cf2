/*
 * model.c — layout of the parameter buffer and the forward/backward passes.
 * See model.h for the architecture and the shapes.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* ---- configuration ---------------------------------------------------- */

void
moe_config_defaults(moe_config *cfg, int drug_dim, int protein_dim)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->drug_dim = drug_dim;
	cfg->protein_dim = protein_dim;
	cfg->n_drug_layers = 1;
	cfg->drug_hidden[0] = 512;
	cfg->n_protein_layers = 1;
	cfg->protein_hidden[0] = 512;
	cfg->n_gate_layers = 2;
	cfg->gate_hidden[0] = 512;
	cfg->gate_hidden[1] = 256;
	cfg->n_expert_layers = 2;
	cfg->expert_hidden[0] = 512;
	cfg->expert_hidden[1] = 256;
	cfg->n_experts = 4;
	cfg->top_k = 2;
	cfg->temperature = 1.0f;
	cfg->dropout = 0.1f;
	cfg->label_mean = 0.0f;
	cfg->label_std = 1.0f;
}

static moe_status
validate_widths(const char *what, int n, const int32_t *w, int min_layers, moe_error *err)
{
	if (n < min_layers || n > MOE_MAX_LAYERS)
		return moe_fail(err, MOE_ERR_INVALID, "%s must have between %d and %d layers, not %d",
						what, min_layers, MOE_MAX_LAYERS, n);
	for (int i = 0; i < n; i++)
		if (w[i] < 1 || w[i] > MOE_MAX_WIDTH)
			return moe_fail(err, MOE_ERR_INVALID, "%s layer %d width must be between 1 and %d, not %d",
							what, i + 1, MOE_MAX_WIDTH, w[i]);
	return MOE_OK;
}

moe_status
moe_config_validate(const moe_config *cfg, moe_error *err)
{
	moe_status	st;

	if (cfg->drug_dim < 1 || cfg->drug_dim > MOE_MAX_INPUT_DIM)
		return moe_fail(err, MOE_ERR_INVALID, "drug vector length must be between 1 and %d, not %d",
						MOE_MAX_INPUT_DIM, cfg->drug_dim);
	if (cfg->protein_dim < 1 || cfg->protein_dim > MOE_MAX_INPUT_DIM)
		return moe_fail(err, MOE_ERR_INVALID, "protein vector length must be between 1 and %d, not %d",
						MOE_MAX_INPUT_DIM, cfg->protein_dim);
	if ((st = validate_widths("drug encoder", cfg->n_drug_layers, cfg->drug_hidden, 1, err)) != MOE_OK ||
		(st = validate_widths("protein encoder", cfg->n_protein_layers, cfg->protein_hidden, 1, err)) != MOE_OK ||
		(st = validate_widths("gate", cfg->n_gate_layers, cfg->gate_hidden, 0, err)) != MOE_OK ||
		(st = validate_widths("expert", cfg->n_expert_layers, cfg->expert_hidden, 0, err)) != MOE_OK)
		return st;
	if (cfg->n_experts < 1 || cfg->n_experts > MOE_MAX_EXPERTS)
		return moe_fail(err, MOE_ERR_INVALID, "experts must be between 1 and %d, not %d",
						MOE_MAX_EXPERTS, cfg->n_experts);
	if (cfg->top_k < 1 || cfg->top_k > cfg->n_experts)
		return moe_fail(err, MOE_ERR_INVALID, "top_k must be between 1 and experts (%d), not %d",
						cfg->n_experts, cfg->top_k);
	if (cfg->noisy_gating != 0 && cfg->noisy_gating != 1)
		return moe_fail(err, MOE_ERR_INVALID, "noisy_gating must be 0 or 1, not %d", cfg->noisy_gating);
	if (!(cfg->temperature > 0.0f) || !isfinite(cfg->temperature))
		return moe_fail(err, MOE_ERR_INVALID, "temperature must be a positive number, not %g",
						(double) cfg->temperature);
	if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
		return moe_fail(err, MOE_ERR_INVALID, "dropout must be in [0, 1), not %g",
						(double) cfg->dropout);
	if (!isfinite(cfg->label_mean) || !(cfg->label_std > 0.0f) || !isfinite(cfg->label_std))
		return moe_fail(err, MOE_ERR_INVALID, "label standardisation (mean %g, std %g) is not usable",
						(double) cfg->label_mean, (double) cfg->label_std);
	return MOE_OK;
}

int
moe_config_rep_dim(const moe_config *cfg)
{
	return cfg->drug_hidden[cfg->n_drug_layers - 1] +
		cfg->protein_hidden[cfg->n_protein_layers - 1];
}

/* ---- layout ----------------------------------------------------------- */

typedef struct layout_builder
{
	moe_layout *layout;
	int			capacity;
	moe_error  *err;
	moe_status	status;
} layout_builder;

static size_t
add_tensor(layout_builder *lb, const char *name, int64_t d0, int64_t d1)
{
	moe_layout *l = lb->layout;
	moe_tensor_info *t;
	size_t		offset = l->n_params;

	if (lb->status != MOE_OK)
		return 0;
	if (l->n_tensors == lb->capacity)
	{
		int			cap = lb->capacity ? lb->capacity * 2 : 64;
		moe_tensor_info *grown = realloc(l->tensors, sizeof(moe_tensor_info) * cap);

		if (grown == NULL)
		{
			lb->status = moe_fail(lb->err, MOE_ERR_NOMEM, "out of memory building the tensor table");
			return 0;
		}
		l->tensors = grown;
		lb->capacity = cap;
	}
	t = &l->tensors[l->n_tensors++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->ndim = d1 > 0 ? 2 : 1;
	t->dims[0] = d0;
	t->dims[1] = d1 > 0 ? d1 : 0;
	t->numel = (size_t) d0 * (size_t) (d1 > 0 ? d1 : 1);
	t->offset = offset;
	l->n_params += t->numel;
	return offset;
}

static void
add_mlp(layout_builder *lb, moe_mlp_layout *mlp, const char *prefix, int in_dim,
		int n_blocks, const int32_t *widths, int head_out)
{
	char		name[MOE_TENSOR_NAME_LEN];
	int			in = in_dim;

	mlp->in_dim = in_dim;
	mlp->n_blocks = n_blocks;
	for (int i = 0; i < n_blocks; i++)
	{
		moe_block_layout *b = &mlp->block[i];

		b->in = in;
		b->out = widths[i];
		snprintf(name, sizeof(name), "%s.%d.weight", prefix, i);
		b->W = add_tensor(lb, name, b->out, b->in);
		snprintf(name, sizeof(name), "%s.%d.bias", prefix, i);
		b->b = add_tensor(lb, name, b->out, 0);
		snprintf(name, sizeof(name), "%s.%d.norm.weight", prefix, i);
		b->gamma = add_tensor(lb, name, b->out, 0);
		snprintf(name, sizeof(name), "%s.%d.norm.bias", prefix, i);
		b->beta = add_tensor(lb, name, b->out, 0);
		in = b->out;
	}
	mlp->has_head = head_out > 0;
	if (mlp->has_head)
	{
		snprintf(name, sizeof(name), "%s.head.weight", prefix);
		mlp->head_W = add_tensor(lb, name, head_out, in);
		snprintf(name, sizeof(name), "%s.head.bias", prefix);
		mlp->head_b = add_tensor(lb, name, head_out, 0);
		in = head_out;
	}
	mlp->out_dim = in;
}

moe_status
moe_layout_build(const moe_config *cfg, moe_layout *layout, moe_error *err)
{
	layout_builder lb = {layout, 0, err, MOE_OK};
	moe_status	st;
	int			rep;

	memset(layout, 0, sizeof(*layout));
	if ((st = moe_config_validate(cfg, err)) != MOE_OK)
		return st;
	rep = moe_config_rep_dim(cfg);

	layout->drug_shift = add_tensor(&lb, "input.drug.shift", cfg->drug_dim, 0);
	layout->drug_scale = add_tensor(&lb, "input.drug.scale", cfg->drug_dim, 0);
	layout->protein_shift = add_tensor(&lb, "input.protein.shift", cfg->protein_dim, 0);
	layout->protein_scale = add_tensor(&lb, "input.protein.scale", cfg->protein_dim, 0);
	layout->select_bias = add_tensor(&lb, "gate.select_bias", cfg->n_experts, 0);
	layout->trainable_offset = layout->n_params;

	add_mlp(&lb, &layout->drug, "drug", cfg->drug_dim, cfg->n_drug_layers, cfg->drug_hidden, 0);
	add_mlp(&lb, &layout->protein, "protein", cfg->protein_dim, cfg->n_protein_layers,
			cfg->protein_hidden, 0);
	add_mlp(&lb, &layout->gate, "gate", rep, cfg->n_gate_layers, cfg->gate_hidden, cfg->n_experts);
	layout->has_noise = cfg->noisy_gating == 1;
	if (layout->has_noise)
	{
		int			last = cfg->n_gate_layers > 0 ? cfg->gate_hidden[cfg->n_gate_layers - 1] : rep;

		layout->noise_W = add_tensor(&lb, "gate.noise.weight", cfg->n_experts, last);
		layout->noise_b = add_tensor(&lb, "gate.noise.bias", cfg->n_experts, 0);
	}
	for (int e = 0; e < cfg->n_experts; e++)
	{
		char		prefix[24];

		snprintf(prefix, sizeof(prefix), "expert.%d", e);
		add_mlp(&lb, &layout->expert[e], prefix, rep, cfg->n_expert_layers, cfg->expert_hidden, 1);
	}
	if (lb.status != MOE_OK)
		moe_layout_free(layout);
	return lb.status;
}

void
moe_layout_free(moe_layout *layout)
{
	free(layout->tensors);
	layout->tensors = NULL;
	layout->n_tensors = 0;
}

/* ---- model ------------------------------------------------------------ */

static moe_status
model_new(const moe_config *cfg, moe_backend *be, moe_model **out, moe_error *err)
{
	moe_model  *m = calloc(1, sizeof(moe_model));
	moe_status	st;

	*out = NULL;
	if (m == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating a model");
	m->cfg = *cfg;
	m->be = be;
	if ((st = moe_layout_build(cfg, &m->layout, err)) != MOE_OK)
	{
		free(m);
		return st;
	}
	*out = m;
	return MOE_OK;
}

moe_status
moe_model_create(const moe_config *cfg, moe_backend *be, moe_model **out, moe_error *err)
{
	moe_model  *m;
	moe_status	st = model_new(cfg, be, &m, err);

	if (st != MOE_OK)
		return st;
	m->params = be->alloc(be, sizeof(float) * m->layout.n_params);
	if (m->params == NULL)
	{
		size_t		n = m->layout.n_params;

		moe_layout_free(&m->layout);
		free(m);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating %zu model parameters", n);
	}
	m->owns_params = true;
	*out = m;
	return MOE_OK;
}

moe_status
moe_model_wrap(const moe_config *cfg, moe_backend *be, float *params, moe_model **out,
			   moe_error *err)
{
	moe_status	st = model_new(cfg, be, out, err);

	if (st == MOE_OK)
		(*out)->params = params;
	return st;
}

void
moe_model_free(moe_model *model)
{
	if (model == NULL)
		return;
	if (model->owns_params && model->params != NULL)
		model->be->release(model->be, model->params);
	free(model->owned_row_panels);
	moe_layout_free(&model->layout);
	free(model);
}

/* Width of the gate's last hidden layer (the input of its heads). */
static int
gate_last_width(const moe_layout *l)
{
	return l->gate.n_blocks > 0 ? l->gate.block[l->gate.n_blocks - 1].out : l->gate.in_dim;
}

static void
init_uniform(float *dst, size_t n, float bound, moe_rng *rng)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (2.0f * moe_rng_uniform(rng) - 1.0f) * bound;
}

static void
init_mlp(float *p, const moe_mlp_layout *mlp, moe_rng *rng)
{
	for (int i = 0; i < mlp->n_blocks; i++)
	{
		const moe_block_layout *b = &mlp->block[i];
		float		bound = 1.0f / sqrtf((float) b->in);

		init_uniform(p + b->W, (size_t) b->out * b->in, bound, rng);
		init_uniform(p + b->b, b->out, bound, rng);
		for (int j = 0; j < b->out; j++)
		{
			p[b->gamma + j] = 1.0f;
			p[b->beta + j] = 0.0f;
		}
	}
	if (mlp->has_head)
	{
		int			in = mlp->n_blocks > 0 ? mlp->block[mlp->n_blocks - 1].out : mlp->in_dim;
		float		bound = 1.0f / sqrtf((float) in);

		init_uniform(p + mlp->head_W, (size_t) mlp->out_dim * in, bound, rng);
		init_uniform(p + mlp->head_b, mlp->out_dim, bound, rng);
	}
}

moe_status
moe_model_init(moe_model *model, uint64_t seed, moe_error *err)
{
	const moe_layout *l = &model->layout;
	const moe_config *c = &model->cfg;
	float	   *p = malloc(sizeof(float) * l->n_params);
	moe_rng		rng;

	if (p == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory initialising %zu model parameters",
						l->n_params);
	memset(p, 0, sizeof(float) * l->n_params);
	moe_rng_seed(&rng, seed);
	for (int j = 0; j < c->drug_dim; j++)
		p[l->drug_scale + j] = 1.0f;
	for (int j = 0; j < c->protein_dim; j++)
		p[l->protein_scale + j] = 1.0f;
	init_mlp(p, &l->drug, &rng);
	init_mlp(p, &l->protein, &rng);
	init_mlp(p, &l->gate, &rng);
	for (int e = 0; e < c->n_experts; e++)
		init_mlp(p, &l->expert[e], &rng);
	if (l->has_noise)
	{
		int			in = gate_last_width(l);
		float		bound = 1.0f / sqrtf((float) in);

		init_uniform(p + l->noise_W, (size_t) c->n_experts * in, bound, &rng);
		init_uniform(p + l->noise_b, c->n_experts, bound, &rng);
	}
	model->be->upload(model->be, model->params, p, sizeof(float) * l->n_params);
	free(p);
	return MOE_OK;
}

void
moe_model_set_input_norm(moe_model *model, const float *drug_shift, const float *drug_scale,
						 const float *protein_shift, const float *protein_scale)
{
	moe_backend *be = model->be;
	const moe_layout *l = &model->layout;

	be->upload(be, model->params + l->drug_shift, drug_shift, sizeof(float) * model->cfg.drug_dim);
	be->upload(be, model->params + l->drug_scale, drug_scale, sizeof(float) * model->cfg.drug_dim);
	be->upload(be, model->params + l->protein_shift, protein_shift,
			   sizeof(float) * model->cfg.protein_dim);
	be->upload(be, model->params + l->protein_scale, protein_scale,
			   sizeof(float) * model->cfg.protein_dim);
}

/* ---- workspace -------------------------------------------------------- */

/* Allocates, or only counts the bytes it would allocate (count_only). */
typedef struct ws_alloc
{
	moe_backend *be;
	bool		failed;
	bool		count_only;
	size_t		bytes;
} ws_alloc;

static void *
ws_backend(ws_alloc *a, size_t count, size_t elem)
{
	void	   *p;

	if (a->count_only)
	{
		a->bytes += count * elem;
		return NULL;
	}
	if (a->failed)
		return NULL;
	p = a->be->alloc(a->be, count * elem);
	if (p == NULL)
		a->failed = true;
	return p;
}

static void *
ws_host(ws_alloc *a, size_t count, size_t elem)
{
	void	   *p;

	if (a->count_only)
	{
		a->bytes += (count > 0 ? count : 1) * elem;
		return NULL;
	}
	if (a->failed)
		return NULL;
	p = calloc(count > 0 ? count : 1, elem);
	if (p == NULL)
		a->failed = true;
	return p;
}

static void
mlp_acts_alloc(ws_alloc *a, moe_mlp_acts *acts, const moe_mlp_layout *mlp, size_t rows)
{
	for (int i = 0; i < mlp->n_blocks; i++)
	{
		size_t		n = rows * mlp->block[i].out;
		moe_block_acts *b = &acts->block[i];

		b->pre = ws_backend(a, n, sizeof(float));
		b->mean = ws_backend(a, rows, sizeof(float));
		b->rstd = ws_backend(a, rows, sizeof(float));
		b->act = ws_backend(a, n, sizeof(float));
		b->mask = ws_backend(a, n, sizeof(float));
		b->out = ws_backend(a, n, sizeof(float));
	}
	if (mlp->has_head)
		acts->head = ws_backend(a, rows * mlp->out_dim, sizeof(float));
}

static void
mlp_acts_free(moe_backend *be, moe_mlp_acts *acts, const moe_mlp_layout *mlp)
{
	for (int i = 0; i < mlp->n_blocks; i++)
	{
		moe_block_acts *b = &acts->block[i];

		be->release(be, b->pre);
		be->release(be, b->mean);
		be->release(be, b->rstd);
		be->release(be, b->act);
		be->release(be, b->out);
		be->release(be, b->mask);
	}
	be->release(be, acts->head);
}

static int
mlp_max_width(const moe_mlp_layout *mlp)
{
	int			w = mlp->in_dim;

	for (int i = 0; i < mlp->n_blocks; i++)
		if (mlp->block[i].out > w)
			w = mlp->block[i].out;
	return mlp->out_dim > w ? mlp->out_dim : w;
}

/* Every buffer of a training workspace for max_rows rows, through a. */
static void
workspace_fill(const moe_model *model, int max_rows, moe_workspace *ws, ws_alloc *a_)
{
	const moe_config *c = &model->cfg;
	const moe_layout *l = &model->layout;
	ws_alloc	a = *a_;
	size_t		M = (size_t) max_rows,
				K = (size_t) c->top_k,
				E = (size_t) c->n_experts,
				R = (size_t) moe_config_rep_dim(c);
	size_t		width;

	ws->max_rows = max_rows;

	/* Encoders and gate see every row; experts see M*k rows in total. */
	width = (size_t) mlp_max_width(&l->gate);
	if ((size_t) mlp_max_width(&l->expert[0]) > width)
		width = mlp_max_width(&l->expert[0]);
	for (int i = 0; i < l->drug.n_blocks; i++)
		if ((size_t) l->drug.block[i].out > width)
			width = l->drug.block[i].out;
	for (int i = 0; i < l->protein.n_blocks; i++)
		if ((size_t) l->protein.block[i].out > width)
			width = l->protein.block[i].out;

	ws->drug_idx = ws_backend(&a, M, sizeof(int32_t));
	ws->protein_idx = ws_backend(&a, M, sizeof(int32_t));
	ws->x_drug = ws_backend(&a, M * c->drug_dim, sizeof(float));
	ws->x_protein = ws_backend(&a, M * c->protein_dim, sizeof(float));
	mlp_acts_alloc(&a, &ws->drug, &l->drug, M);
	mlp_acts_alloc(&a, &ws->protein, &l->protein, M);
	mlp_acts_alloc(&a, &ws->gate, &l->gate, M);
	mlp_acts_alloc(&a, &ws->experts, &l->expert[0], M * K);
	ws->rep = ws_backend(&a, M * R, sizeof(float));
	ws->probs = ws_backend(&a, M * E, sizeof(float));
	if (l->has_noise)
	{
		ws->noise_pre = ws_backend(&a, M * E, sizeof(float));
		ws->noise_eps = ws_backend(&a, M * E, sizeof(float));
		ws->noisy_logits = ws_backend(&a, M * E, sizeof(float));
		ws->d_noise_pre = ws_backend(&a, M * E, sizeof(float));
		ws->d_gate_last = ws_backend(&a, M * gate_last_width(l), sizeof(float));
	}
	ws->sel_idx = ws_backend(&a, M * K, sizeof(int32_t));
	ws->sel_w = ws_backend(&a, M * K, sizeof(float));
	ws->sel_y = ws_backend(&a, M * K, sizeof(float));
	ws->pred = ws_backend(&a, M, sizeof(float));
	ws->perm_pos = ws_backend(&a, M * K, sizeof(int32_t));
	ws->perm_row = ws_backend(&a, M * K, sizeof(int32_t));
	ws->x_expert = ws_backend(&a, M * K * R, sizeof(float));
	ws->host_sel_idx = ws_host(&a, M * K, sizeof(int32_t));
	ws->host_perm_pos = ws_host(&a, M * K, sizeof(int32_t));
	ws->host_perm_row = ws_host(&a, M * K, sizeof(int32_t));
	ws->pbar = ws_backend(&a, E, sizeof(float));
	ws->host_pbar = ws_host(&a, E, sizeof(float));
	{
		ws->d_pred = ws_backend(&a, M, sizeof(float));
		ws->d_sel_w = ws_backend(&a, M * K, sizeof(float));
		ws->d_sel_y = ws_backend(&a, M * K, sizeof(float));
		ws->d_y_expert = ws_backend(&a, M * K, sizeof(float));
		ws->d_x_expert = ws_backend(&a, M * K * R, sizeof(float));
		ws->d_rep = ws_backend(&a, M * R, sizeof(float));
		ws->d_probs = ws_backend(&a, M * E, sizeof(float));
		ws->d_logits = ws_backend(&a, M * E, sizeof(float));
		ws->d_drug = ws_backend(&a, M * l->drug.out_dim, sizeof(float));
		ws->d_protein = ws_backend(&a, M * l->protein.out_dim, sizeof(float));
		ws->scratch_a = ws_backend(&a, M * K * width, sizeof(float));
		ws->scratch_b = ws_backend(&a, M * K * width, sizeof(float));
	}
	*a_ = a;
}

size_t
moe_workspace_bytes(const moe_model *model, int max_rows)
{
	moe_workspace ws;
	ws_alloc	a = {model->be, false, true, sizeof(moe_workspace)};

	memset(&ws, 0, sizeof(ws));
	workspace_fill(model, max_rows > 0 ? max_rows : 1, &ws, &a);
	return a.bytes;
}

moe_status
moe_workspace_create(const moe_model *model, int max_rows, moe_workspace **out, moe_error *err)
{
	moe_workspace *ws;
	ws_alloc	a = {model->be, false, false, 0};

	*out = NULL;
	if (max_rows < 1)
		return moe_fail(err, MOE_ERR_INVALID, "batch size must be at least 1");
	ws = calloc(1, sizeof(moe_workspace));
	if (ws == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating a workspace");
	workspace_fill(model, max_rows, ws, &a);
	if (a.failed)
	{
		moe_workspace_free(model, ws);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating a workspace for %d rows",
						max_rows);
	}
	*out = ws;
	return MOE_OK;
}

/* ---- sparse first layers (sparse.h) ---------------------------------- */

static const moe_mlp_layout *
encoder_layout(const moe_layout *l, int encoder)
{
	return encoder == 0 ? &l->drug : &l->protein;
}

static void
sparse_first_free(moe_backend *be, moe_sparse_first *sf)
{
	if (sf->table == NULL && sf->Wt == NULL)
		return;
	moe_sparse_batch_free(&sf->batch);
	be->release(be, sf->col_ptr);
	be->release(be, sf->ent);
	be->release(be, sf->val);
	be->release(be, sf->local);
	be->release(be, sf->perm);
	be->release(be, sf->seg_ptr);
	be->release(be, sf->Wt);
	be->release(be, sf->dWt);
	be->release(be, sf->out);
	be->release(be, sf->d_out);
	be->release(be, sf->neg_shift_scale);
	be->release(be, sf->bias_eff);
	memset(sf, 0, sizeof(*sf));
}

size_t
moe_sparse_first_bytes(const moe_model *model, int encoder, int n_rows, int64_t widest,
					   int max_rows)
{
	const moe_mlp_layout *mlp = encoder_layout(&model->layout, encoder);
	size_t		K = (size_t) mlp->in_dim,
				N = (size_t) (mlp->n_blocks > 0 ? mlp->block[0].out : 0);
	size_t		nnz = (size_t) widest * (size_t) (max_rows < n_rows ? max_rows : n_rows);
	/* host and backend copies of the batch, the products' buffers */
	return 2 * (sizeof(int32_t) * (K + 1 + 3 * (size_t) max_rows + 1) + (sizeof(int32_t) + sizeof(float)) * nnz) +
		sizeof(int32_t) * ((size_t) n_rows + K + (size_t) max_rows) +
		sizeof(float) * (2 * K * N + 2 * (size_t) max_rows * N + K + N);
}

moe_status
moe_workspace_use_sparse(const moe_model *model, moe_workspace *ws, int encoder,
						 const moe_sparse_table *table, moe_error *err)
{
	moe_backend *be = model->be;
	const moe_layout *l = &model->layout;
	const moe_mlp_layout *mlp = encoder_layout(l, encoder);
	moe_sparse_first *sf = &ws->sparse[encoder];
	int			K = mlp->in_dim,
				N,
				M = ws->max_rows;
	moe_status	st;
	float	   *shift,
			   *scale;

	if (encoder < 0 || encoder > 1 || mlp->n_blocks < 1 || table->dim != K)
		return moe_fail(err, MOE_ERR_INVALID, "a sparse table of %d values does not fit encoder %d",
						table->dim, encoder);
	N = mlp->block[0].out;
	sparse_first_free(be, sf);
	if ((st = moe_sparse_batch_create(table, M, &sf->batch, err)) != MOE_OK)
		return st;
	sf->col_ptr = be->alloc(be, sizeof(int32_t) * ((size_t) K + 1));
	sf->ent = be->alloc(be, sizeof(int32_t) * (size_t) (sf->batch.max_nnz > 0 ? sf->batch.max_nnz : 1));
	sf->val = be->alloc(be, sizeof(float) * (size_t) (sf->batch.max_nnz > 0 ? sf->batch.max_nnz : 1));
	sf->local = be->alloc(be, sizeof(int32_t) * (size_t) M);
	sf->perm = be->alloc(be, sizeof(int32_t) * (size_t) M);
	sf->seg_ptr = be->alloc(be, sizeof(int32_t) * ((size_t) M + 1));
	sf->Wt = be->alloc(be, sizeof(float) * (size_t) K * N);
	sf->dWt = be->alloc(be, sizeof(float) * (size_t) K * N);
	sf->out = be->alloc(be, sizeof(float) * (size_t) M * N);
	sf->d_out = be->alloc(be, sizeof(float) * (size_t) M * N);
	sf->neg_shift_scale = be->alloc(be, sizeof(float) * (size_t) K);
	sf->bias_eff = be->alloc(be, sizeof(float) * (size_t) N);
	shift = malloc(sizeof(float) * (size_t) K);
	scale = malloc(sizeof(float) * (size_t) K);
	if (!sf->col_ptr || !sf->ent || !sf->val || !sf->local || !sf->perm || !sf->seg_ptr || !sf->Wt ||
		!sf->dWt || !sf->out || !sf->d_out || !sf->neg_shift_scale || !sf->bias_eff || !shift || !scale)
	{
		free(shift);
		free(scale);
		sparse_first_free(be, sf);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory for the sparse first layer of %d x %d", N, K);
	}
	/* -(shift * scale): the standardisation moves into the bias */
	be->download(be, shift, model->params + (encoder == 0 ? l->drug_shift : l->protein_shift),
				 sizeof(float) * K);
	be->download(be, scale, model->params + (encoder == 0 ? l->drug_scale : l->protein_scale),
				 sizeof(float) * K);
	for (int j = 0; j < K; j++)
		shift[j] = -(shift[j] * scale[j]);
	be->upload(be, sf->neg_shift_scale, shift, sizeof(float) * K);
	free(shift);
	free(scale);
	sf->table = table;
	return MOE_OK;
}

/*
 * The first block's Linear of an encoder on a sparse table for rows idx
 * (host): pre[M, N] = x diag(scale) W^T over each row's entity, plus
 * b - W (shift * scale).  Leaves the batch's structures for the backward.
 */
static void
sparse_first_forward(moe_backend *be, const float *p, const moe_layout *l, int encoder,
					 moe_sparse_first *sf, const int32_t *idx, int M, float *pre)
{
	const moe_mlp_layout *mlp = encoder_layout(l, encoder);
	const moe_block_layout *b0 = &mlp->block[0];
	moe_sparse_batch *b = &sf->batch;
	int			K = b0->in,
				N = b0->out;

	moe_sparse_batch_fill(b, sf->table, idx, M);
	be->upload(be, sf->col_ptr, b->col_ptr, sizeof(int32_t) * ((size_t) K + 1));
	be->upload(be, sf->ent, b->ent, sizeof(int32_t) * (size_t) b->nnz);
	be->upload(be, sf->val, b->val, sizeof(float) * (size_t) b->nnz);
	be->upload(be, sf->local, b->local, sizeof(int32_t) * (size_t) M);
	be->upload(be, sf->perm, b->perm, sizeof(int32_t) * (size_t) M);
	be->upload(be, sf->seg_ptr, b->seg_ptr, sizeof(int32_t) * ((size_t) b->distinct + 1));

	be->transpose_scaled(be, sf->Wt, p + b0->W, p + (encoder == 0 ? l->drug_scale : l->protein_scale),
						 N, K);
	be->sparse_linear_forward(be, sf->out, sf->Wt, sf->col_ptr, sf->ent, sf->val, b->distinct, N, K);
	be->linear_forward(be, sf->bias_eff, sf->neg_shift_scale, p + b0->W, p + b0->b, 1, N, K);
	be->gather_rows(be, pre, sf->out, sf->local, M, N, NULL, NULL);
	be->add_row_vector(be, pre, sf->bias_eff, 1.0f, M, N);
}

/*
 * Its backward, from d_pre[M, N]: the weight gradient as a sparse outer
 * product over the distinct entities plus the rank-one term of the
 * standardisation, and the bias gradient.
 */
static void
sparse_first_backward(moe_backend *be, const float *p, float *g, const moe_layout *l, int encoder,
					  moe_sparse_first *sf, const float *d_pre, int M)
{
	const moe_mlp_layout *mlp = encoder_layout(l, encoder);
	const moe_block_layout *b0 = &mlp->block[0];
	int			K = b0->in,
				N = b0->out,
				U = sf->batch.distinct;

	be->segment_sum_rows(be, sf->d_out, d_pre, sf->perm, sf->seg_ptr, U, N);
	be->column_mean(be, g + b0->b, d_pre, M, N);
	be->scale(be, g + b0->b, N, (float) M);
	be->sparse_linear_backward(be, sf->dWt, sf->d_out, sf->col_ptr, sf->ent, sf->val, N, K);
	be->transpose_scaled_back(be, g + b0->W, sf->dWt,
							  p + (encoder == 0 ? l->drug_scale : l->protein_scale),
							  p + (encoder == 0 ? l->drug_shift : l->protein_shift), g + b0->b, N, K);
}

void
moe_workspace_free(const moe_model *model, moe_workspace *ws)
{
	moe_backend *be = model->be;
	const moe_layout *l = &model->layout;

	if (ws == NULL)
		return;
	be->release(be, ws->drug_idx);
	be->release(be, ws->protein_idx);
	be->release(be, ws->x_drug);
	be->release(be, ws->x_protein);
	mlp_acts_free(be, &ws->drug, &l->drug);
	mlp_acts_free(be, &ws->protein, &l->protein);
	mlp_acts_free(be, &ws->gate, &l->gate);
	mlp_acts_free(be, &ws->experts, &l->expert[0]);
	be->release(be, ws->rep);
	be->release(be, ws->probs);
	be->release(be, ws->noise_pre);
	be->release(be, ws->noise_eps);
	be->release(be, ws->noisy_logits);
	be->release(be, ws->d_noise_pre);
	be->release(be, ws->d_gate_last);
	be->release(be, ws->sel_idx);
	be->release(be, ws->sel_w);
	be->release(be, ws->sel_y);
	be->release(be, ws->pred);
	be->release(be, ws->perm_pos);
	be->release(be, ws->perm_row);
	be->release(be, ws->x_expert);
	free(ws->host_sel_idx);
	free(ws->host_perm_pos);
	free(ws->host_perm_row);
	be->release(be, ws->pbar);
	free(ws->host_pbar);
	be->release(be, ws->d_pred);
	be->release(be, ws->d_sel_w);
	be->release(be, ws->d_sel_y);
	be->release(be, ws->d_y_expert);
	be->release(be, ws->d_x_expert);
	be->release(be, ws->d_rep);
	be->release(be, ws->d_probs);
	be->release(be, ws->d_logits);
	be->release(be, ws->d_drug);
	be->release(be, ws->d_protein);
	be->release(be, ws->scratch_a);
	be->release(be, ws->scratch_b);
	for (int i = 0; i < 2; i++)
		sparse_first_free(be, &ws->sparse[i]);
	free(ws);
}

/* ---- MLP forward and backward ---------------------------------------- */

/* Dropout keys differ per step (the caller's key), per MLP and per block. */
static uint64_t
block_key(uint64_t key, int mlp_id, int block)
{
	return key ^ ((uint64_t) (mlp_id + 1) << 40) ^ ((uint64_t) (block + 1) << 32);
}

/* Row r of buffer buf whose rows are width wide. */
#define ROWS(buf, r, width) ((buf) + (size_t) (r) * (size_t) (width))

/*
 * Training forward of one MLP over rows [off, off + M) of its activation
 * buffers; input is already offset.  Returns the output (block output or
 * head).  Every block's output is kept for the backward.
 */
static const float *
mlp_forward(moe_backend *be, const float *p, const moe_mlp_layout *mlp, moe_mlp_acts *acts,
			int off, const float *input, int M, float dropout, uint64_t key, int mlp_id,
			bool first_done)
{
	const float *x = input;

	for (int i = 0; i < mlp->n_blocks; i++)
	{
		const moe_block_layout *b = &mlp->block[i];
		moe_block_acts *a = &acts->block[i];
		float	   *pre = ROWS(a->pre, off, b->out);
		float	   *act = ROWS(a->act, off, b->out);
		size_t		n = (size_t) M * b->out;

		/* a sparse first layer has filled pre already */
		if (i > 0 || !first_done)
			be->linear_forward(be, pre, x, p + b->W, p + b->b, M, b->out, b->in);
		be->layernorm_forward(be, act, a->mean + off, a->rstd + off, pre,
							  p + b->gamma, p + b->beta, M, b->out);
		be->relu_forward(be, act, act, n);
		if (dropout > 0.0f)
		{
			float	   *o = ROWS(a->out, off, b->out);

			be->dropout_forward(be, o, ROWS(a->mask, off, b->out), act, n, dropout,
								block_key(key, mlp_id, i));
			x = o;
		}
		else
		{
			/* no dropout: the output buffer mirrors act for the backward */
			be->copy(be, ROWS(a->out, off, b->out), act, sizeof(float) * n);
			x = ROWS(a->out, off, b->out);
		}
	}
	if (mlp->has_head)
	{
		int			in = mlp->n_blocks > 0 ? mlp->block[mlp->n_blocks - 1].out : mlp->in_dim;
		float	   *h = ROWS(acts->head, off, mlp->out_dim);

		be->linear_forward(be, h, x, p + mlp->head_W, p + mlp->head_b, M, mlp->out_dim, in);
		x = h;
	}
	return x;
}

/* A sparse first layer's backward, for mlp_backward's first block. */
typedef struct sparse_first_grad
{
	const moe_layout *layout;
	int			encoder;
	moe_sparse_first *sf;
} sparse_first_grad;

/*
 * Backward of one MLP over rows [off, off + M).  d_out is the gradient of
 * the MLP's output and is clobbered; d_input (may be NULL) receives the
 * gradient of the input.  g is the gradient buffer (same layout as p).
 * With sparse (not NULL) the first block is a sparse first layer.
 */
static void
mlp_backward(moe_backend *be, const float *p, float *g, const moe_mlp_layout *mlp,
			 moe_mlp_acts *acts, int off, const float *input, float *d_out, float *d_input,
			 const float *d_extra, int M, bool dropout_on, float *scratch_a, float *scratch_b,
			 const sparse_first_grad *sparse)
{
	float	   *d = d_out;

	if (mlp->has_head)
	{
		int			nb = mlp->n_blocks;
		int			in = nb > 0 ? mlp->block[nb - 1].out : mlp->in_dim;
		const float *x_last = nb > 0 ? ROWS(acts->block[nb - 1].out, off, in) : input;
		float	   *dx = nb > 0 ? scratch_a : d_input;

		be->linear_backward(be, dx, g + mlp->head_W, g + mlp->head_b, d_out, x_last,
							p + mlp->head_W, M, mlp->out_dim, in);
		/* another head on the same layer (the noise head) adds its share */
		if (d_extra != NULL)
			be->add(be, dx, d_extra, (size_t) M * in);
		d = dx;
	}
	for (int i = mlp->n_blocks - 1; i >= 0; i--)
	{
		const moe_block_layout *b = &mlp->block[i];
		moe_block_acts *a = &acts->block[i];
		size_t		n = (size_t) M * b->out;
		float	   *d_pre = (d == scratch_b) ? scratch_a : scratch_b;
		float	   *dx;
		const float *x_in = i > 0 ? ROWS(acts->block[i - 1].out, off, b->in) : input;

		if (dropout_on)
			be->mul(be, d, d, ROWS(a->mask, off, b->out), n);
		be->relu_backward(be, d, d, ROWS(a->act, off, b->out), n);
		be->layernorm_backward(be, d_pre, g + b->gamma, g + b->beta, d, ROWS(a->pre, off, b->out),
							   a->mean + off, a->rstd + off, p + b->gamma, M, b->out);
		dx = i > 0 ? (d_pre == scratch_a ? scratch_b : scratch_a) : d_input;
		if (i == 0 && sparse != NULL)
			sparse_first_backward(be, p, g, sparse->layout, sparse->encoder, sparse->sf, d_pre, M);
		else
			be->linear_backward(be, dx, g + b->W, g + b->b, d_pre, x_in, p + b->W, M, b->out, b->in);
		d = dx;
	}
}

/* Gradients of an MLP that saw no rows this step are zero. */
static void
mlp_zero_grads(moe_backend *be, float *g, const moe_mlp_layout *mlp)
{
	for (int i = 0; i < mlp->n_blocks; i++)
	{
		const moe_block_layout *b = &mlp->block[i];

		be->fill(be, g + b->W, (size_t) b->out * b->in, 0.0f);
		be->fill(be, g + b->b, b->out, 0.0f);
		be->fill(be, g + b->gamma, b->out, 0.0f);
		be->fill(be, g + b->beta, b->out, 0.0f);
	}
	if (mlp->has_head)
	{
		int			in = mlp->n_blocks > 0 ? mlp->block[mlp->n_blocks - 1].out : mlp->in_dim;

		be->fill(be, g + mlp->head_W, (size_t) mlp->out_dim * in, 0.0f);
		be->fill(be, g + mlp->head_b, mlp->out_dim, 0.0f);
	}
}

/* ---- the whole model ------------------------------------------------- */

#define MLP_DRUG	0
#define MLP_PROTEIN 1
#define MLP_GATE	2
#define MLP_EXPERT	3			/* + expert index */

void
moe_sort_by_expert(const int32_t *sel, int M, int E, int k, int *offset, int32_t *perm_pos,
				   int32_t *perm_row)
{
	int			count[MOE_MAX_EXPERTS + 1] = {0};
	int			next[MOE_MAX_EXPERTS];

	for (int i = 0; i < M * k; i++)
		count[sel[i] + 1]++;
	for (int e = 0; e < E; e++)
		count[e + 1] += count[e];
	for (int e = 0; e <= E; e++)
		offset[e] = count[e];
	for (int e = 0; e < E; e++)
		next[e] = count[e];
	for (int i = 0; i < M * k; i++)
	{
		int			slot = next[sel[i]]++;

		perm_pos[slot] = i;
		perm_row[slot] = i / k;
	}
}

static void
sort_by_expert(moe_workspace *ws, int M, int E, int k)
{
	moe_sort_by_expert(ws->host_sel_idx, M, E, k, ws->expert_offset, ws->host_perm_pos,
					   ws->host_perm_row);
}

moe_status
moe_forward(moe_model *model, moe_workspace *ws, const float *drug_table,
			const float *protein_table, const int32_t *drug_idx, const int32_t *protein_idx,
			int M, uint64_t dropout_key, moe_error *err)
{
	moe_backend *be = model->be;
	const moe_config *c = &model->cfg;
	const moe_layout *l = &model->layout;
	const float *p = model->params;
	const int	E = c->n_experts,
				k = c->top_k,
				R = moe_config_rep_dim(c);
	const float *h_drug,
			   *h_protein,
			   *logits;
	float		dropout = c->dropout;

	if (M < 1 || M > ws->max_rows)
		return moe_fail(err, MOE_ERR_INVALID, "batch of %d rows does not fit a workspace of %d",
						M, ws->max_rows);
	ws->rows = M;

	be->upload(be, ws->drug_idx, drug_idx, sizeof(int32_t) * M);
	be->upload(be, ws->protein_idx, protein_idx, sizeof(int32_t) * M);
	/* each encoder's first layer: over its sparse table, or over the
	 * standardised dense rows */
	if (ws->sparse[0].table != NULL)
		sparse_first_forward(be, p, l, 0, &ws->sparse[0], drug_idx, M, ws->drug.block[0].pre);
	else
		be->gather_rows(be, ws->x_drug, drug_table, ws->drug_idx, M, c->drug_dim,
						p + l->drug_shift, p + l->drug_scale);
	if (ws->sparse[1].table != NULL)
		sparse_first_forward(be, p, l, 1, &ws->sparse[1], protein_idx, M, ws->protein.block[0].pre);
	else
		be->gather_rows(be, ws->x_protein, protein_table, ws->protein_idx, M, c->protein_dim,
						p + l->protein_shift, p + l->protein_scale);

	h_drug = mlp_forward(be, p, &l->drug, &ws->drug, 0, ws->x_drug, M, dropout, dropout_key,
						 MLP_DRUG, ws->sparse[0].table != NULL);
	h_protein = mlp_forward(be, p, &l->protein, &ws->protein, 0, ws->x_protein, M, dropout,
							dropout_key, MLP_PROTEIN, ws->sparse[1].table != NULL);
	be->concat_cols(be, ws->rep, h_drug, h_protein, M, l->drug.out_dim, l->protein.out_dim);

	logits = mlp_forward(be, p, &l->gate, &ws->gate, 0, ws->rep, M, dropout, dropout_key, MLP_GATE,
						 false);
	ws->logits = logits;
	if (l->has_noise)
	{
		/* Shazeer's noisy gating: logits + N(0,1) * softplus(noise head) */
		const float *h_last = l->gate.n_blocks > 0
			? ws->gate.block[l->gate.n_blocks - 1].out : ws->rep;

		be->linear_forward(be, ws->noise_pre, h_last, p + l->noise_W, p + l->noise_b, M, E,
						   gate_last_width(l));
		be->noisy_logits(be, ws->noisy_logits, ws->noise_eps, logits, ws->noise_pre,
						 (size_t) M * E, dropout_key ^ 0x6e6f697365ULL);
		logits = ws->noisy_logits;
	}
	be->softmax_forward(be, ws->probs, logits, M, E, c->temperature);
	be->topk_route(be, ws->sel_idx, ws->sel_w, ws->probs, p + l->select_bias, M, E, k);
	ws->zloss = be->zloss(be, NULL, ws->logits, M, E, 0.0f);
	ws->row_entropy = be->row_entropy(be, NULL, ws->probs, M, E, 0.0f);

	/* Route: sort selections by expert and run each expert on its slice. */
	be->download(be, ws->host_sel_idx, ws->sel_idx, sizeof(int32_t) * M * k);
	sort_by_expert(ws, M, E, k);
	be->upload(be, ws->perm_pos, ws->host_perm_pos, sizeof(int32_t) * M * k);
	be->upload(be, ws->perm_row, ws->host_perm_row, sizeof(int32_t) * M * k);
	be->gather_rows(be, ws->x_expert, ws->rep, ws->perm_row, M * k, R, NULL, NULL);
	for (int e = 0; e < E; e++)
	{
		int			off = ws->expert_offset[e];
		int			n = ws->expert_offset[e + 1] - off;

		if (n == 0)
			continue;
		mlp_forward(be, p, &l->expert[e], &ws->experts, off, ROWS(ws->x_expert, off, R), n,
					dropout, dropout_key, MLP_EXPERT + e, false);
	}
	/* experts.head holds one output per sorted selection */
	be->scatter(be, ws->sel_y, ws->experts.head, ws->perm_pos, M * k);
	be->combine_forward(be, ws->pred, ws->sel_w, ws->sel_y, M, k);

	be->column_mean(be, ws->pbar, ws->probs, M, E);
	be->download(be, ws->host_pbar, ws->pbar, sizeof(float) * E);
	return be->check(be, err);
}

moe_status
moe_backward(moe_model *model, moe_workspace *ws, float *grads, const float *d_pred,
			 const moe_router_grad *router, moe_error *err)
{
	moe_backend *be = model->be;
	const moe_config *c = &model->cfg;
	const moe_layout *l = &model->layout;
	const float *p = model->params;
	const int	M = ws->rows,
				E = c->n_experts,
				k = c->top_k,
				R = moe_config_rep_dim(c);
	bool		dropout_on = c->dropout > 0.0f;	/* masks exist only then */


	be->combine_backward(be, ws->d_sel_w, ws->d_sel_y, d_pred, ws->sel_w, ws->sel_y, M, k);

	/* Router: renormalisation, auxiliary loss on the mean probabilities,
	 * softmax, then the gate MLP, whose input gradient starts d_rep. */
	be->route_backward(be, ws->d_probs, ws->d_sel_w, ws->sel_w, ws->sel_idx, ws->probs, M, E, k);
	if (router != NULL && router->d_pbar != NULL)
	{
		be->upload(be, ws->pbar, router->d_pbar, sizeof(float) * E);
		be->add_row_vector(be, ws->d_probs, ws->pbar, 1.0f / M, M, E);
	}
	if (router != NULL && router->row_entropy_weight != 0.0f)
		be->row_entropy(be, ws->d_probs, ws->probs, M, E, -router->row_entropy_weight);
	be->softmax_backward(be, ws->d_logits, ws->d_probs, ws->probs, M, E, c->temperature);
	if (router != NULL && router->d_logits_extra != NULL)
	{
		/* d_probs is free again: stage the host gradient there */
		be->upload(be, ws->d_probs, router->d_logits_extra, sizeof(float) * M * E);
		be->add(be, ws->d_logits, ws->d_probs, (size_t) M * E);
	}
	/* with noise, d_logits is the gradient of the noisy logits; the clean
	 * logits get the same, the noise head its own share */
	if (l->has_noise)
	{
		int			in = gate_last_width(l);
		const float *h_last = l->gate.n_blocks > 0
			? ws->gate.block[l->gate.n_blocks - 1].out : ws->rep;

		be->noisy_logits_backward(be, ws->d_noise_pre, ws->d_logits, ws->noise_eps,
								  ws->noise_pre, (size_t) M * E);
		be->linear_backward(be, ws->d_gate_last, grads + l->noise_W, grads + l->noise_b,
							ws->d_noise_pre, h_last, p + l->noise_W, M, E, in);
	}
	if (router != NULL && router->zloss_weight != 0.0f)
		be->zloss(be, ws->d_logits, ws->logits, M, E, router->zloss_weight);
	mlp_backward(be, p, grads, &l->gate, &ws->gate, 0, ws->rep, ws->d_logits, ws->d_rep,
				 l->has_noise ? ws->d_gate_last : NULL, M, dropout_on, ws->scratch_a,
				 ws->scratch_b, NULL);

	/* Experts, each on its slice; their input gradients add into d_rep. */
	be->gather(be, ws->d_y_expert, ws->d_sel_y, ws->perm_pos, M * k);
	for (int e = 0; e < E; e++)
	{
		int			off = ws->expert_offset[e];
		int			n = ws->expert_offset[e + 1] - off;

		if (n == 0)
		{
			mlp_zero_grads(be, grads, &l->expert[e]);
			continue;
		}
		mlp_backward(be, p, grads, &l->expert[e], &ws->experts, off, ROWS(ws->x_expert, off, R),
					 ws->d_y_expert + off, ROWS(ws->d_x_expert, off, R), NULL, n, dropout_on,
					 ws->scratch_a, ws->scratch_b, NULL);
		be->scatter_add_rows(be, ws->d_rep, ROWS(ws->d_x_expert, off, R), ws->perm_row + off, n, R);
	}

	/* Encoders; their inputs are data, so no input gradient. */
	be->split_cols(be, ws->d_drug, ws->d_protein, ws->d_rep, M, l->drug.out_dim,
				   l->protein.out_dim);
	{
		sparse_first_grad sd = {l, 0, &ws->sparse[0]},
					sp = {l, 1, &ws->sparse[1]};

		mlp_backward(be, p, grads, &l->drug, &ws->drug, 0, ws->x_drug, ws->d_drug, NULL, NULL, M,
					 dropout_on, ws->scratch_a, ws->scratch_b, ws->sparse[0].table ? &sd : NULL);
		mlp_backward(be, p, grads, &l->protein, &ws->protein, 0, ws->x_protein, ws->d_protein, NULL,
					 NULL, M, dropout_on, ws->scratch_a, ws->scratch_b,
					 ws->sparse[1].table ? &sp : NULL);
	}
	return be->check(be, err);
}
