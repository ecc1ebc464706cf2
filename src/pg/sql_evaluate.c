/*
 * sql_evaluate.c — moe_evaluate(model, dataset, split, fold).
 */
#include "evaluation_rows.h"

#include <math.h>

#include "funcapi.h"
#include "utils/memutils.h"

#include "metrics.h"

static void
evaluate(FunctionCallInfo fcinfo, bool by_name)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	evaluation_rows	mr;
	float	   *pred;
	moe_metrics m;
	moe_error	err;
	Datum		values[8];
	bool		nulls[8] = {false};

	evaluation_rows_from_args(&mr, fcinfo, by_name, NULL);
	pred = palloc_extended(sizeof(float) * mr.rows.n, MCXT_ALLOC_HUGE);
	evaluation_rows_infer(&mr, pred, NULL, NULL, NULL, NULL);
	moe_check(moe_compute_metrics(mr.rows.label, pred, mr.rows.n, &m, &err), &err);

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
	evaluate(fcinfo, false);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moe_evaluate_by_name);
Datum
moe_evaluate_by_name(PG_FUNCTION_ARGS)
{
	evaluate(fcinfo, true);
	return (Datum) 0;
}
