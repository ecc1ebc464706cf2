/*
 * sql_usage.c — router statistics in SQL: moe_router_stats() over given
 * per-expert numbers, and the aggregate moe_usage(probs, selected) over rows
 * of routing, which parallel query can split (combine, serialise,
 * deserialise).  The arithmetic, the checks and the serialised format are
 * the engine's (src/engine/router_stats.c); this is the glue.
 */
#include "glue.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "router_stats.h"

#define SUMMARY_COLUMNS 24

static Datum
float8_array(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
int8_array(const int64_t *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* The composite moe.router_summary; leads may be NULL (its columns NULL). */
static Datum
summary_datum(FunctionCallInfo fcinfo, const moe_router_stats *st, const double *mean_prob,
			  const int64_t *selections, const int64_t *leads, int64 n, bool have_n,
			  bool have_row_entropy)
{
	TupleDesc	desc;
	Datum		values[SUMMARY_COLUMNS];
	bool		nulls[SUMMARY_COLUMNS] = {false};
	int			E = st->n_experts;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be moe.router_summary");
	if (desc->natts != SUMMARY_COLUMNS)
		elog(ERROR, "moe.router_summary has %d columns, expected %d", desc->natts,
			 SUMMARY_COLUMNS);
	values[0] = Int64GetDatum(n);
	nulls[0] = !have_n;
	values[1] = float8_array(mean_prob, E);
	values[2] = float8_array(st->share, E);
	values[3] = int8_array(selections, E);
	values[4] = float8_array(st->selection_fraction, E);
	values[5] = Float8GetDatum(st->cv);
	values[6] = Float8GetDatum(st->max_min_ratio);
	values[7] = Float8GetDatum(st->gini);
	values[8] = Float8GetDatum(st->balance_entropy);
	values[9] = Float8GetDatum(st->normalized_entropy);
	values[10] = Float8GetDatum(st->row_entropy);
	nulls[10] = !have_row_entropy;
	values[11] = Float8GetDatum(st->max_violation);
	values[12] = Int32GetDatum(st->dead_experts);
	values[13] = Int32GetDatum(st->dominant_expert);
	values[14] = CStringGetTextDatum(moe_router_status_name(st->status));
	/* the two views side by side, and the leads when known */
	values[15] = leads != NULL ? int8_array(leads, E) : (Datum) 0;
	values[16] = leads != NULL ? float8_array(st->lead_fraction, E) : (Datum) 0;
	values[17] = Float8GetDatum(st->selection_cv);
	values[18] = Float8GetDatum(st->selection_max_min_ratio);
	values[19] = Float8GetDatum(st->lead_cv);
	values[20] = Float8GetDatum(st->lead_max_min_ratio);
	values[21] = CStringGetTextDatum(moe_router_status_name(st->probability_status));
	values[22] = CStringGetTextDatum(moe_router_status_name(st->selection_status));
	values[23] = CStringGetTextDatum(moe_router_status_name(st->lead_status));
	nulls[15] = nulls[16] = nulls[19] = nulls[20] = nulls[23] = leads == NULL;
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

static void
invalid(const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message)));
}

/* A one-dimensional array argument's elements (none for '{}'), no NULLs. */
static int
array_elements(ArrayType *arr, const char *what, Oid elemtype, int elemlen, bool byval,
			   char align, Datum **elems)
{
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional", what,
						ARR_NDIM(arr))));
	deconstruct_array(arr, elemtype, elemlen, byval, align, elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL (element %d is)", what, i + 1)));
	return n;
}

/* ---- moe_router_stats(mean_prob, selections, row_entropy, leads) ------- */

PG_FUNCTION_INFO_V1(moe_router_stats_sql);
Datum
moe_router_stats_sql(PG_FUNCTION_ARGS)
{
	Datum	   *pe,
			   *se;
	int			np,
				ns;
	double		prob[MOE_ROUTER_MAX_EXPERTS],
				total = 0,
				row_entropy = 0.0;
	int64_t		sel[MOE_ROUTER_MAX_EXPERTS],
				leads[MOE_ROUTER_MAX_EXPERTS],
				picks = 0;
	moe_router_stats st;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mean_prob and selections must not be NULL")));
	np = array_elements(PG_GETARG_ARRAYTYPE_P(0), "mean_prob", FLOAT8OID, 8, FLOAT8PASSBYVAL,
						TYPALIGN_DOUBLE, &pe);
	ns = array_elements(PG_GETARG_ARRAYTYPE_P(1), "selections", INT8OID, 8, FLOAT8PASSBYVAL,
						TYPALIGN_DOUBLE, &se);
	if (np == 0)
		invalid("mean_prob and selections must not be empty");
	if (np != ns)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mean_prob has %d elements and selections %d; they must have one per expert",
						np, ns)));
	if (np > MOE_ROUTER_MAX_EXPERTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d experts, not %d", MOE_ROUTER_MAX_EXPERTS, np)));
	for (int i = 0; i < np; i++)
	{
		prob[i] = DatumGetFloat8(pe[i]);
		sel[i] = DatumGetInt64(se[i]);
		if (!isfinite(prob[i]) || prob[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mean_prob element %d is %g; it must be finite and non-negative",
							i + 1, prob[i])));
		if (sel[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("selections element %d is negative", i + 1)));
		if (pg_add_s64_overflow(picks, sel[i], &picks))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("selections sum to more than a bigint holds")));
		total += prob[i];
	}
	if (!(total > 0))
		invalid("mean_prob must not be all zero");
	if (!isfinite(total))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("mean_prob sums to more than a double precision holds")));
	if (!PG_ARGISNULL(2))
	{
		/* a mean of per-row entropies divided by ln E */
		row_entropy = PG_GETARG_FLOAT8(2);
		if (!(row_entropy >= 0.0 && row_entropy <= 1.0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row_entropy must be between 0 and 1 (entropy / ln E), not %g", row_entropy)));
	}
	if (!PG_ARGISNULL(3))
	{
		Datum	   *le;
		int64		led = 0;
		int			nl = array_elements(PG_GETARG_ARRAYTYPE_P(3), "leads", INT8OID, 8, FLOAT8PASSBYVAL,
										TYPALIGN_DOUBLE, &le);

		if (nl != np)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("mean_prob has %d elements and leads %d; they must have one per expert",
							np, nl)));
		for (int i = 0; i < np; i++)
		{
			leads[i] = DatumGetInt64(le[i]);
			if (leads[i] < 0 || leads[i] > sel[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("leads element %d is %lld; it must be between 0 and the expert's selections (%lld)",
								i + 1, (long long) leads[i], (long long) sel[i])));
			led += leads[i];
		}
		if (led == 0)
			invalid("leads must not be all zero");
	}
	moe_router_stats_compute(prob, sel, PG_ARGISNULL(3) ? NULL : leads, np, row_entropy, &st);
	PG_RETURN_DATUM(summary_datum(fcinfo, &st, prob, sel, PG_ARGISNULL(3) ? NULL : leads, 0, false,
								  !PG_ARGISNULL(2)));
}

/* ---- the aggregate moe_usage(probs real[], selected integer[]) -------- */

/*
 * The state is a moe_usage_acc allocated in the aggregate's memory context
 * the first time the transition or combine function sees none.
 */
static moe_usage_acc *
state_arg(FunctionCallInfo fcinfo, MemoryContext aggcxt)
{
	moe_usage_acc *acc;

	if (!PG_ARGISNULL(0))
		return (moe_usage_acc *) PG_GETARG_POINTER(0);
	acc = MemoryContextAlloc(aggcxt, sizeof(moe_usage_acc));
	moe_usage_init(acc);
	return acc;
}

PG_FUNCTION_INFO_V1(moe_usage_transfn);
Datum
moe_usage_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	moe_usage_acc *acc;
	Datum	   *pe,
			   *se;
	int			E,
				k;
	float		probs[MOE_ROUTER_MAX_EXPERTS];
	int32_t		selected[MOE_ROUTER_MAX_EXPERTS];
	moe_error	err;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "moe_usage_transfn called in a non-aggregate context");
	acc = state_arg(fcinfo, aggcxt);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(acc); /* like other aggregates, skip NULL rows */

	E = array_elements(PG_GETARG_ARRAYTYPE_P(1), "probs", FLOAT4OID, 4, true, TYPALIGN_INT, &pe);
	k = array_elements(PG_GETARG_ARRAYTYPE_P(2), "selected", INT4OID, 4, true, TYPALIGN_INT, &se);
	if (E == 0)
		invalid("probs must not be empty");
	if (E > MOE_ROUTER_MAX_EXPERTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d experts, not %d", MOE_ROUTER_MAX_EXPERTS, E)));
	if (k > E)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("selected lists %d experts of %d", k, E)));
	for (int i = 0; i < E; i++)
		probs[i] = DatumGetFloat4(pe[i]);
	for (int j = 0; j < k; j++)
		selected[j] = DatumGetInt32(se[j]);
	moe_check(moe_usage_add(acc, probs, E, selected, k, &err), &err);
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(moe_usage_combinefn);
Datum
moe_usage_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	moe_usage_acc *acc;
	moe_error	err;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "moe_usage_combinefn called in a non-aggregate context");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	/* never keep the second state: it may live in a shorter-lived context */
	acc = state_arg(fcinfo, aggcxt);
	moe_check(moe_usage_merge(acc, (const moe_usage_acc *) PG_GETARG_POINTER(1), &err), &err);
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(moe_usage_serialfn);
Datum
moe_usage_serialfn(PG_FUNCTION_ARGS)
{
	const moe_usage_acc *acc = (const moe_usage_acc *) PG_GETARG_POINTER(0);
	size_t		len = moe_usage_serial_size(acc);
	bytea	   *out = palloc(VARHDRSZ + len);

	SET_VARSIZE(out, VARHDRSZ + len);
	moe_usage_serialize(acc, (uint8_t *) VARDATA(out));
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(moe_usage_deserialfn);
Datum
moe_usage_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	moe_usage_acc *acc = palloc(sizeof(moe_usage_acc));
	moe_error	err;

	moe_check(moe_usage_deserialize((const uint8_t *) VARDATA_ANY(in), VARSIZE_ANY_EXHDR(in),
									acc, &err), &err);
	PG_RETURN_POINTER(acc);
}

PG_FUNCTION_INFO_V1(moe_usage_finalfn);
Datum
moe_usage_finalfn(PG_FUNCTION_ARGS)
{
	const moe_usage_acc *acc;
	double		mean[MOE_ROUTER_MAX_EXPERTS];
	moe_router_stats st;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	acc = (const moe_usage_acc *) PG_GETARG_POINTER(0);
	if (!moe_usage_finish(acc, mean, &st))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(summary_datum(fcinfo, &st, mean, acc->selections, acc->leads, acc->n, true, true));
}
