/*
 * sql_featurize_ecfp_triad_cksaap.c — moe_featurize_ecfp(), moe_featurize_protein_triad()
 * and moe_featurize_protein_cksaap().
 *
 * Same conventions as sql_featurize.c: parameters are checked here (22023),
 * the text by the engine, whose MOE_ERR_DATA becomes 22P02 with its message.
 */
#include "glue.h"

#include "utils/builtins.h"

#include "ecfp.h"
#include "protein_features.h"


PG_FUNCTION_INFO_V1(moe_featurize_ecfp_sql);
Datum
moe_featurize_ecfp_sql(PG_FUNCTION_ARGS)
{
	text	   *smiles = PG_GETARG_TEXT_PP(0);
	int32		radius = PG_GETARG_INT32(1);
	int32		dim = PG_GETARG_INT32(2);
	bool		counts = PG_GETARG_BOOL(3);
	float	   *out;
	moe_error	err;

	if (radius < 0 || radius > MOE_ECFP_MAX_RADIUS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("radius must be between 0 and %d, not %d", MOE_ECFP_MAX_RADIUS, radius)));
	if (dim < 1 || dim > MOE_ECFP_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dim must be between 1 and %d, not %d", MOE_ECFP_MAX_DIM, dim)));
	out = palloc0(sizeof(float) * dim);
	if (moe_featurize_ecfp(VARDATA_ANY(smiles), VARSIZE_ANY_EXHDR(smiles), radius, dim, counts,
						   out, &err) != MOE_OK)
		moe_raise_featurize_error(&err);
	PG_RETURN_ARRAYTYPE_P(moe_vector_result(out, dim));
}

PG_FUNCTION_INFO_V1(moe_featurize_protein_triad_sql);
Datum
moe_featurize_protein_triad_sql(PG_FUNCTION_ARGS)
{
	text	   *seq = PG_GETARG_TEXT_PP(0);
	float	   *out;
	moe_error	err;

	out = palloc0(sizeof(float) * MOE_TRIAD_DIM);
	if (moe_featurize_protein_triad(VARDATA_ANY(seq), VARSIZE_ANY_EXHDR(seq), out, &err) != MOE_OK)
		moe_raise_featurize_error(&err);
	PG_RETURN_ARRAYTYPE_P(moe_vector_result(out, MOE_TRIAD_DIM));
}

PG_FUNCTION_INFO_V1(moe_featurize_protein_cksaap_sql);
Datum
moe_featurize_protein_cksaap_sql(PG_FUNCTION_ARGS)
{
	text	   *seq = PG_GETARG_TEXT_PP(0);
	int32		max_gap = PG_GETARG_INT32(1);
	int			dim = moe_cksaap_feature_dim(max_gap);
	float	   *out;
	moe_error	err;

	if (dim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_gap must be between 0 and %d, not %d", MOE_CKSAAP_MAX_GAP, max_gap)));
	out = palloc0(sizeof(float) * dim);
	if (moe_featurize_protein_cksaap(VARDATA_ANY(seq), VARSIZE_ANY_EXHDR(seq), max_gap, out,
									 &err) != MOE_OK)
		moe_raise_featurize_error(&err);
	PG_RETURN_ARRAYTYPE_P(moe_vector_result(out, dim));
}
