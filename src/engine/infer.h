/*
 * infer.h — inference, factored by entity.
 *
 * The first layer of the gate and of every expert reads rep = [h_d | h_p],
 * so it splits: W . rep + b = (b + W_d . h_d) + W_p . h_p.  A drug's "part"
 * is its encoder output pushed through W_d of every first layer; a
 * protein's part likewise through W_p.  A pair then needs only an addition
 * and the later, small layers.  Entities are computed once per batch (and
 * the SQL layer caches them across calls), and since every path adds the
 * parts in the same order with the row-independent product, a pair scored
 * from cached parts, from fresh parts, alone or in a batch gets the same
 * bits.  Dropout is off and there is no noise: inference is deterministic.
 *
 * Part layout, part_floats = G1 + E * X1 values per entity:
 *   [0, G1)                   the gate's first layer (G1 = its width, or E
 *                             when the gate has no hidden layer)
 *   [G1 + e * X1, +X1)        expert e's first layer
 */
#ifndef MOE_INFER_H
#define MOE_INFER_H

#include <stdint.h>

#include "model.h"
#include "moe_status.h"
#include "router_stats.h"

typedef enum moe_entity_kind
{
	MOE_DRUG = 0,
	MOE_PROTEIN = 1
} moe_entity_kind;

typedef struct moe_infer_ws moe_infer_ws;

/* Pairs as indices into entity tables. */
typedef struct moe_rows
{
	int			n;
	const int32_t *drug_idx;
	const int32_t *protein_idx;
	const float *label;
} moe_rows;

/* Results of the last moe_infer_pairs / moe_infer_rows call. */
typedef struct moe_infer_out
{
	const float *pred;			/* backend [M], label units */
	const float *probs;			/* backend [M, E] */
	const float *sel_w;			/* backend [M, k] */
	const int32_t *host_sel;	/* host [M, k], best first */
} moe_infer_out;

/* Workspace for up to max_rows pairs (and as many entities) per call. */
moe_status	moe_infer_ws_create(const moe_model *model, int max_rows, moe_infer_ws **out,
								moe_error *err);
void		moe_infer_ws_free(const moe_model *model, moe_infer_ws *ws);
/* What moe_infer_ws_create would allocate, in bytes (only the model's
 * layout is read). */
size_t		moe_infer_ws_bytes(const moe_model *model, int max_rows);
int			moe_infer_ws_max_rows(const moe_infer_ws *ws);
const moe_infer_out *moe_infer_results(const moe_infer_ws *ws);

/* Values per entity part. */
int			moe_entity_part_floats(const moe_model *model);

/*
 * Row panels: a copy of the weights of the gate's and every expert's hidden
 * blocks after the first, rearranged so that a pair scored alone skips the
 * zeros of those blocks' ReLU inputs (gemm_rows.h).  They change no bits,
 * only how many weight bytes a lone pair streams; a backend without
 * linear_infer_row_sparse does not use them.  Parameters must be host
 * memory to pack them.
 */
size_t		moe_row_panels_floats(const moe_model *model);
void		moe_row_panels_pack(const moe_model *model, const float *params, float *panels);
/* Score with panels the caller keeps alive and unchanged (shared memory). */
void		moe_model_use_row_panels(moe_model *model, const float *panels);
/* Or with panels the model packs from its own parameters and owns. */
moe_status	moe_model_make_row_panels(moe_model *model, moe_error *err);

/*
 * Parts of n <= max_rows entities of one kind: row idx[i] (host index) of
 * table (backend, raw vectors) goes to row i of parts (backend,
 * [n, part_floats]).
 */
moe_status	moe_entity_parts(moe_model *model, moe_infer_ws *ws, moe_entity_kind kind,
							 const float *table, const int32_t *idx, int n, float *parts,
							 moe_error *err);

/*
 * M <= max_rows pairs: drug part drug_idx[m] of drug_parts and protein
 * part protein_idx[m] of protein_parts (backend tables; host indices).
 * When outputs (host [M, E]) is not NULL it also receives every expert's
 * output in label units.
 */
moe_status	moe_infer_pairs(moe_model *model, moe_infer_ws *ws, const float *drug_parts,
							const int32_t *drug_idx, const float *protein_parts,
							const int32_t *protein_idx, int M, float *outputs, moe_error *err);

/*
 * M <= max_rows rows over tables of raw vectors (backend; host indices):
 * each distinct entity of the batch is computed once, then the pairs.
 */
moe_status	moe_infer_rows(moe_model *model, moe_infer_ws *ws, const float *drug_table,
						   const int32_t *drug_idx, const float *protein_table,
						   const int32_t *protein_idx, int M, float *outputs, moe_error *err);

/*
 * Predictions in label units (host array out) for any number of rows whose
 * entities come back in many batches (validation): the part of every
 * entity of the tables is computed once, into drug_parts and
 * protein_parts (backend, n_drugs and n_proteins rows of part_floats),
 * then the pairs in batches of max_rows.  The same bits as
 * moe_predict_rows.
 */
moe_status	moe_predict_rows_whole(moe_model *model, moe_infer_ws *ws, const float *drug_table,
								   int n_drugs, const float *protein_table, int n_proteins,
								   const moe_rows *rows, float *drug_parts, float *protein_parts,
								   float *out, moe_error *err);

/*
 * Predictions in label units (host array out) for any number of rows over
 * entity tables of raw vectors (backend arrays; on a host backend, ordinary
 * host arrays), batch by batch through ws.
 */
moe_status	moe_predict_rows(moe_model *model, moe_infer_ws *ws, const float *drug_table,
							 const float *protein_table, const moe_rows *rows, float *out,
							 moe_error *err);

/* moe_predict_rows that also adds each row's routing (its gate
 * probabilities and its selections, best first) to usage. */
moe_status	moe_predict_rows_usage(moe_model *model, moe_infer_ws *ws, const float *drug_table,
								   const float *protein_table, const moe_rows *rows, float *out,
								   moe_usage_acc *usage, moe_error *err);

#endif
