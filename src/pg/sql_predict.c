/*
 * sql_predict.c — moe_predict() and moe_route(), by model id, by name, and
 * with the model of moe_pg.default_model; over vectors, or over text
 * (SMILES and sequences) featurized the way the model's training vectors
 * were (featurizer_spec.h).
 *
 * By id the answer depends only on the arguments and an immutable
 * checkpoint row (IMMUTABLE); by name it follows moe.deployments, and
 * without a model the setting (STABLE), resolved once per query and
 * argument value through fn_extra.
 */
#include "sql_predict.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "entity_cache.h"
#include "featurizer_spec.h"
#include "predict.h"

char	   *moe_default_model = NULL;

void
moe_predict_init(void)
{
	DefineCustomStringVariable("moe_pg.default_model",
							   "The model moe_predict and moe_route use when none is given: a deployed name or a model id.",
							   "Empty: every call must name its model.",
							   &moe_default_model,
							   "",
							   PGC_USERSET, 0,
							   NULL, NULL, NULL);
}

/*
 * What a call keeps between rows of one query (fn_extra): the last model
 * name it resolved, and the last text of each side with its vector, so a
 * screen that repeats one target featurizes it once.
 */
typedef struct call_cache
{
	char	   *name;
	int64		id;
	int64		text_model[2];	/* the model the texts were featurized for */
	text	   *text[2];		/* drug, protein */
	Datum		vector[2];
} call_cache;

static call_cache *
get_call_cache(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(call_cache));
	return (call_cache *) fcinfo->flinfo->fn_extra;
}

static int64
resolve_name(FunctionCallInfo fcinfo, const char *name)
{
	call_cache *cc = get_call_cache(fcinfo);

	if (cc->name != NULL && strcmp(cc->name, name) == 0)
		return cc->id;
	if (cc->name != NULL)
		pfree(cc->name);
	cc->name = NULL;
	cc->id = moe_model_id_by_name(name);
	cc->name = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, name);
	return cc->id;
}

static int64
model_id_for_name(FunctionCallInfo fcinfo, text *name_text)
{
	return resolve_name(fcinfo, text_to_cstring(name_text));
}

/* moe_pg.default_model: a model id when it is all digits, else a name. */
static int64
default_model_id(FunctionCallInfo fcinfo)
{
	const char *m = moe_default_model;
	bool		digits = m != NULL && m[0] != '\0';

	if (m == NULL || m[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no model given and moe_pg.default_model is not set"),
				 errhint("Name the model (moe_predict(drug, protein, 'davis')) or set one for the session: SET moe_pg.default_model = 'davis'.")));
	for (const char *c = m; *c; c++)
		if (*c < '0' || *c > '9')
			digits = false;
	if (digits && strlen(m) <= 18)
		return strtoll(m, NULL, 10);
	return resolve_name(fcinfo, m);
}

/* The model of argument argno (bigint id or text name), or of the setting
 * when the function has no such argument. */
static moe_loaded_model *
model_of_call(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno)
		return moe_model_by_id(default_model_id(fcinfo));
	if (get_fn_expr_argtype(fcinfo->flinfo, argno) == TEXTOID)
		return moe_model_by_id(model_id_for_name(fcinfo, PG_GETARG_TEXT_PP(argno)));
	return moe_model_by_id(PG_GETARG_INT64(argno));
}

/* Argument side (0: drug, 1: protein) as a real[] datum: itself when it is
 * a vector, featurized for lm when it is text. */
static Datum
input_vector(FunctionCallInfo fcinfo, moe_loaded_model *lm, int side)
{
	call_cache *cc;
	text	   *t;

	if (get_fn_expr_argtype(fcinfo->flinfo, side) != TEXTOID)
		return PG_GETARG_DATUM(side);
	t = PG_GETARG_TEXT_PP(side);
	cc = get_call_cache(fcinfo);
	if (cc->text[side] != NULL && cc->text_model[side] == lm->id &&
		VARSIZE_ANY_EXHDR(cc->text[side]) == VARSIZE_ANY_EXHDR(t) &&
		memcmp(VARDATA_ANY(cc->text[side]), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) == 0)
		return cc->vector[side];
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		Datum		v = moe_featurize_for_model(lm, side == 0, t);

		if (cc->text[side] != NULL)
		{
			pfree(cc->text[side]);
			pfree(DatumGetPointer(cc->vector[side]));
		}
		cc->text[side] = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(t));
		cc->vector[side] = v;
		cc->text_model[side] = lm->id;
		MemoryContextSwitchTo(old);
		return v;
	}
}

/*
 * moe_predict over vectors or text, with the model by id, by name, or of
 * moe_pg.default_model (no third argument): one C function for every form.
 */
PG_FUNCTION_INFO_V1(moe_predict_any);
Datum
moe_predict_any(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = model_of_call(fcinfo, 2);
	Datum		drug = input_vector(fcinfo, lm, 0),
				protein = input_vector(fcinfo, lm, 1);

	PG_RETURN_FLOAT4(moe_cached_pair(lm, drug, protein, NULL, NULL));
}

PG_FUNCTION_INFO_V1(moe_predict_by_id);
Datum
moe_predict_by_id(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = moe_model_by_id(PG_GETARG_INT64(2));

	PG_RETURN_FLOAT4(moe_cached_pair(lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), NULL, NULL));
}

/*
 * moe_predict(drug, protein, model, params_md5): the by-id form, refused
 * unless this node's model id has exactly those weights.  The same text
 * runs on every node of a cluster, so a node holding another model under
 * the id errors out instead of answering with its own weights.
 */
PG_FUNCTION_INFO_V1(moe_predict_checked);
Datum
moe_predict_checked(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = moe_model_by_id_checked(PG_GETARG_INT64(2),
												   text_to_cstring(PG_GETARG_TEXT_PP(3)));

	PG_RETURN_FLOAT4(moe_cached_pair(lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), NULL, NULL));
}

PG_FUNCTION_INFO_V1(moe_predict_by_name);
Datum
moe_predict_by_name(PG_FUNCTION_ARGS)
{
	int64		id = model_id_for_name(fcinfo, PG_GETARG_TEXT_PP(2));
	moe_loaded_model *lm = moe_model_by_id(id);

	PG_RETURN_FLOAT4(moe_cached_pair(lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), NULL, NULL));
}

/* One row per expert: expert, gate probability, selected, weight. */
static void
route_rows(FunctionCallInfo fcinfo, moe_loaded_model *lm, Datum drug, Datum protein)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const moe_config *c = &lm->model->cfg;
	float		probs[MOE_MAX_EXPERTS],
				weights[MOE_MAX_EXPERTS];
	int32_t		selected[MOE_MAX_EXPERTS];
	moe_routing routing = {probs, selected, weights};

	moe_cached_pair(lm, drug, protein, &routing, NULL);
	InitMaterializedSRF(fcinfo, 0);
	for (int e = 0; e < c->n_experts; e++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		float		w = 0.0f;
		bool		chosen = false;

		for (int s = 0; s < c->top_k; s++)
			if (selected[s] == e)
			{
				chosen = true;
				w = weights[s];
			}
		values[0] = Int32GetDatum(e);
		values[1] = Float4GetDatum(probs[e]);
		values[2] = BoolGetDatum(chosen);
		values[3] = Float4GetDatum(w);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(moe_route_by_id);
Datum
moe_route_by_id(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = moe_model_by_id(PG_GETARG_INT64(2));

	route_rows(fcinfo, lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moe_route_by_name);
Datum
moe_route_by_name(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = moe_model_by_id(model_id_for_name(fcinfo, PG_GETARG_TEXT_PP(2)));

	route_rows(fcinfo, lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1));
	return (Datum) 0;
}

/* moe_route over text, or without a model (moe_pg.default_model). */
PG_FUNCTION_INFO_V1(moe_route_any);
Datum
moe_route_any(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = model_of_call(fcinfo, 2);
	Datum		drug = input_vector(fcinfo, lm, 0),
				protein = input_vector(fcinfo, lm, 1);

	route_rows(fcinfo, lm, drug, protein);
	return (Datum) 0;
}
