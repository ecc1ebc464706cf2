/*
 * predict.c — inference from plain vectors.
 */
#include "predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

moe_status
moe_check_finite(const float *x, int n, const char *what, moe_error *err)
{
	for (int i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return moe_fail(err, MOE_ERR_DATA, "%s element %d is %s", what, i + 1,
							isnan(x[i]) ? "NaN" : "infinite");
	return MOE_OK;
}

moe_status
moe_infer_vectors(moe_model *model, moe_infer_ws *ws, const float *drug, const float *protein,
				  int M, float *pred, moe_routing *routing, float *outputs, moe_error *err)
{
	moe_backend *be = model->be;
	const moe_config *c = &model->cfg;
	const float *drug_table = drug,
			   *protein_table = protein;
	float	   *staged_drug = NULL,
			   *staged_protein = NULL;
	int32_t    *identity;
	moe_status	st;

	if (M < 1 || M > moe_infer_ws_max_rows(ws))
		return moe_fail(err, MOE_ERR_INVALID, "cannot predict %d rows with a workspace of %d",
						M, moe_infer_ws_max_rows(ws));
	identity = malloc(sizeof(int32_t) * M);
	if (identity == NULL)
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory");
	for (int i = 0; i < M; i++)
		identity[i] = i;

	/* On a device backend the rows go up first; on the CPU they are used
	 * where they are. */
	if (!be->host_memory)
	{
		staged_drug = be->alloc(be, sizeof(float) * (size_t) M * c->drug_dim);
		staged_protein = be->alloc(be, sizeof(float) * (size_t) M * c->protein_dim);
		if (staged_drug == NULL || staged_protein == NULL)
		{
			be->release(be, staged_drug);
			be->release(be, staged_protein);
			free(identity);
			return moe_fail(err, MOE_ERR_NOMEM, "out of device memory for %d rows", M);
		}
		be->upload(be, staged_drug, drug, sizeof(float) * (size_t) M * c->drug_dim);
		be->upload(be, staged_protein, protein, sizeof(float) * (size_t) M * c->protein_dim);
		drug_table = staged_drug;
		protein_table = staged_protein;
	}

	st = moe_infer_rows(model, ws, drug_table, identity, protein_table, identity, M, outputs, err);
	if (st == MOE_OK)
	{
		const moe_infer_out *r = moe_infer_results(ws);

		memcpy(pred, r->pred, sizeof(float) * M);
		if (routing != NULL)
		{
			memcpy(routing->probs, r->probs, sizeof(float) * (size_t) M * c->n_experts);
			memcpy(routing->weights, r->sel_w, sizeof(float) * (size_t) M * c->top_k);
			memcpy(routing->selected, r->host_sel, sizeof(int32_t) * (size_t) M * c->top_k);
		}
	}
	be->release(be, staged_drug);
	be->release(be, staged_protein);
	free(identity);
	return st;
}
