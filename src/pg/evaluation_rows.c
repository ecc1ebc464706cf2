/*
 * evaluation_rows.c — see evaluation_rows.h.
 */
#include "evaluation_rows.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "spi_safe.h"

/* The dataset and fold a model was trained on, from moe.models. */
static void
model_origin(int64 id, char **dataset, int *fold, bool *has_fold)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	MemoryContext outer = CurrentMemoryContext;
	bool		isnull;
	Datum		d;

	*dataset = NULL;
	*has_fold = false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute("SELECT dataset, fold FROM moe.models WHERE id = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
	if (SPI_processed == 1)
	{
		char	   *ds = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (ds != NULL)
			*dataset = MemoryContextStrdup(outer, ds);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			*fold = DatumGetInt32(d);
			*has_fold = true;
		}
	}
	SPI_finish();
}

void
evaluation_rows_read(evaluation_rows *mr, int64 model_id, const char *dataset, const char *split,
				bool fold_given, int fold, const char *extra_column)
{
	const moe_config *c;
	int			first = -1,
				last = -1,
				total = 0,
				at = 0;
	char	   *own_dataset = NULL;
	int			own_fold = 0;
	bool		has_own_fold = false;

	memset(mr, 0, sizeof(*mr));
	mr->model_id = model_id;
	mr->lm = moe_model_by_id(model_id);
	c = &mr->lm->model->cfg;

	model_origin(model_id, &own_dataset, &own_fold, &has_own_fold);
	mr->dataset = dataset != NULL ? pstrdup(dataset) : own_dataset;
	if (mr->dataset == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model %lld records no dataset, so dataset must be given", (long long) model_id)));
	mr->fold = fold_given ? fold : has_own_fold ? own_fold : 0;
	if (split == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("split must be 'train', 'valid', 'test' or 'all'")));
	if (strcmp(split, "all") == 0)
		first = MOE_SPLIT_TRAIN, last = MOE_SPLIT_TEST;
	else
		for (int s = 0; s < MOE_N_SPLITS; s++)
			if (strcmp(split, moe_split_name(s)) == 0)
				first = last = s;
	if (first < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown split \"%s\" (valid: train, valid, test, all)", split)));

	mr->def = moe_dataset_lookup(mr->dataset);
	if (fold_given && fold != 0 && mr->def->fold_col == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dataset \"%s\" has no fold column, so fold must be 0 or NULL", mr->dataset)));
	moe_dataset_read(mr->def, mr->fold, extra_column, &mr->data);
	for (int s = first; s <= last; s++)
		total += mr->data.split[s].n;
	if (total == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset \"%s\" has no %s rows%s", mr->dataset, split,
						mr->def->fold_col ? psprintf(" in fold %d", mr->fold) : "")));
	if (mr->data.drug_dim != c->drug_dim || mr->data.protein_dim != c->protein_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("dataset \"%s\" has vectors of %d and %d values, model %lld expects %d and %d",
						mr->dataset, mr->data.drug_dim, mr->data.protein_dim, (long long) model_id,
						c->drug_dim, c->protein_dim)));

	/* concatenate the chosen splits */
	{
		int32	   *di = palloc_extended(sizeof(int32) * total, MCXT_ALLOC_HUGE);
		int32	   *pi = palloc_extended(sizeof(int32) * total, MCXT_ALLOC_HUGE);
		float	   *y = palloc_extended(sizeof(float) * total, MCXT_ALLOC_HUGE);

		mr->split = palloc_extended(total, MCXT_ALLOC_HUGE);
		if (extra_column != NULL)
			mr->extra = palloc_extended(sizeof(char *) * total, MCXT_ALLOC_HUGE);
		for (int s = first; s <= last; s++)
		{
			const moe_split_rows *sr = &mr->data.split[s];

			memcpy(di + at, sr->drug_idx, sizeof(int32) * sr->n);
			memcpy(pi + at, sr->protein_idx, sizeof(int32) * sr->n);
			memcpy(y + at, sr->label, sizeof(float) * sr->n);
			memset(mr->split + at, s, sr->n);
			if (extra_column != NULL)
				memcpy(mr->extra + at, sr->extra, sizeof(char *) * sr->n);
			at += sr->n;
		}
		mr->rows.n = total;
		mr->rows.drug_idx = di;
		mr->rows.protein_idx = pi;
		mr->rows.label = y;
	}
}

void
evaluation_rows_from_args(evaluation_rows *mr, FunctionCallInfo fcinfo, bool by_name, const char *extra_column)
{
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	id = by_name ? moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0))) : PG_GETARG_INT64(0);
	evaluation_rows_read(mr, id,
					PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
					PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
					!PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3), extra_column);
}

void
evaluation_rows_infer(evaluation_rows *mr, float *pred, float *probs, int32 *selected, float *weights,
				 float *outputs)
{
	moe_model  *model = mr->lm->model;
	moe_infer_ws *ws = moe_loaded_batch_ws(mr->lm);
	const moe_infer_out *r = moe_infer_results(ws);
	const int	E = model->cfg.n_experts,
				k = model->cfg.top_k;
	moe_error	err;

	for (int from = 0; from < mr->rows.n; from += MOE_INFER_BATCH)
	{
		int			M = mr->rows.n - from < MOE_INFER_BATCH ? mr->rows.n - from : MOE_INFER_BATCH;

		CHECK_FOR_INTERRUPTS();
		moe_check(moe_infer_rows(model, ws, mr->data.drug_vec, mr->rows.drug_idx + from,
								 mr->data.protein_vec, mr->rows.protein_idx + from, M,
								 outputs ? outputs + (size_t) from * E : NULL, &err), &err);
		if (pred != NULL)
			memcpy(pred + from, r->pred, sizeof(float) * M);
		if (probs != NULL)
			memcpy(probs + (size_t) from * E, r->probs, sizeof(float) * M * E);
		if (weights != NULL)
			memcpy(weights + (size_t) from * k, r->sel_w, sizeof(float) * M * k);
		if (selected != NULL)
			memcpy(selected + (size_t) from * k, r->host_sel, sizeof(int32) * M * k);
	}
}
