/*
 * model.h — the Mixture-of-Experts affinity model: configuration, the
 * single parameter buffer and its tensor table, forward and backward.
 *
 *   drug x_d [M, Dd]    -> standardise -> drug encoder    -> h_d [M, Hd]
 *   protein x_p [M, Dp] -> standardise -> protein encoder -> h_p [M, Hp]
 *   rep = [h_d | h_p] [M, R = Hd + Hp]
 *   gate: rep -> blocks -> Linear -> logits [M, E]; probs = softmax(logits / T)
 *   top-k of probs (ties to the lower index), weights renormalised to sum 1
 *   expert e: rep rows routed to e -> blocks -> Linear -> y [., 1]
 *   pred [M] = sum over the k selected experts of weight * y, in standardised
 *   label units; label = label_mean + label_std * pred.
 *
 * A "block" is Linear -> LayerNorm -> ReLU -> Dropout.  Encoders are blocks
 * only; the gate and the experts end with a plain Linear head.  Only the
 * selected experts are computed, forward and backward: rows are sorted by
 * expert (a stable counting sort, so runs are deterministic) and each
 * expert works on its contiguous slice.
 */
#ifndef MOE_MODEL_H
#define MOE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "moe_status.h"
#include "sparse.h"

#define MOE_MAX_LAYERS		4
#define MOE_MAX_EXPERTS		64
#define MOE_MAX_INPUT_DIM	(1 << 20)
#define MOE_MAX_WIDTH		16384
#define MOE_TENSOR_NAME_LEN	48

typedef struct moe_config
{
	int32_t		drug_dim;		/* input vector lengths */
	int32_t		protein_dim;
	int32_t		n_drug_layers;	/* encoder blocks and their widths */
	int32_t		drug_hidden[MOE_MAX_LAYERS];
	int32_t		n_protein_layers;
	int32_t		protein_hidden[MOE_MAX_LAYERS];
	int32_t		n_gate_layers;	/* gate blocks before the head */
	int32_t		gate_hidden[MOE_MAX_LAYERS];
	int32_t		n_expert_layers;	/* expert blocks before the head */
	int32_t		expert_hidden[MOE_MAX_LAYERS];
	int32_t		n_experts;
	int32_t		top_k;
	int32_t		noisy_gating;	/* 1: a learnt noise head perturbs training logits */
	float		temperature;	/* softmax temperature of the router */
	float		dropout;		/* probability, used in training only */
	float		label_mean;		/* labels are learnt standardised */
	float		label_std;
} moe_config;

/* Defaults of the issue: encoders 512, gate 512-256, experts 512-256, E=4, k=2. */
void		moe_config_defaults(moe_config *cfg, int drug_dim, int protein_dim);
moe_status	moe_config_validate(const moe_config *cfg, moe_error *err);
int			moe_config_rep_dim(const moe_config *cfg);

/* One named tensor of the parameter buffer. */
typedef struct moe_tensor_info
{
	char		name[MOE_TENSOR_NAME_LEN];
	int32_t		ndim;
	int64_t		dims[2];
	size_t		offset;			/* in floats from the start of the buffer */
	size_t		numel;
} moe_tensor_info;

/* Offsets of one block's parameters. */
typedef struct moe_block_layout
{
	int			in;
	int			out;
	size_t		W, b, gamma, beta;
} moe_block_layout;

typedef struct moe_mlp_layout
{
	int			in_dim;
	int			out_dim;
	int			n_blocks;
	moe_block_layout block[MOE_MAX_LAYERS];
	bool		has_head;
	size_t		head_W, head_b;
} moe_mlp_layout;

typedef struct moe_layout
{
	/* non-trainable: input standardisation, (x - shift) * scale, and the
	 * per-expert bias of aux-loss-free balancing (selection only) */
	size_t		drug_shift, drug_scale, protein_shift, protein_scale;
	size_t		select_bias;
	moe_mlp_layout drug, protein, gate;
	/* noisy gating: a second head on the gate's last hidden layer */
	bool		has_noise;
	size_t		noise_W, noise_b;
	moe_mlp_layout expert[MOE_MAX_EXPERTS];
	size_t		trainable_offset;	/* parameters from here on are learnt */
	size_t		n_params;
	int			n_tensors;
	moe_tensor_info *tensors;
} moe_layout;

moe_status	moe_layout_build(const moe_config *cfg, moe_layout *layout, moe_error *err);
void		moe_layout_free(moe_layout *layout);

typedef struct moe_model
{
	moe_config	cfg;
	moe_layout	layout;
	moe_backend *be;
	float	   *params;			/* backend memory, n_params floats */
	bool		owns_params;
	/* optional host copies of the pair layers for per-row scoring (infer.h) */
	const float *row_panels;
	float	   *owned_row_panels;
} moe_model;

/* A model with zeroed parameters in fresh backend memory. */
moe_status	moe_model_create(const moe_config *cfg, moe_backend *be, moe_model **out,
							 moe_error *err);
/* A model reading parameters in place (e.g. from shared memory); the
 * caller keeps params alive and unchanged for the model's lifetime. */
moe_status	moe_model_wrap(const moe_config *cfg, moe_backend *be, float *params,
						   moe_model **out, moe_error *err);
void		moe_model_free(moe_model *model);

/* PyTorch-style initialisation: Linear U(-1/sqrt(in), 1/sqrt(in)),
 * LayerNorm gamma 1 beta 0, identity input standardisation. */
moe_status	moe_model_init(moe_model *model, uint64_t seed, moe_error *err);

/* Host arrays of drug_dim / protein_dim values; scale is 1/std. */
void		moe_model_set_input_norm(moe_model *model, const float *drug_shift,
									 const float *drug_scale, const float *protein_shift,
									 const float *protein_scale);

/* Activations of one MLP for up to max_rows rows. */
typedef struct moe_block_acts
{
	float	   *pre;			/* Linear output, LayerNorm input */
	float	   *mean;
	float	   *rstd;
	float	   *act;			/* ReLU(LayerNorm(pre)) */
	float	   *mask;			/* dropout mask (training only) */
	float	   *out;			/* act * mask in training, else act */
} moe_block_acts;

typedef struct moe_mlp_acts
{
	moe_block_acts block[MOE_MAX_LAYERS];
	float	   *head;			/* head output */
} moe_mlp_acts;

/*
 * An encoder's first layer over a sparse entity table in training
 * (sparse.h): the table (NULL: the dense path), this batch's index
 * structures, and the buffers of the products.
 */
typedef struct moe_sparse_first
{
	const moe_sparse_table *table;
	moe_sparse_batch batch;		/* host */
	int32_t    *col_ptr;		/* backend copies of the batch's structures */
	int32_t    *ent;
	float	   *val;
	int32_t    *local;
	int32_t    *perm;
	int32_t    *seg_ptr;
	float	   *Wt;				/* [K, N] (W diag(scale))^T */
	float	   *dWt;			/* [K, N] */
	float	   *out;			/* [max_rows, N] the layer per distinct entity */
	float	   *d_out;			/* [max_rows, N] its gradient */
	float	   *neg_shift_scale;	/* [K] -(shift * scale) */
	float	   *bias_eff;		/* [N] b - W (shift * scale) */
} moe_sparse_first;

/* Everything one training forward and backward pass needs, sized for
 * max_rows.  (Inference has its own, smaller workspace: infer.h.) */
typedef struct moe_workspace
{
	int			max_rows;
	int			rows;			/* rows of the last forward */
	int32_t    *drug_idx;		/* backend copies of the batch's indices */
	int32_t    *protein_idx;
	float	   *x_drug;			/* standardised inputs [M, Dd], [M, Dp] */
	float	   *x_protein;
	moe_mlp_acts drug, protein, gate, experts;
	float	   *rep;			/* [M, R] */
	float	   *probs;			/* [M, E] */
	const float *logits;		/* [M, E] the gate head's output (clean) */
	float	   *noise_pre;		/* [M, E] noise head output (noisy gating) */
	float	   *noise_eps;		/* [M, E] the standard normals drawn */
	float	   *noisy_logits;	/* [M, E] logits + eps * softplus(noise_pre) */
	int32_t    *sel_idx;		/* [M, k] */
	float	   *sel_w;			/* [M, k] */
	float	   *sel_y;			/* [M, k] expert outputs per selected slot */
	float	   *pred;			/* [M] standardised */
	/* rows sorted by expert: position m*k+s of the selection, its row m */
	int32_t    *perm_pos;
	int32_t    *perm_row;
	float	   *x_expert;		/* [M*k, R] */
	int32_t    *host_sel_idx;	/* host copies */
	int32_t    *host_perm_pos;
	int32_t    *host_perm_row;
	int			expert_offset[MOE_MAX_EXPERTS + 1];
	/* gradients of activations */
	float	   *d_pred;
	float	   *d_sel_w;
	float	   *d_sel_y;
	float	   *d_y_expert;
	float	   *d_x_expert;
	float	   *d_rep;
	float	   *d_probs;
	float	   *d_logits;
	float	   *d_noise_pre;
	float	   *d_gate_last;	/* noise head's gradient into the gate's last layer */
	float	   *d_drug;
	float	   *d_protein;
	float	   *scratch_a;
	float	   *scratch_b;
	float	   *pbar;			/* [E] backend scratch for the mean gate probability */
	float	   *host_pbar;		/* [E] mean gate probability of the batch */
	double		zloss;			/* of the last forward: mean logsumexp(logits)^2 */
	double		row_entropy;	/* mean per-row entropy of probs / log E */
	moe_sparse_first sparse[2]; /* the drug and the protein encoder */
} moe_workspace;

moe_status	moe_workspace_create(const moe_model *model, int max_rows, moe_workspace **out,
								 moe_error *err);
/* What moe_workspace_create would allocate, in bytes (the model's
 * parameters may be absent: only its layout is read). */
size_t		moe_workspace_bytes(const moe_model *model, int max_rows);

/*
 * Train encoder (0: drug, 1: protein) of this workspace's model on the
 * sparse table (which must outlive the workspace) instead of dense rows:
 * moe_forward then reads that encoder's input from the table by the row
 * indices and never builds the standardised dense rows.  The model's
 * input standardisation must already be set.  Bytes it will allocate:
 * moe_sparse_first_bytes.
 */
moe_status	moe_workspace_use_sparse(const moe_model *model, moe_workspace *ws, int encoder,
									 const moe_sparse_table *table, moe_error *err);
/* ... for a table of n_rows vectors whose widest has widest non-zeros. */
size_t		moe_sparse_first_bytes(const moe_model *model, int encoder, int n_rows, int64_t widest,
								   int max_rows);
void		moe_workspace_free(const moe_model *model, moe_workspace *ws);

/*
 * Training forward pass over M <= max_rows rows, with dropout (masks derived
 * from dropout_key) and, when configured, noisy gating.  drug_table and
 * protein_table are backend arrays of entity vectors; drug_idx and
 * protein_idx (host) pick a row of each for every batch row.  Leaves pred,
 * probs, sel_idx, sel_w in ws, the batch's mean gate probabilities in
 * ws->host_pbar and the router diagnostics (zloss, row_entropy).
 */
moe_status	moe_forward(moe_model *model, moe_workspace *ws,
						const float *drug_table, const float *protein_table,
						const int32_t *drug_idx, const int32_t *protein_idx, int M,
						uint64_t dropout_key, moe_error *err);

/* The router's auxiliary terms as the backward needs them. */
typedef struct moe_router_grad
{
	const float *d_pbar;		/* host [E]: d(aux)/d(mean gate probability), or NULL */
	float		zloss_weight;	/* weight of the z-loss on the clean logits */
	float		row_entropy_weight; /* weight of the bonus -mean H(p_t) / log E */
	const float *d_logits_extra;	/* host [M, E] added to the gradient of the (noisy) logits, or NULL */
} moe_router_grad;

/*
 * Backward pass of the last forward.  d_pred (backend, [M]) is the loss
 * gradient with respect to ws->pred; router (may be NULL) adds the
 * auxiliary terms.  grads (backend, n_params) is overwritten in its
 * trainable part.
 */
moe_status	moe_backward(moe_model *model, moe_workspace *ws, float *grads,
						 const float *d_pred, const moe_router_grad *router, moe_error *err);

/*
 * Sort the M*k selections sel (row-major [M,k]) by expert, stably:
 * offset[e]..offset[e+1] are expert e's slots; slot s holds selection
 * perm_pos[s] of row perm_row[s].  Training and inference share it.
 */
void		moe_sort_by_expert(const int32_t *sel, int M, int E, int k, int *offset,
							   int32_t *perm_pos, int32_t *perm_row);

#endif
