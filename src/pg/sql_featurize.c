/*
 * sql_featurize.c — moe_featurize_smiles() and moe_featurize_protein().
 */
#include "glue.h"

#include "utils/builtins.h"

#include "featurize.h"


PG_FUNCTION_INFO_V1(moe_featurize_smiles_sql);
Datum
moe_featurize_smiles_sql(PG_FUNCTION_ARGS)
{
	text	   *smiles = PG_GETARG_TEXT_PP(0);
	int32		dim = PG_GETARG_INT32(1);
	int32		max_n = PG_GETARG_INT32(2);
	float	   *out;
	moe_error	err;

	if (dim < 1 || dim > MOE_SMILES_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dim must be between 1 and %d, not %d", MOE_SMILES_MAX_DIM, dim)));
	out = palloc0(sizeof(float) * dim);
	if (moe_featurize_smiles(VARDATA_ANY(smiles), VARSIZE_ANY_EXHDR(smiles), dim, max_n, out,
							 &err) != MOE_OK)
		moe_raise_featurize_error(&err);
	PG_RETURN_ARRAYTYPE_P(moe_vector_result(out, dim));
}

PG_FUNCTION_INFO_V1(moe_featurize_protein_sql);
Datum
moe_featurize_protein_sql(PG_FUNCTION_ARGS)
{
	text	   *seq = PG_GETARG_TEXT_PP(0);
	int32		k = PG_GETARG_INT32(1);
	int			dim = moe_protein_feature_dim(k);
	float	   *out;
	moe_error	err;

	if (dim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d, not %d", MOE_PROTEIN_MAX_K, k)));
	out = palloc0(sizeof(float) * dim);
	if (moe_featurize_protein(VARDATA_ANY(seq), VARSIZE_ANY_EXHDR(seq), k, out, &err) != MOE_OK)
		moe_raise_featurize_error(&err);
	PG_RETURN_ARRAYTYPE_P(moe_vector_result(out, dim));
}
