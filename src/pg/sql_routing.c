/*
 * sql_routing.c — looking inside a model's routing: per pair (moe_gate,
 * moe_expert_outputs) and over a dataset (moe_routing, moe_specialization,
 * moe_expert_profile, moe_expert_agreement, moe_cluster_recovery).
 *
 * Each function takes the model by id or by name (two SQL overloads, one C
 * entry point that looks at the argument's type).
 */
#include "evaluation_rows.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "agreement.h"
#include "entity_cache.h"
#include "predict.h"

static bool
model_arg_is_name(FunctionCallInfo fcinfo, int argno)
{
	return get_fn_expr_argtype(fcinfo->flinfo, argno) == TEXTOID;
}

/* Resolve a model argument of either type. */
static moe_loaded_model *
model_arg(FunctionCallInfo fcinfo, int argno)
{
	if (model_arg_is_name(fcinfo, argno))
		return moe_model_by_id(moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(argno))));
	return moe_model_by_id(PG_GETARG_INT64(argno));
}

static ArrayType *
int4_array(const int32 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(v[i]);
	return construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT);
}

static ArrayType *
int8_array(const int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* ---- one pair --------------------------------------------------------- */

/* moe_gate(drug, protein, model): prediction, gate probabilities, the
 * selected experts best first, their weights. */
PG_FUNCTION_INFO_V1(moe_gate_sql);
Datum
moe_gate_sql(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = model_arg(fcinfo, 2);
	const moe_config *c = &lm->model->cfg;
	float		probs[MOE_MAX_EXPERTS],
				weights[MOE_MAX_EXPERTS],
				pred;
	int32_t		selected[MOE_MAX_EXPERTS];
	moe_routing routing = {probs, selected, weights};
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false};

	pred = moe_cached_pair(lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), &routing, NULL);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "moe_gate must return a composite type");
	values[0] = Float4GetDatum(pred);
	values[1] = PointerGetDatum(moe_vector_result(probs, c->n_experts));
	values[2] = PointerGetDatum(int4_array(selected, c->top_k));
	values[3] = PointerGetDatum(moe_vector_result(weights, c->top_k));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* moe_expert_outputs(drug, protein, model): what every expert would say,
 * selected or not, in label units. */
PG_FUNCTION_INFO_V1(moe_expert_outputs_sql);
Datum
moe_expert_outputs_sql(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = model_arg(fcinfo, 2);
	float		out[MOE_MAX_EXPERTS];

	moe_cached_pair(lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), NULL, out);
	PG_RETURN_ARRAYTYPE_P(moe_vector_result(out, lm->model->cfg.n_experts));
}

/* ---- over a dataset ---------------------------------------------------- */

/* A model run over a dataset's rows, with the top-1 expert of each row. */
typedef struct routed
{
	evaluation_rows	mr;
	int			E;
	int			k;
	float	   *pred;
	float	   *probs;
	int32	   *selected;
	float	   *weights;
	float	   *outputs;
} routed;

static void
route_dataset(routed *r, FunctionCallInfo fcinfo, bool all_outputs, const char *extra_column)
{
	size_t		n;

	memset(r, 0, sizeof(*r));
	evaluation_rows_from_args(&r->mr, fcinfo, model_arg_is_name(fcinfo, 0), extra_column);
	r->E = r->mr.lm->model->cfg.n_experts;
	r->k = r->mr.lm->model->cfg.top_k;
	n = r->mr.rows.n;
	r->pred = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
	r->probs = palloc_extended(sizeof(float) * n * r->E, MCXT_ALLOC_HUGE);
	r->selected = palloc_extended(sizeof(int32) * n * r->k, MCXT_ALLOC_HUGE);
	r->weights = palloc_extended(sizeof(float) * n * r->k, MCXT_ALLOC_HUGE);
	if (all_outputs)
		r->outputs = palloc_extended(sizeof(float) * n * r->E, MCXT_ALLOC_HUGE);
	evaluation_rows_infer(&r->mr, r->pred, r->probs, r->selected, r->weights, r->outputs);
}

static inline int
top1(const routed *r, int row)
{
	return r->selected[(size_t) row * r->k];
}

/* moe_routing(model, dataset, split, fold): one row per pair and expert. */
PG_FUNCTION_INFO_V1(moe_routing_sql);
Datum
moe_routing_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	routed		r;

	route_dataset(&r, fcinfo, false, NULL);
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < r.mr.rows.n; i++)
	{
		Datum		dk = CStringGetTextDatum(moe_dataset_drug_key(&r.mr.data, r.mr.rows.drug_idx[i]));
		Datum		pk = CStringGetTextDatum(moe_dataset_protein_key(&r.mr.data, r.mr.rows.protein_idx[i]));
		Datum		split = CStringGetTextDatum(moe_split_name(r.mr.split[i]));

		for (int e = 0; e < r.E; e++)
		{
			Datum		values[10];
			bool		nulls[10] = {false};
			int			rank = 0;
			float		w = 0.0f;

			for (int s = 0; s < r.k; s++)
				if (r.selected[(size_t) i * r.k + s] == e)
				{
					rank = s + 1;
					w = r.weights[(size_t) i * r.k + s];
				}
			values[0] = dk;
			values[1] = pk;
			values[2] = split;
			values[3] = Float4GetDatum(r.mr.rows.label[i]);
			values[4] = Float4GetDatum(r.pred[i]);
			values[5] = Int32GetDatum(e);
			values[6] = Float4GetDatum(r.probs[(size_t) i * r.E + e]);
			values[7] = BoolGetDatum(rank > 0);
			values[8] = Float4GetDatum(w);
			values[9] = Int32GetDatum(rank);
			nulls[9] = rank == 0;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* Which entity of a row: its target or its drug. */
static int
entity_of(const routed *r, int row, bool by_drug)
{
	return by_drug ? r->mr.rows.drug_idx[row] : r->mr.rows.protein_idx[row];
}

static bool
by_drug_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *by;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("by must be 'target' or 'drug'")));
	by = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(by, "drug") == 0)
		return true;
	if (strcmp(by, "target") != 0 && strcmp(by, "protein") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown grouping \"%s\" (valid: target, drug)", by)));
	return false;
}

/*
 * Rows per entity and expert (by the row's top-1 expert), and each entity's
 * dominant expert (ties to the lower index); count[e * E + x].
 */
static int64 *
entity_expert_counts(const routed *r, bool by_drug, int n_entities)
{
	int64	   *count = palloc_extended(sizeof(int64) * n_entities * r->E, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	for (int i = 0; i < r->mr.rows.n; i++)
		count[(size_t) entity_of(r, i, by_drug) * r->E + top1(r, i)]++;
	return count;
}

static int
dominant(const int64 *counts, int E)
{
	int			best = 0;

	for (int x = 1; x < E; x++)
		if (counts[x] > counts[best])
			best = x;
	return best;
}

/* moe_specialization(model, dataset, split, fold, by): per target (or
 * drug), the expert that takes most of its rows and how many it takes. */
PG_FUNCTION_INFO_V1(moe_specialization_sql);
Datum
moe_specialization_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		by_drug = by_drug_arg(fcinfo, 4);
	routed		r;
	int			n_entities;
	int64	   *count;
	double	   *label_sum;

	route_dataset(&r, fcinfo, false, NULL);
	n_entities = by_drug ? r.mr.data.n_drugs : r.mr.data.n_proteins;
	count = entity_expert_counts(&r, by_drug, n_entities);
	label_sum = palloc0(sizeof(double) * n_entities);
	for (int i = 0; i < r.mr.rows.n; i++)
		label_sum[entity_of(&r, i, by_drug)] += r.mr.rows.label[i];

	InitMaterializedSRF(fcinfo, 0);
	for (int e = 0; e < n_entities; e++)
	{
		const int64 *c = count + (size_t) e * r.E;
		int64		rows = 0;
		int			best = dominant(c, r.E);
		Datum		values[6];
		bool		nulls[6] = {false};

		for (int x = 0; x < r.E; x++)
			rows += c[x];
		if (rows == 0)
			continue;			/* seen only in other splits */
		values[0] = CStringGetTextDatum(by_drug ? moe_dataset_drug_key(&r.mr.data, e)
										: moe_dataset_protein_key(&r.mr.data, e));
		values[1] = Int64GetDatum(rows);
		values[2] = Int32GetDatum(best);
		values[3] = Float8GetDatum((double) c[best] / rows);
		values[4] = Float8GetDatum(label_sum[e] / rows);
		values[5] = PointerGetDatum(int8_array(c, r.E));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static int
compare_float(const void *a, const void *b)
{
	float		x = *(const float *) a,
				y = *(const float *) b;

	return (x > y) - (x < y);
}

/* Linear-interpolation quantile of sorted values (as numpy's default). */
static double
quantile(const float *sorted, int n, double q)
{
	double		pos = q * (n - 1);
	int			lo = (int) floor(pos);
	int			hi = lo + 1 < n ? lo + 1 : lo;

	return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/* moe_expert_profile(model, dataset, split, fold): per expert, the rows it
 * leads (top-1) and the affinity range of those rows. */
PG_FUNCTION_INFO_V1(moe_expert_profile_sql);
Datum
moe_expert_profile_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	routed		r;
	int			n;

	route_dataset(&r, fcinfo, false, NULL);
	n = r.mr.rows.n;
	InitMaterializedSRF(fcinfo, 0);
	for (int e = 0; e < r.E; e++)
	{
		float	   *labels = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
		int			lead = 0;
		int64		selected = 0;
		double		prob_sum = 0,
					label_sum = 0,
					pred_sum = 0;
		Datum		values[12];
		bool		nulls[12] = {false};

		for (int i = 0; i < n; i++)
		{
			prob_sum += r.probs[(size_t) i * r.E + e];
			for (int s = 0; s < r.k; s++)
				selected += r.selected[(size_t) i * r.k + s] == e;
			if (top1(&r, i) == e)
			{
				labels[lead++] = r.mr.rows.label[i];
				label_sum += r.mr.rows.label[i];
				pred_sum += r.pred[i];
			}
		}
		qsort(labels, lead, sizeof(float), compare_float);
		values[0] = Int32GetDatum(e);
		values[1] = Int64GetDatum(lead);
		values[2] = Float8GetDatum((double) lead / n);
		values[3] = Int64GetDatum(selected);
		values[4] = Float8GetDatum(prob_sum / n);
		if (lead > 0)
		{
			values[5] = Float8GetDatum(label_sum / lead);
			values[6] = Float4GetDatum(labels[0]);
			values[7] = Float8GetDatum(quantile(labels, lead, 0.25));
			values[8] = Float8GetDatum(quantile(labels, lead, 0.5));
			values[9] = Float8GetDatum(quantile(labels, lead, 0.75));
			values[10] = Float4GetDatum(labels[lead - 1]);
			values[11] = Float8GetDatum(pred_sum / lead);
		}
		else
			for (int j = 5; j < 12; j++)
				nulls[j] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(labels);
	}
	return (Datum) 0;
}

/* moe_expert_agreement(model, dataset, split, fold): for each pair of
 * experts, how their outputs over every row correlate and differ. */
PG_FUNCTION_INFO_V1(moe_expert_agreement_sql);
Datum
moe_expert_agreement_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	routed		r;
	int			n;

	route_dataset(&r, fcinfo, true, NULL);
	n = r.mr.rows.n;
	InitMaterializedSRF(fcinfo, 0);
	for (int a = 0; a < r.E; a++)
		for (int b = a + 1; b < r.E; b++)
		{
			double		sa = 0,
						sb = 0,
						saa = 0,
						sbb = 0,
						sab = 0,
						diff = 0,
						cov,
						va,
						vb;
			Datum		values[4];
			bool		nulls[4] = {false};

			for (int i = 0; i < n; i++)
			{
				double		x = r.outputs[(size_t) i * r.E + a],
							y = r.outputs[(size_t) i * r.E + b];

				sa += x;
				sb += y;
				saa += x * x;
				sbb += y * y;
				sab += x * y;
				diff += fabs(x - y);
			}
			cov = sab / n - (sa / n) * (sb / n);
			va = saa / n - (sa / n) * (sa / n);
			vb = sbb / n - (sb / n) * (sb / n);
			values[0] = Int32GetDatum(a);
			values[1] = Int32GetDatum(b);
			values[2] = Float8GetDatum(va > 0 && vb > 0 ? cov / sqrt(va * vb) : NAN);
			nulls[2] = !(va > 0 && vb > 0);
			values[3] = Float8GetDatum(diff / n);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	return (Datum) 0;
}

/* Dense integer codes for the cluster texts of the rows (NULL is an error). */
static int *
cluster_codes(const routed *r, const char *column)
{
	int			n = r->mr.rows.n;
	int		   *code = palloc_extended(sizeof(int) * n, MCXT_ALLOC_HUGE);
	HTAB	   *seen;
	HASHCTL		ctl;
	int			next = 0;

	typedef struct
	{
		char		key[256];
		int			code;
	}			entry;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 256;
	ctl.entrysize = sizeof(entry);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("moe_pg clusters", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		char		key[256];
		entry	   *e;
		bool		found;

		if (r->mr.extra[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("column \"%s\" is NULL in a row of dataset \"%s\"", column, r->mr.dataset)));
		if (strlen(r->mr.extra[i]) >= sizeof(key))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("column \"%s\" has a value of %zu bytes in dataset \"%s\"; cluster labels are limited to %d bytes",
							column, strlen(r->mr.extra[i]), r->mr.dataset, (int) sizeof(key) - 1)));
		strlcpy(key, r->mr.extra[i], sizeof(key));
		e = hash_search(seen, key, HASH_ENTER, &found);
		if (!found)
			e->code = next++;
		code[i] = e->code;
	}
	return code;
}

/*
 * moe_cluster_recovery(model, dataset, split, fold, cluster_column, by):
 * how well routing recovers planted clusters.  by 'pair' compares each
 * row's top-1 expert with its cluster; by 'target' (or 'drug') compares
 * each entity's dominant expert with its majority cluster.
 */
PG_FUNCTION_INFO_V1(moe_cluster_recovery_sql);
Datum
moe_cluster_recovery_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *column;
	char	   *by;
	routed		r;
	int		   *cluster;
	int		   *experts,
			   *clusters;
	int			n;
	moe_agreement g;
	moe_error	err;
	Datum		values[7];
	bool		nulls[7] = {false};

	if (PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cluster_column and by must not be NULL")));
	column = text_to_cstring(PG_GETARG_TEXT_PP(4));
	by = text_to_cstring(PG_GETARG_TEXT_PP(5));
	if (strcmp(by, "pair") != 0 && strcmp(by, "target") != 0 && strcmp(by, "drug") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown grouping \"%s\" (valid: pair, target, drug)", by)));
	route_dataset(&r, fcinfo, false, column);
	cluster = cluster_codes(&r, column);

	if (strcmp(by, "pair") == 0)
	{
		n = r.mr.rows.n;
		experts = palloc_extended(sizeof(int) * n, MCXT_ALLOC_HUGE);
		for (int i = 0; i < n; i++)
			experts[i] = top1(&r, i);
		clusters = cluster;
	}
	else
	{
		bool		by_drug = strcmp(by, "drug") == 0;
		int			n_entities = by_drug ? r.mr.data.n_drugs : r.mr.data.n_proteins;
		int			n_clusters = 0;
		int64	   *count = entity_expert_counts(&r, by_drug, n_entities);
		int64	   *ccount;

		for (int i = 0; i < r.mr.rows.n; i++)
			if (cluster[i] + 1 > n_clusters)
				n_clusters = cluster[i] + 1;
		ccount = palloc_extended(sizeof(int64) * n_entities * n_clusters, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (int i = 0; i < r.mr.rows.n; i++)
			ccount[(size_t) entity_of(&r, i, by_drug) * n_clusters + cluster[i]]++;
		experts = palloc(sizeof(int) * n_entities);
		clusters = palloc(sizeof(int) * n_entities);
		n = 0;
		for (int e = 0; e < n_entities; e++)
		{
			int64		rows = 0;

			for (int x = 0; x < r.E; x++)
				rows += count[(size_t) e * r.E + x];
			if (rows == 0)
				continue;
			experts[n] = dominant(count + (size_t) e * r.E, r.E);
			clusters[n] = dominant(ccount + (size_t) e * n_clusters, n_clusters);
			n++;
		}
	}
	moe_check(moe_label_agreement(clusters, experts, n, &g, &err), &err);

	InitMaterializedSRF(fcinfo, 0);
	values[0] = CStringGetTextDatum(by);
	values[1] = Int64GetDatum(n);
	values[2] = Int32GetDatum(g.n_a);
	values[3] = Int32GetDatum(g.n_b);
	values[4] = Float8GetDatum(g.nmi);
	values[5] = Float8GetDatum(g.ari);
	values[6] = Float8GetDatum(g.purity);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
