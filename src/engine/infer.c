/*
 * infer.c — inference factored by entity (see infer.h).
 */
#include "infer.h"
#include "sparse.h"

#include <stdlib.h>
#include <string.h>

#include "gemm_rows.h"

#define NO_PANEL ((size_t) -1)

struct moe_infer_ws
{
	int			max_rows;
	int			part_floats;
	int			G1;				/* width of the gate's first layer */
	int			X1;				/* width of an expert's first layer */
	int32_t    *idx_a;			/* backend index arrays, [max_rows * k] */
	int32_t    *idx_b;
	int32_t    *host_a;			/* host scratch for them */
	int32_t    *host_b;
	int32_t    *uniq;			/* host: distinct entities of a batch */
	int32_t    *local_d;		/* host: rows' indices into the batch's parts */
	int32_t    *local_p;
	float	   *x;				/* standardised inputs [max_rows, max input dim] */
	float	   *buf_a;			/* ping-pong activations [max_rows * k, widest layer] */
	float	   *buf_b;
	float	   *mean;			/* LayerNorm statistics [max_rows * k] */
	float	   *rstd;
	float	   *drug_parts;		/* parts of the batch's entities [max_rows, part_floats] */
	float	   *protein_parts;
	float	   *probs;			/* [max_rows, E] */
	int32_t    *sel_idx;		/* [max_rows, k] */
	float	   *sel_w;
	float	   *sel_y;
	float	   *y;				/* expert outputs in expert-sorted order [max_rows * k] */
	float	   *pred;			/* [max_rows] */
	int32_t    *perm_pos;		/* backend [max_rows * k] */
	int32_t    *host_sel;
	int32_t    *host_perm_pos;
	int32_t    *host_perm_row;
	float	   *host_pred;
	float	   *host_probs;
	float	   *host_sel_w;
	float	   *host_column;
	int			expert_offset[MOE_MAX_EXPERTS + 1];
	/* where each block's row panel starts in model->row_panels: [0] the
	 * gate, [1 + e] expert e; NO_PANEL for blocks without one */
	size_t		panel_off[MOE_MAX_EXPERTS + 1][MOE_MAX_LAYERS];
	size_t		enc_off[2];		/* the drug and protein encoder panels, or NO_PANEL */
	int32_t    *dense_rows;		/* host [max_rows]: entities of a batch read dense */
	int32_t    *dense_idx;		/* host [max_rows]: their table rows */
	moe_infer_out out;
};

/* ---- sizes ------------------------------------------------------------ */

/* The first linear layer of an MLP whose input is rep. */
static void
first_layer(const moe_mlp_layout *mlp, size_t *W, size_t *b, int *width)
{
	if (mlp->n_blocks > 0)
	{
		*W = mlp->block[0].W;
		*b = mlp->block[0].b;
		*width = mlp->block[0].out;
	}
	else
	{
		*W = mlp->head_W;
		*b = mlp->head_b;
		*width = mlp->out_dim;
	}
}

int
moe_entity_part_floats(const moe_model *model)
{
	size_t		W,
				b;
	int			g1,
				x1;

	first_layer(&model->layout.gate, &W, &b, &g1);
	first_layer(&model->layout.expert[0], &W, &b, &x1);
	return g1 + model->cfg.n_experts * x1;
}

/* ---- row panels -------------------------------------------------------- */

/* The pair MLPs in panel order: the gate, then expert 0, 1, ... */
static const moe_mlp_layout *
pair_mlp(const moe_model *model, int i)
{
	return i == 0 ? &model->layout.gate : &model->layout.expert[i - 1];
}

/* Panel offsets of every pair block (blocks after the first: their input
 * is a ReLU's); returns the total floats. */
static size_t
panel_offsets(const moe_model *model, size_t off[][MOE_MAX_LAYERS])
{
	size_t		total = 0;

	for (int i = 0; i <= model->cfg.n_experts; i++)
	{
		const moe_mlp_layout *mlp = pair_mlp(model, i);

		for (int j = 0; j < MOE_MAX_LAYERS; j++)
		{
			const moe_block_layout *blk = &mlp->block[j];

			off[i][j] = NO_PANEL;
			if (j == 0 || j >= mlp->n_blocks || blk->in > MOE_ROW_PANEL_MAX_K)
				continue;
			off[i][j] = total;
			total += moe_row_panel_floats(blk->out, blk->in);
		}
	}
	return total;
}

/*
 * Encoder panels follow the pair panels: for each encoder whose first
 * block reads at least MOE_ENCODER_PANEL_MIN_K values, K x N floats of
 * W^T diag(scale) and N floats of b - W (shift * scale), so that a mostly
 * zero input row is multiplied through its non-zeros alone (sparse.h).
 * enc_off[0] and [1] (drug, protein) get their offsets or NO_PANEL.
 */
#define MOE_ENCODER_PANEL_MIN_K 256

static size_t
encoder_panel_offsets(const moe_model *model, size_t start, size_t enc_off[2])
{
	size_t		total = start;

	for (int i = 0; i < 2; i++)
	{
		const moe_mlp_layout *mlp = i == 0 ? &model->layout.drug : &model->layout.protein;

		enc_off[i] = NO_PANEL;
		if (mlp->n_blocks < 1 || mlp->block[0].in < MOE_ENCODER_PANEL_MIN_K)
			continue;
		enc_off[i] = total;
		total += ((size_t) mlp->block[0].in + 1) * (size_t) mlp->block[0].out;
	}
	return total;
}

size_t
moe_row_panels_floats(const moe_model *model)
{
	size_t		off[MOE_MAX_EXPERTS + 1][MOE_MAX_LAYERS],
				enc[2];

	return encoder_panel_offsets(model, panel_offsets(model, off), enc);
}

/* W^T diag(scale), then b - W (shift * scale), of an encoder's first block. */
static void
encoder_panel_pack(const moe_mlp_layout *mlp, const float *params, const float *shift,
				   const float *scale, float *panel)
{
	const moe_block_layout *b0 = &mlp->block[0];
	const float *W = params + b0->W;
	int			K = b0->in,
				N = b0->out;
	float	   *bias = panel + (size_t) K * N;

	for (int n = 0; n < N; n++)
	{
		const float *row = W + (size_t) n * K;
		double		c = 0.0;

		for (int j = 0; j < K; j++)
		{
			panel[(size_t) j * N + n] = row[j] * scale[j];
			c += (double) row[j] * (shift[j] * scale[j]);
		}
		bias[n] = (float) (params[b0->b + n] - c);
	}
}

void
moe_row_panels_pack(const moe_model *model, const float *params, float *panels)
{
	const moe_layout *l = &model->layout;
	size_t		off[MOE_MAX_EXPERTS + 1][MOE_MAX_LAYERS],
				enc[2];

	encoder_panel_offsets(model, panel_offsets(model, off), enc);
	for (int i = 0; i <= model->cfg.n_experts; i++)
		for (int j = 0; j < MOE_MAX_LAYERS; j++)
			if (off[i][j] != NO_PANEL)
			{
				const moe_block_layout *blk = &pair_mlp(model, i)->block[j];

				moe_row_panel_pack(panels + off[i][j], params + blk->W, blk->in, blk->out, blk->in);
			}
	if (enc[0] != NO_PANEL)
		encoder_panel_pack(&l->drug, params, params + l->drug_shift, params + l->drug_scale,
						   panels + enc[0]);
	if (enc[1] != NO_PANEL)
		encoder_panel_pack(&l->protein, params, params + l->protein_shift, params + l->protein_scale,
						   panels + enc[1]);
}

void
moe_model_use_row_panels(moe_model *model, const float *panels)
{
	model->row_panels = panels;
}

moe_status
moe_model_make_row_panels(moe_model *model, moe_error *err)
{
	size_t		n = moe_row_panels_floats(model);
	float	   *panels;

	if (!model->be->host_memory)
		return moe_fail(err, MOE_ERR_INVALID, "row panels need parameters in host memory");
	panels = malloc(sizeof(float) * (n > 0 ? n : 1));
	if (panels == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory packing row panels (%zu floats)", n);
	moe_row_panels_pack(model, model->params, panels);
	free(model->owned_row_panels);
	model->owned_row_panels = panels;
	model->row_panels = panels;
	return MOE_OK;
}

/* ---- sizes, continued -------------------------------------------------- */

static int
widest(const moe_mlp_layout *mlp, int w)
{
	for (int i = 0; i < mlp->n_blocks; i++)
		if (mlp->block[i].out > w)
			w = mlp->block[i].out;
	return mlp->out_dim > w ? mlp->out_dim : w;
}

/*
 * Every buffer of an inference workspace for max_rows rows; with counting
 * set, only the bytes they would take are added to *counting.  Returns
 * false when an allocation failed.
 */
static bool
infer_ws_fill(const moe_model *model, int max_rows, moe_infer_ws *ws, size_t *counting)
{
	moe_backend *be = model->be;
	const moe_config *c = &model->cfg;
	const moe_layout *l = &model->layout;
	size_t		M = (size_t) max_rows,
				K = (size_t) c->top_k,
				E = (size_t) c->n_experts,
				D = (size_t) (c->drug_dim > c->protein_dim ? c->drug_dim : c->protein_dim),
				width = 1,
				W,
				b;
	bool		failed = false;

	ws->max_rows = max_rows;
	ws->part_floats = moe_entity_part_floats(model);
	encoder_panel_offsets(model, panel_offsets(model, ws->panel_off), ws->enc_off);
	first_layer(&l->gate, &W, &b, &ws->G1);
	first_layer(&l->expert[0], &W, &b, &ws->X1);
	width = widest(&l->drug, width);
	width = widest(&l->protein, width);
	width = widest(&l->gate, width);
	width = widest(&l->expert[0], width);

#define BE(ptr, count, type) \
	do { if (counting) *counting += (count) * sizeof(type); \
		 else if (!failed && ((ptr) = be->alloc(be, (count) * sizeof(type))) == NULL) failed = true; } while (0)
#define HOST(ptr, count, type) \
	do { if (counting) *counting += ((count) > 0 ? (count) : 1) * sizeof(type); \
		 else if (!failed && ((ptr) = calloc((count) > 0 ? (count) : 1, sizeof(type))) == NULL) failed = true; } while (0)

	BE(ws->idx_a, M * K, int32_t);
	BE(ws->idx_b, M * K, int32_t);
	HOST(ws->host_a, M * K, int32_t);
	HOST(ws->host_b, M * K, int32_t);
	HOST(ws->uniq, M, int32_t);
	HOST(ws->local_d, M, int32_t);
	HOST(ws->local_p, M, int32_t);
	BE(ws->x, M * D, float);
	BE(ws->buf_a, M * K * width, float);
	BE(ws->buf_b, M * K * width, float);
	BE(ws->mean, M * K, float);
	BE(ws->rstd, M * K, float);
	BE(ws->drug_parts, M * ws->part_floats, float);
	BE(ws->protein_parts, M * ws->part_floats, float);
	BE(ws->probs, M * E, float);
	BE(ws->sel_idx, M * K, int32_t);
	BE(ws->sel_w, M * K, float);
	BE(ws->sel_y, M * K, float);
	BE(ws->y, M * K, float);
	BE(ws->pred, M, float);
	BE(ws->perm_pos, M * K, int32_t);
	HOST(ws->host_sel, M * K, int32_t);
	HOST(ws->host_perm_pos, M * K, int32_t);
	HOST(ws->host_perm_row, M * K, int32_t);
	HOST(ws->host_pred, M, float);
	HOST(ws->host_probs, M * E, float);
	HOST(ws->host_sel_w, M * K, float);
	HOST(ws->host_column, M, float);
	HOST(ws->dense_rows, M, int32_t);
	HOST(ws->dense_idx, M, int32_t);
#undef BE
#undef HOST
	return !failed;
}

size_t
moe_infer_ws_bytes(const moe_model *model, int max_rows)
{
	moe_infer_ws ws;
	size_t		bytes = sizeof(moe_infer_ws);

	memset(&ws, 0, sizeof(ws));
	infer_ws_fill(model, max_rows > 0 ? max_rows : 1, &ws, &bytes);
	return bytes;
}

moe_status
moe_infer_ws_create(const moe_model *model, int max_rows, moe_infer_ws **out, moe_error *err)
{
	moe_infer_ws *ws;

	*out = NULL;
	if (max_rows < 1)
		return moe_fail(err, MOE_ERR_INVALID, "batch size must be at least 1");
	ws = calloc(1, sizeof(moe_infer_ws));
	if (ws == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating an inference workspace");
	if (!infer_ws_fill(model, max_rows, ws, NULL))
	{
		moe_infer_ws_free(model, ws);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory allocating an inference workspace for %d rows",
						max_rows);
	}
	ws->out.pred = ws->host_pred;
	ws->out.probs = ws->host_probs;
	ws->out.sel_w = ws->host_sel_w;
	ws->out.host_sel = ws->host_sel;
	*out = ws;
	return MOE_OK;
}

void
moe_infer_ws_free(const moe_model *model, moe_infer_ws *ws)
{
	moe_backend *be = model->be;

	if (ws == NULL)
		return;
	be->release(be, ws->idx_a);
	be->release(be, ws->idx_b);
	be->release(be, ws->x);
	be->release(be, ws->buf_a);
	be->release(be, ws->buf_b);
	be->release(be, ws->mean);
	be->release(be, ws->rstd);
	be->release(be, ws->drug_parts);
	be->release(be, ws->protein_parts);
	be->release(be, ws->probs);
	be->release(be, ws->sel_idx);
	be->release(be, ws->sel_w);
	be->release(be, ws->sel_y);
	be->release(be, ws->y);
	be->release(be, ws->pred);
	be->release(be, ws->perm_pos);
	free(ws->host_a);
	free(ws->host_b);
	free(ws->uniq);
	free(ws->local_d);
	free(ws->local_p);
	free(ws->host_sel);
	free(ws->host_perm_pos);
	free(ws->host_perm_row);
	free(ws->host_pred);
	free(ws->host_probs);
	free(ws->host_sel_w);
	free(ws->host_column);
	free(ws->dense_rows);
	free(ws->dense_idx);
	free(ws);
}

int
moe_infer_ws_max_rows(const moe_infer_ws *ws)
{
	return ws->max_rows;
}

const moe_infer_out *
moe_infer_results(const moe_infer_ws *ws)
{
	return &ws->out;
}

/* ---- layers ----------------------------------------------------------- */

/* LayerNorm then ReLU in place on n rows of width w (eval: no dropout). */
static void
norm_relu(moe_backend *be, const float *p, const moe_block_layout *blk, float *x, int n,
		  moe_infer_ws *ws)
{
	be->layernorm_forward(be, x, ws->mean, ws->rstd, x, p + blk->gamma, p + blk->beta, n, blk->out);
	be->relu_forward(be, x, x, (size_t) n * blk->out);
}

/* Block blk's product on n rows; a lone row reads the block's row panel
 * when there is one (panel_off: the MLP's offsets, or NULL). */
static void
block_product(moe_model *model, const moe_block_layout *blk, const size_t *panel_off, int i,
			  float *out, const float *in, int n)
{
	moe_backend *be = model->be;
	const float *p = model->params;

	if (n == 1 && panel_off != NULL && panel_off[i] != NO_PANEL && model->row_panels != NULL &&
		be->linear_infer_row_sparse != NULL)
		be->linear_infer_row_sparse(be, out, in, p + blk->W, blk->in, model->row_panels + panel_off[i],
									p + blk->b, blk->out, blk->in);
	else
		be->linear_infer(be, out, blk->out, in, blk->in, p + blk->W, blk->in, p + blk->b, n, blk->out,
						 blk->in);
}

/* Blocks first..end and the head of mlp on n rows whose input is in
 * *cur (width in); ping-pongs between the two buffers.  Returns the output. */
static float *
run_layers(moe_model *model, const moe_mlp_layout *mlp, const size_t *panel_off, int first,
		   float *cur, int in, int n, moe_infer_ws *ws)
{
	moe_backend *be = model->be;
	const float *p = model->params;

	for (int i = first; i < mlp->n_blocks; i++)
	{
		const moe_block_layout *blk = &mlp->block[i];
		float	   *next = cur == ws->buf_a ? ws->buf_b : ws->buf_a;

		block_product(model, blk, panel_off, i, next, cur, n);
		norm_relu(be, p, blk, next, n, ws);
		cur = next;
		in = blk->out;
	}
	if (mlp->has_head)
	{
		float	   *next = cur == ws->buf_a ? ws->buf_b : ws->buf_a;

		be->linear_infer(be, next, mlp->out_dim, cur, in, p + mlp->head_W, in, p + mlp->head_b, n,
						 mlp->out_dim, in);
		cur = next;
	}
	return cur;
}

/* The rest of the gate or an expert once its first layer's output (pre,
 * in buf_a) is known. */
static float *
finish_mlp(moe_model *model, const moe_mlp_layout *mlp, const size_t *panel_off, int n,
		   moe_infer_ws *ws)
{
	if (mlp->n_blocks == 0)
		return ws->buf_a;		/* the first layer was the head */
	norm_relu(model->be, model->params, &mlp->block[0], ws->buf_a, n, ws);
	return run_layers(model, mlp, panel_off, 1, ws->buf_a, mlp->block[0].out, n, ws);
}

/* ---- entity parts ----------------------------------------------------- */

/* The encoder panel of kind when this model has one and the backend reads
 * it (host memory, and a sparse-input product), else NULL. */
static const float *
encoder_panel(const moe_model *model, const moe_infer_ws *ws, moe_entity_kind kind)
{
	if (!model->be->host_memory || model->be->linear_infer_sparse_input == NULL ||
		model->row_panels == NULL || ws->enc_off[kind] == NO_PANEL)
		return NULL;
	return model->row_panels + ws->enc_off[kind];
}

/*
 * An encoder over n entities (rows idx of table, host memory) whose first
 * layer has a panel: each entity whose vector is at most MOE_SPARSE_DENSITY
 * non-zero is multiplied through its non-zeros (sparse.h), the others
 * densely, together.  The choice depends on the vector alone, so an
 * entity gets the same bits in every batch.  Returns the encoder output.
 */
static float *
sparse_encoder(moe_model *model, moe_infer_ws *ws, moe_entity_kind kind, const moe_mlp_layout *enc,
			   const float *table, const int32_t *idx, int n, int D)
{
	moe_backend *be = model->be;
	const moe_layout *l = &model->layout;
	const float *p = model->params;
	const moe_block_layout *b0 = &enc->block[0];
	const float *panel = encoder_panel(model, ws, kind);
	int			N = b0->out,
				dense = 0;
	float	   *pre = ws->buf_a;

	for (int i = 0; i < n; i++)
	{
		const float *x = table + (size_t) idx[i] * D;

		if (moe_density(x, 1, D) <= MOE_SPARSE_DENSITY)
			be->linear_infer_sparse_input(be, pre + (size_t) i * N, x, panel, N, D);
		else
		{
			ws->dense_rows[dense] = i;
			ws->dense_idx[dense++] = idx[i];
		}
	}
	if (dense > 0)
	{
		/* the rest together, standardised as usual, then into place */
		be->upload(be, ws->idx_a, ws->dense_idx, sizeof(int32_t) * dense);
		be->gather_rows(be, ws->x, table, ws->idx_a, dense, D,
						p + (kind == MOE_DRUG ? l->drug_shift : l->protein_shift),
						p + (kind == MOE_DRUG ? l->drug_scale : l->protein_scale));
		be->linear_infer(be, ws->buf_b, N, ws->x, D, p + b0->W, D, p + b0->b, dense, N, D);
		for (int r = 0; r < dense; r++)
			memcpy(pre + (size_t) ws->dense_rows[r] * N, ws->buf_b + (size_t) r * N, sizeof(float) * N);
	}
	norm_relu(be, p, b0, pre, n, ws);
	return run_layers(model, enc, NULL, 1, pre, N, n, ws);
}

moe_status
moe_entity_parts(moe_model *model, moe_infer_ws *ws, moe_entity_kind kind, const float *table,
				 const int32_t *idx, int n, float *parts, moe_error *err)
{
	moe_backend *be = model->be;
	const moe_config *c = &model->cfg;
	const moe_layout *l = &model->layout;
	const float *p = model->params;
	const moe_mlp_layout *enc = kind == MOE_DRUG ? &l->drug : &l->protein;
	int			D = kind == MOE_DRUG ? c->drug_dim : c->protein_dim;
	int			H = enc->out_dim;
	int			R = moe_config_rep_dim(c);
	int			col = kind == MOE_DRUG ? 0 : l->drug.out_dim;
	float	   *h;
	size_t		W,
				b;
	int			width;

	if (n < 1 || n > ws->max_rows)
		return moe_fail(err, MOE_ERR_INVALID, "%d entities do not fit a workspace of %d", n, ws->max_rows);
	if (encoder_panel(model, ws, kind) != NULL)
		h = sparse_encoder(model, ws, kind, enc, table, idx, n, D);
	else
	{
		be->upload(be, ws->idx_a, idx, sizeof(int32_t) * n);
		be->gather_rows(be, ws->x, table, ws->idx_a, n, D,
						p + (kind == MOE_DRUG ? l->drug_shift : l->protein_shift),
						p + (kind == MOE_DRUG ? l->drug_scale : l->protein_scale));
		h = run_layers(model, enc, NULL, 0, ws->x, D, n, ws);
	}

	/* this entity's share of every first layer: W[:, col .. col + H) . h */
	first_layer(&l->gate, &W, &b, &width);
	be->linear_infer(be, parts, ws->part_floats, h, H, p + W + col, R, NULL, n, width, H);
	for (int e = 0; e < c->n_experts; e++)
	{
		first_layer(&l->expert[e], &W, &b, &width);
		be->linear_infer(be, parts + ws->G1 + e * ws->X1, ws->part_floats, h, H, p + W + col, R, NULL,
						 n, width, H);
	}
	return be->check(be, err);
}

/* ---- pairs ------------------------------------------------------------ */

static void
sort_selections(moe_infer_ws *ws, int M, int E, int k)
{
	moe_sort_by_expert(ws->host_sel, M, E, k, ws->expert_offset, ws->host_perm_pos,
					   ws->host_perm_row);
}

/* Expert e's output for n pairs given their parts' indices (host). */
static const float *
expert_output(moe_model *model, moe_infer_ws *ws, int e, const float *drug_parts,
			  const int32_t *di, const float *protein_parts, const int32_t *pi, int n)
{
	moe_backend *be = model->be;
	const float *p = model->params;
	const moe_mlp_layout *mlp = &model->layout.expert[e];
	size_t		W,
				b;
	int			width,
				off = ws->G1 + e * ws->X1;

	first_layer(mlp, &W, &b, &width);
	be->upload(be, ws->idx_a, di, sizeof(int32_t) * n);
	be->upload(be, ws->idx_b, pi, sizeof(int32_t) * n);
	be->sum_parts(be, ws->buf_a, width, p + b, drug_parts + off, ws->part_floats, ws->idx_a,
				  protein_parts + off, ws->part_floats, ws->idx_b, n, width);
	return finish_mlp(model, mlp, ws->panel_off[1 + e], n, ws);
}

moe_status
moe_infer_pairs(moe_model *model, moe_infer_ws *ws, const float *drug_parts,
				const int32_t *drug_idx, const float *protein_parts, const int32_t *protein_idx,
				int M, float *outputs, moe_error *err)
{
	moe_backend *be = model->be;
	const moe_config *c = &model->cfg;
	const moe_layout *l = &model->layout;
	const float *p = model->params;
	const int	E = c->n_experts,
				k = c->top_k;
	const float *logits;
	size_t		W,
				b;
	int			width;
	moe_status	st;

	if (M < 1 || M > ws->max_rows)
		return moe_fail(err, MOE_ERR_INVALID, "%d pairs do not fit a workspace of %d", M, ws->max_rows);

	/* the gate */
	first_layer(&l->gate, &W, &b, &width);
	be->upload(be, ws->idx_a, drug_idx, sizeof(int32_t) * M);
	be->upload(be, ws->idx_b, protein_idx, sizeof(int32_t) * M);
	be->sum_parts(be, ws->buf_a, width, p + b, drug_parts, ws->part_floats, ws->idx_a,
				  protein_parts, ws->part_floats, ws->idx_b, M, width);
	logits = finish_mlp(model, &l->gate, ws->panel_off[0], M, ws);
	be->softmax_forward(be, ws->probs, logits, M, E, c->temperature);
	be->topk_route(be, ws->sel_idx, ws->sel_w, ws->probs, p + l->select_bias, M, E, k);
	be->download(be, ws->host_sel, ws->sel_idx, sizeof(int32_t) * M * k);

	/* each selected expert on the pairs that chose it */
	sort_selections(ws, M, E, k);
	for (int e = 0; e < E; e++)
	{
		int			off = ws->expert_offset[e];
		int			n = ws->expert_offset[e + 1] - off;
		const float *y;

		if (n == 0)
			continue;
		for (int i = 0; i < n; i++)
		{
			ws->host_a[i] = drug_idx[ws->host_perm_row[off + i]];
			ws->host_b[i] = protein_idx[ws->host_perm_row[off + i]];
		}
		y = expert_output(model, ws, e, drug_parts, ws->host_a, protein_parts, ws->host_b, n);
		be->copy(be, ws->y + off, y, sizeof(float) * n);
	}
	be->upload(be, ws->perm_pos, ws->host_perm_pos, sizeof(int32_t) * M * k);
	be->scatter(be, ws->sel_y, ws->y, ws->perm_pos, M * k);
	be->combine_forward(be, ws->pred, ws->sel_w, ws->sel_y, M, k);

	be->download(be, ws->host_pred, ws->pred, sizeof(float) * M);
	for (int m = 0; m < M; m++)
		ws->host_pred[m] = c->label_mean + c->label_std * ws->host_pred[m];
	be->download(be, ws->host_probs, ws->probs, sizeof(float) * M * E);
	be->download(be, ws->host_sel_w, ws->sel_w, sizeof(float) * M * k);

	/* diagnostics: every expert on every pair */
	for (int e = 0; outputs != NULL && e < E; e++)
	{
		const float *y = expert_output(model, ws, e, drug_parts, drug_idx, protein_parts,
									   protein_idx, M);

		be->download(be, ws->host_column, y, sizeof(float) * M);
		for (int m = 0; m < M; m++)
			outputs[(size_t) m * E + e] = c->label_mean + c->label_std * ws->host_column[m];
	}
	st = be->check(be, err);
	return st;
}

/* Distinct values of idx[0..M) into ws->uniq, and each row's position. */
static int
distinct(const int32_t *idx, int M, int32_t *uniq, int32_t *local)
{
	int			n = 0;

	/* batches are small (hundreds): a linear probe of what was seen is
	 * cheaper than hashing, and keeps first-seen order */
	for (int m = 0; m < M; m++)
	{
		int			j;

		for (j = n - 1; j >= 0; j--)
			if (uniq[j] == idx[m])
				break;
		if (j < 0)
		{
			uniq[n] = idx[m];
			j = n++;
		}
		local[m] = j;
	}
	return n;
}

moe_status
moe_infer_rows(moe_model *model, moe_infer_ws *ws, const float *drug_table,
			   const int32_t *drug_idx, const float *protein_table, const int32_t *protein_idx,
			   int M, float *outputs, moe_error *err)
{
	moe_status	st;
	int			n;

	if (M < 1 || M > ws->max_rows)
		return moe_fail(err, MOE_ERR_INVALID, "%d rows do not fit a workspace of %d", M, ws->max_rows);
	n = distinct(drug_idx, M, ws->uniq, ws->local_d);
	if ((st = moe_entity_parts(model, ws, MOE_DRUG, drug_table, ws->uniq, n, ws->drug_parts, err)) != MOE_OK)
		return st;
	n = distinct(protein_idx, M, ws->uniq, ws->local_p);
	if ((st = moe_entity_parts(model, ws, MOE_PROTEIN, protein_table, ws->uniq, n, ws->protein_parts,
							   err)) != MOE_OK)
		return st;
	return moe_infer_pairs(model, ws, ws->drug_parts, ws->local_d, ws->protein_parts, ws->local_p,
						   M, outputs, err);
}

moe_status
moe_predict_rows(moe_model *model, moe_infer_ws *ws, const float *drug_table,
				 const float *protein_table, const moe_rows *rows, float *out, moe_error *err)
{
	for (int from = 0; from < rows->n; from += ws->max_rows)
	{
		int			M = rows->n - from < ws->max_rows ? rows->n - from : ws->max_rows;
		moe_status	st = moe_infer_rows(model, ws, drug_table, rows->drug_idx + from, protein_table,
										rows->protein_idx + from, M, NULL, err);

		if (st != MOE_OK)
			return st;
		memcpy(out + from, ws->host_pred, sizeof(float) * M);
	}
	return MOE_OK;
}

/* The parts of entities 0 .. n-1 of table, max_rows at a time, into parts. */
static moe_status
all_parts(moe_model *model, moe_infer_ws *ws, moe_entity_kind kind, const float *table, int n,
		  float *parts, moe_error *err)
{
	for (int from = 0; from < n; from += ws->max_rows)
	{
		int			m = n - from < ws->max_rows ? n - from : ws->max_rows;
		moe_status	st;

		for (int i = 0; i < m; i++)
			ws->uniq[i] = from + i;
		st = moe_entity_parts(model, ws, kind, table, ws->uniq, m, parts + (size_t) from * ws->part_floats,
							  err);
		if (st != MOE_OK)
			return st;
	}
	return MOE_OK;
}

moe_status
moe_predict_rows_whole(moe_model *model, moe_infer_ws *ws, const float *drug_table, int n_drugs,
					   const float *protein_table, int n_proteins, const moe_rows *rows,
					   float *drug_parts, float *protein_parts, float *out, moe_error *err)
{
	moe_status	st;

	if ((st = all_parts(model, ws, MOE_DRUG, drug_table, n_drugs, drug_parts, err)) != MOE_OK ||
		(st = all_parts(model, ws, MOE_PROTEIN, protein_table, n_proteins, protein_parts, err)) != MOE_OK)
		return st;
	for (int from = 0; from < rows->n; from += ws->max_rows)
	{
		int			M = rows->n - from < ws->max_rows ? rows->n - from : ws->max_rows;

		st = moe_infer_pairs(model, ws, drug_parts, rows->drug_idx + from, protein_parts,
							 rows->protein_idx + from, M, NULL, err);
		if (st != MOE_OK)
			return st;
		memcpy(out + from, ws->host_pred, sizeof(float) * M);
	}
	return MOE_OK;
}

moe_status
moe_predict_rows_usage(moe_model *model, moe_infer_ws *ws, const float *drug_table,
					   const float *protein_table, const moe_rows *rows, float *out,
					   moe_usage_acc *usage, moe_error *err)
{
	const int	E = model->cfg.n_experts,
				k = model->cfg.top_k;

	for (int from = 0; from < rows->n; from += ws->max_rows)
	{
		int			M = rows->n - from < ws->max_rows ? rows->n - from : ws->max_rows;
		moe_status	st = moe_infer_rows(model, ws, drug_table, rows->drug_idx + from, protein_table,
										rows->protein_idx + from, M, NULL, err);

		if (st != MOE_OK)
			return st;
		memcpy(out + from, ws->host_pred, sizeof(float) * M);
		for (int i = 0; i < M; i++)
			if ((st = moe_usage_add(usage, ws->host_probs + (size_t) i * E, E, ws->host_sel + (size_t) i * k,
									k, err)) != MOE_OK)
				return st;
	}
	return MOE_OK;
}
