/*
 * sql_usage.c — router statistics in SQL: moe_router_stats() over given
 * per-expert numbers, and the aggregate moe_usage(probs, selected) over
 * per-row routing, which parallel query can split (combine, serialise,
 * deserialise).
 */
#include "moe_pg.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "router_stats.h"

#define USAGE_STATE_VERSION 1

typedef struct usage_state
{
	int			E;				/* 0 until the first row */
	int64		n;				/* rows */
	double		row_entropy;	/* sum of per-row H(p) / ln E */
	double		prob[MOE_ROUTER_MAX_EXPERTS];	/* sums of gate probabilities */
	int64		selections[MOE_ROUTER_MAX_EXPERTS];
} usage_state;

/* The composite moe.router_summary. */
static Datum
summary_datum(FunctionCallInfo fcinfo, const moe_router_stats *st, const double *mean_prob,
			  const int64 *selections, int64 n, bool have_n, bool have_row_entropy)
{
	TupleDesc	desc;
	Datum		values[15];
	bool		nulls[15] = {false};
	Datum	   *mp = palloc(sizeof(Datum) * st->n_experts),
			   *sh = palloc(sizeof(Datum) * st->n_experts),
			   *sel = palloc(sizeof(Datum) * st->n_experts),
			   *frac = palloc(sizeof(Datum) * st->n_experts);
	int			E = st->n_experts;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be moe.router_summary");
	for (int i = 0; i < E; i++)
	{
		mp[i] = Float8GetDatum(mean_prob[i]);
		sh[i] = Float8GetDatum(st->share[i]);
		sel[i] = Int64GetDatum(selections[i]);
		frac[i] = Float8GetDatum(st->selection_fraction[i]);
	}
	values[0] = Int64GetDatum(n);
	nulls[0] = !have_n;
	values[1] = PointerGetDatum(construct_array(mp, E, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(sh, E, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(sel, E, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[4] = PointerGetDatum(construct_array(frac, E, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
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
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

/* ---- moe_router_stats(mean_prob, selections, row_entropy) ------------- */

static void
bad_value(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", what)));
}

PG_FUNCTION_INFO_V1(moe_router_stats_sql);
Datum
moe_router_stats_sql(PG_FUNCTION_ARGS)
{
	ArrayType  *pa,
			   *sa;
	Datum	   *pe,
			   *se;
	bool	   *pn,
			   *sn;
	int			np,
				ns;
	double		prob[MOE_ROUTER_MAX_EXPERTS],
				total = 0;
	int64		sel[MOE_ROUTER_MAX_EXPERTS];
	moe_router_stats st;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mean_prob and selections must not be NULL")));
	pa = PG_GETARG_ARRAYTYPE_P(0);
	sa = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(pa) > 1 || ARR_NDIM(sa) > 1)
		bad_value("mean_prob and selections must be one-dimensional arrays");
	deconstruct_array(pa, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &pe, &pn, &np);
	deconstruct_array(sa, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &se, &sn, &ns);
	if (np == 0 || np != ns)
		bad_value("mean_prob and selections must be non-empty and of the same length");
	if (np > MOE_ROUTER_MAX_EXPERTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d experts, not %d", MOE_ROUTER_MAX_EXPERTS, np)));
	for (int i = 0; i < np; i++)
	{
		if (pn[i] || sn[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("mean_prob and selections must not contain NULL")));
		prob[i] = DatumGetFloat8(pe[i]);
		sel[i] = DatumGetInt64(se[i]);
		if (!(prob[i] >= 0) || !isfinite(prob[i]) || sel[i] < 0)
			bad_value("mean_prob and selections must be non-negative finite numbers");
		total += prob[i];
	}
	if (total <= 0)
		bad_value("mean_prob must not be all zero");
	moe_router_stats_compute(prob, sel, np, PG_ARGISNULL(2) ? 0.0 : PG_GETARG_FLOAT8(2), &st);
	PG_RETURN_DATUM(summary_datum(fcinfo, &st, prob, sel, 0, false, !PG_ARGISNULL(2)));
}

/* ---- the aggregate moe_usage(probs real[], selected integer[]) -------- */

static usage_state *
state_arg(FunctionCallInfo fcinfo, int argno, MemoryContext aggcxt)
{
	if (PG_ARGISNULL(argno))
		return MemoryContextAllocZero(aggcxt, sizeof(usage_state));
	return (usage_state *) PG_GETARG_POINTER(argno);
}

PG_FUNCTION_INFO_V1(moe_usage_transfn);
Datum
moe_usage_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	usage_state *s;
	ArrayType  *probs,
			   *selected;
	const float *p;
	int			E;
	double		h = 0;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "moe_usage_transfn called in a non-aggregate context");
	s = state_arg(fcinfo, 0, aggcxt);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);	/* like other aggregates, skip NULL rows */
	probs = PG_GETARG_ARRAYTYPE_P(1);
	selected = PG_GETARG_ARRAYTYPE_P(2);
	p = moe_vector_arg(probs, "probs", 0, &E);
	if (s->E > 0 && E != s->E)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("probs has %d elements in this row and %d in earlier ones", E, s->E)));
	if (E > MOE_ROUTER_MAX_EXPERTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d experts, not %d", MOE_ROUTER_MAX_EXPERTS, E)));
	s->E = E;
	s->n++;
	for (int i = 0; i < E; i++)
	{
		s->prob[i] += p[i];
		if (p[i] > 0)
			h -= p[i] * log(p[i]);
	}
	s->row_entropy += E > 1 ? h / log((double) E) : 0.0;
	{
		Datum	   *elems;
		bool	   *nulls;
		int			k;

		if (ARR_NDIM(selected) > 1)
			bad_value("selected must be a one-dimensional array");
		deconstruct_array(selected, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &k);
		for (int j = 0; j < k; j++)
		{
			int			x;

			if (nulls[j])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("selected must not contain NULL")));
			x = DatumGetInt32(elems[j]);
			if (x < 0 || x >= E)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("selected expert %d is outside 0..%d", x, E - 1)));
			s->selections[x]++;
		}
	}
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(moe_usage_combinefn);
Datum
moe_usage_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	usage_state *a,
			   *b;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "moe_usage_combinefn called in a non-aggregate context");
	a = state_arg(fcinfo, 0, aggcxt);
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(a);
	b = (usage_state *) PG_GETARG_POINTER(1);
	if (b->E == 0)
		PG_RETURN_POINTER(a);
	if (a->E == 0)
		a->E = b->E;
	else if (a->E != b->E)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("probs has %d elements in some rows and %d in others", a->E, b->E)));
	a->n += b->n;
	a->row_entropy += b->row_entropy;
	for (int i = 0; i < a->E; i++)
	{
		a->prob[i] += b->prob[i];
		a->selections[i] += b->selections[i];
	}
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(moe_usage_serialfn);
Datum
moe_usage_serialfn(PG_FUNCTION_ARGS)
{
	usage_state *s = (usage_state *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, USAGE_STATE_VERSION);
	pq_sendint32(&buf, s->E);
	pq_sendint64(&buf, s->n);
	pq_sendfloat8(&buf, s->row_entropy);
	for (int i = 0; i < s->E; i++)
	{
		pq_sendfloat8(&buf, s->prob[i]);
		pq_sendint64(&buf, s->selections[i]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(moe_usage_deserialfn);
Datum
moe_usage_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	size_t		len = VARSIZE_ANY_EXHDR(b);
	StringInfoData buf;
	usage_state *s = palloc0(sizeof(usage_state));

	/* checked before reading: a damaged state is an error, never an overread */
	if (len < 21 || ((const unsigned char *) VARDATA_ANY(b))[0] != USAGE_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid moe_usage state")));
	buf.data = VARDATA_ANY(b);
	buf.len = len;
	buf.maxlen = len;
	buf.cursor = 1;
	s->E = pq_getmsgint(&buf, 4);
	if (s->E < 0 || s->E > MOE_ROUTER_MAX_EXPERTS || len != 21 + (size_t) s->E * 16)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid moe_usage state")));
	s->n = pq_getmsgint64(&buf);
	s->row_entropy = pq_getmsgfloat8(&buf);
	for (int i = 0; i < s->E; i++)
	{
		s->prob[i] = pq_getmsgfloat8(&buf);
		s->selections[i] = pq_getmsgint64(&buf);
	}
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(moe_usage_finalfn);
Datum
moe_usage_finalfn(PG_FUNCTION_ARGS)
{
	usage_state *s;
	double		mean[MOE_ROUTER_MAX_EXPERTS];
	moe_router_stats st;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (usage_state *) PG_GETARG_POINTER(0);
	if (s->n == 0)
		PG_RETURN_NULL();
	for (int i = 0; i < s->E; i++)
		mean[i] = s->prob[i] / s->n;
	moe_router_stats_compute(mean, s->selections, s->E, s->row_entropy / s->n, &st);
	PG_RETURN_DATUM(summary_datum(fcinfo, &st, mean, s->selections, s->n, true, true));
}
