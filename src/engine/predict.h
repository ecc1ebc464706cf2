/*
 * predict.h — inference from plain vectors, for the SQL functions.
 *
 * Inference is deterministic and row-independent: dropout is off, routing
 * has no capacity limit, and each row's answer depends only on that row
 * (infer.h).
 */
#ifndef MOE_PREDICT_H
#define MOE_PREDICT_H

#include <stdint.h>

#include "infer.h"
#include "model.h"
#include "moe_status.h"

/* Routing of each row, as returned by moe_infer_vectors (host arrays). */
typedef struct moe_routing
{
	float	   *probs;			/* [M, E] gate probabilities */
	int32_t    *selected;		/* [M, k] chosen experts, best first */
	float	   *weights;		/* [M, k] their renormalised weights */
} moe_routing;

/*
 * Predict M rows from host vectors drug [M, drug_dim] and protein
 * [M, protein_dim] into pred (label units), M <= the workspace's rows.
 * routing and outputs ([M, E], every expert's output) may be NULL.
 */
moe_status	moe_infer_vectors(moe_model *model, moe_infer_ws *ws, const float *drug,
							  const float *protein, int M, float *pred, moe_routing *routing,
							  float *outputs, moe_error *err);

/* Reject vectors with NaN or infinite values: MOE_ERR_DATA naming the
 * 1-based element. */
moe_status	moe_check_finite(const float *x, int n, const char *what, moe_error *err);

#endif
