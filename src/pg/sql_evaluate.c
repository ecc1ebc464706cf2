/*
 * sql_evaluate.c — moe_evaluate(model, dataset, split, fold).
 */
#include "moe_pg.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "dataset.h"
#include "metrics.h"
#include "train.h"

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
	if (SPI_execute_with_args("SELECT dataset, fold FROM moe.models WHERE id = $1",
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

/* Append the rows of split s of data to the engine rows in *all. */
static void
append_split(moe_rows *all, const moe_split_rows *s)
{
	int32	   *di = (int32 *) all->drug_idx,
			   *pi = (int32 *) all->protein_idx;
	float	   *y = (float *) all->label;

	memcpy(di + all->n, s->drug_idx, sizeof(int32) * s->n);
	memcpy(pi + all->n, s->protein_idx, sizeof(int32) * s->n);
	memcpy(y + all->n, s->label, sizeof(float) * s->n);
	all->n += s->n;
}

static void
evaluate(FunctionCallInfo fcinfo, int64 id)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	moe_loaded_model *lm = moe_model_by_id(id);
	const moe_config *c = &lm->model->cfg;
	char	   *dataset = NULL;
	char	   *split = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int			fold = 0;
	bool		has_fold = false;
	moe_dataset_def *def;
	moe_dataset_data data;
	moe_rows	rows = {0};
	float	   *pred;
	moe_metrics m;
	moe_error	err;
	int			first,
				last,
				total = 0;
	Datum		values[8];
	bool		nulls[8] = {false};

	model_origin(id, &dataset, &fold, &has_fold);
	if (!PG_ARGISNULL(1))
		dataset = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (dataset == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model %lld records no dataset, so dataset must be given", (long long) id)));
	if (!PG_ARGISNULL(3))
		fold = PG_GETARG_INT32(3);
	if (split == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("split must be 'train', 'valid', 'test' or 'all'")));
	if (strcmp(split, "all") == 0)
		first = MOE_SPLIT_TRAIN, last = MOE_SPLIT_TEST;
	else
	{
		first = -1;
		for (int s = 0; s < MOE_N_SPLITS; s++)
			if (strcmp(split, moe_split_name(s)) == 0)
				first = last = s;
		if (first < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown split \"%s\" (valid: train, valid, test, all)", split)));
	}

	def = moe_dataset_lookup(dataset);
	moe_dataset_read(def, fold, &data);
	for (int s = first; s <= last; s++)
		total += data.split[s].n;
	if (total == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("dataset \"%s\" has no %s rows%s", dataset, split,
						def->fold_col ? psprintf(" in fold %d", fold) : "")));
	if (data.drug_dim != c->drug_dim || data.protein_dim != c->protein_dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("dataset \"%s\" has vectors of %d and %d values, model %lld expects %d and %d",
						dataset, data.drug_dim, data.protein_dim, (long long) id, c->drug_dim,
						c->protein_dim)));

	rows.drug_idx = palloc_extended(sizeof(int32) * total, MCXT_ALLOC_HUGE);
	rows.protein_idx = palloc_extended(sizeof(int32) * total, MCXT_ALLOC_HUGE);
	rows.label = palloc_extended(sizeof(float) * total, MCXT_ALLOC_HUGE);
	for (int s = first; s <= last; s++)
		append_split(&rows, &data.split[s]);
	pred = palloc_extended(sizeof(float) * total, MCXT_ALLOC_HUGE);

	/* Batch by batch, checking for cancel between batches. */
	for (int from = 0; from < rows.n; from += MOE_INFER_BATCH)
	{
		moe_rows	part = {rows.n - from < MOE_INFER_BATCH ? rows.n - from : MOE_INFER_BATCH,
			rows.drug_idx + from, rows.protein_idx + from, rows.label + from};

		CHECK_FOR_INTERRUPTS();
		moe_check(moe_predict_rows(lm->model, lm->ws, data.drug_vec, data.protein_vec, &part,
								   pred + from, &err), &err);
	}
	moe_check(moe_compute_metrics(rows.label, pred, rows.n, &m, &err), &err);

	InitMaterializedSRF(fcinfo, 0);
	values[0] = Int64GetDatum(m.n);
	values[1] = Float8GetDatum(m.mse);
	values[2] = Float8GetDatum(m.rmse);
	values[3] = Float8GetDatum(m.ci);
	values[4] = Float8GetDatum(m.r2);
	values[5] = Float8GetDatum(m.pearson);
	values[6] = Float8GetDatum(m.spearman);
	values[7] = Float8GetDatum(m.rm2);
	for (int i = 3; i < 8; i++)
		nulls[i] = isnan(DatumGetFloat8(values[i]));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(moe_evaluate_by_id);
Datum
moe_evaluate_by_id(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	evaluate(fcinfo, PG_GETARG_INT64(0));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moe_evaluate_by_name);
Datum
moe_evaluate_by_name(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model must not be NULL")));
	evaluate(fcinfo, moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	return (Datum) 0;
}
