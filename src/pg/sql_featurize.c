/*
 * sql_featurize.c — the moe_featurize_* functions: each fills a featurizer
 * (src/engine/featurizer.h) from its arguments and featurizes its text
 * through moe_featurize_text(), the path text scoring takes too, so a
 * vector made here is the vector a model's recorded featurizer makes.
 * Parameters out of range are 22023, unreadable text 22P02.
 */
#include "glue.h"

#include "featurizer_spec.h"


static moe_featurizer
featurizer_of(moe_featurizer_kind kind)
{
	moe_featurizer f;

	moe_featurizer_defaults(kind, &f);
	return f;
}

PG_FUNCTION_INFO_V1(moe_featurize_smiles_sql);
Datum
moe_featurize_smiles_sql(PG_FUNCTION_ARGS)
{
	moe_featurizer f = featurizer_of(MOE_FZ_SMILES);

	f.dim = PG_GETARG_INT32(1);
	f.max_n = PG_GETARG_INT32(2);
	return moe_featurize_text(&f, PG_GETARG_TEXT_PP(0));
}

PG_FUNCTION_INFO_V1(moe_featurize_ecfp_sql);
Datum
moe_featurize_ecfp_sql(PG_FUNCTION_ARGS)
{
	moe_featurizer f = featurizer_of(MOE_FZ_ECFP);

	f.radius = PG_GETARG_INT32(1);
	f.dim = PG_GETARG_INT32(2);
	f.counts = PG_GETARG_BOOL(3);
	return moe_featurize_text(&f, PG_GETARG_TEXT_PP(0));
}

PG_FUNCTION_INFO_V1(moe_featurize_protein_sql);
Datum
moe_featurize_protein_sql(PG_FUNCTION_ARGS)
{
	moe_featurizer f = featurizer_of(MOE_FZ_PROTEIN);

	f.k = PG_GETARG_INT32(1);
	return moe_featurize_text(&f, PG_GETARG_TEXT_PP(0));
}

PG_FUNCTION_INFO_V1(moe_featurize_protein_triad_sql);
Datum
moe_featurize_protein_triad_sql(PG_FUNCTION_ARGS)
{
	moe_featurizer f = featurizer_of(MOE_FZ_PROTEIN_TRIAD);

	return moe_featurize_text(&f, PG_GETARG_TEXT_PP(0));
}

PG_FUNCTION_INFO_V1(moe_featurize_protein_cksaap_sql);
Datum
moe_featurize_protein_cksaap_sql(PG_FUNCTION_ARGS)
{
	moe_featurizer f = featurizer_of(MOE_FZ_PROTEIN_CKSAAP);

	f.max_gap = PG_GETARG_INT32(1);
	return moe_featurize_text(&f, PG_GETARG_TEXT_PP(0));
}
