/*
 * sql_predict.c — moe_predict() and moe_route(), by model id and by name.
 *
 * By id the answer depends only on the arguments and an immutable
 * checkpoint row (IMMUTABLE); by name it follows moe.deployments (STABLE),
 * resolved once per query and argument value through fn_extra.
 */
#include "moe_pg.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "entity_cache.h"
#include "predict.h"

typedef struct name_cache
{
	char	   *name;
	int64		id;
} name_cache;

static int64
model_id_for_name(FunctionCallInfo fcinfo, text *name_text)
{
	name_cache *nc = (name_cache *) fcinfo->flinfo->fn_extra;
	char	   *name = text_to_cstring(name_text);

	if (nc != NULL && strcmp(nc->name, name) == 0)
		return nc->id;
	if (nc == NULL)
		nc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(name_cache));
	else
		pfree(nc->name);
	nc->id = moe_model_id_by_name(name);
	nc->name = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, name);
	fcinfo->flinfo->fn_extra = nc;
	return nc->id;
}

PG_FUNCTION_INFO_V1(moe_predict_by_id);
Datum
moe_predict_by_id(PG_FUNCTION_ARGS)
{
	moe_loaded_model *lm = moe_model_by_id(PG_GETARG_INT64(2));

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
route_rows(FunctionCallInfo fcinfo, moe_loaded_model *lm)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const moe_config *c = &lm->model->cfg;
	float		probs[MOE_MAX_EXPERTS],
				weights[MOE_MAX_EXPERTS];
	int32_t		selected[MOE_MAX_EXPERTS];
	moe_routing routing = {probs, selected, weights};

	moe_cached_pair(lm, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), &routing, NULL);
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
	route_rows(fcinfo, moe_model_by_id(PG_GETARG_INT64(2)));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moe_route_by_name);
Datum
moe_route_by_name(PG_FUNCTION_ARGS)
{
	route_rows(fcinfo, moe_model_by_id(model_id_for_name(fcinfo, PG_GETARG_TEXT_PP(2))));
	return (Datum) 0;
}
