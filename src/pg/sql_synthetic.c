/*
 * sql_synthetic.c — moe_synthetic_dta(): the synthetic benchmark of
 * src/engine/synthetic.c as rows, one per drug-target pair.
 */
#include "glue.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "memory_budget.h"
#include "synthetic.h"

/* 70 % train, 15 % valid, 15 % test, fixed by the seed and the pair:
 * 0, 1 or 2, an index into the split names. */
static int
pair_split(uint64_t seed, int64 pair)
{
	float		u = moe_dropout_uniform(seed ^ 0x73706c6974ULL, (uint64_t) pair);

	return u < 0.70f ? 0 : u < 0.85f ? 1 : 2;
}

PG_FUNCTION_INFO_V1(moe_synthetic_dta_sql);
Datum
moe_synthetic_dta_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	moe_synthetic_spec spec;
	moe_synthetic data;
	moe_error	err;
	int64		seed = PG_GETARG_INT64(3);

	moe_synthetic_defaults(&spec);
	spec.n_drugs = PG_GETARG_INT32(0);
	spec.n_targets = PG_GETARG_INT32(1);
	spec.n_clusters = PG_GETARG_INT32(2);
	spec.drug_dim = PG_GETARG_INT32(4);
	spec.target_dim = PG_GETARG_INT32(5);
	spec.noise = PG_GETARG_FLOAT4(6);
	if (seed < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("seed must not be negative")));
	spec.seed = (uint64_t) seed;
	/* the generator's arrays (the output rows go to a tuplestore, which
	 * spills to disk); checked before they exist */
	moe_check(moe_synthetic_validate(&spec, &err), &err);
	moe_check_memory_budget(sizeof(float) * ((double) spec.n_drugs * spec.drug_dim +
												 2.0 * spec.n_targets * spec.target_dim +
												 (double) spec.n_drugs * spec.n_targets),
								"moe_synthetic_dta", "Ask for fewer drugs or targets, or shorter vectors");
	moe_check(moe_synthetic_generate(&spec, &data, &err), &err);

	InitMaterializedSRF(fcinfo, 0);
	PG_TRY();
	{
		Datum	   *target_vecs = palloc(sizeof(Datum) * data.n_targets);
		Datum		split_names[3] = {CStringGetTextDatum("train"), CStringGetTextDatum("valid"),
		CStringGetTextDatum("test")};
		MemoryContext drug_cxt = AllocSetContextCreate(CurrentMemoryContext, "moe_synthetic_dta drug",
													   ALLOCSET_DEFAULT_SIZES);

		for (int t = 0; t < data.n_targets; t++)
			target_vecs[t] = PointerGetDatum(moe_vector_result(data.target_vec + (size_t) t * data.target_dim,
															   data.target_dim));
		for (int d = 0; d < data.n_drugs; d++)
		{
			/* one drug's array at a time, not one per drug at once */
			MemoryContext old = MemoryContextSwitchTo(drug_cxt);
			Datum		drug_vec = PointerGetDatum(moe_vector_result(data.drug_vec + (size_t) d * data.drug_dim,
																	 data.drug_dim));

			MemoryContextSwitchTo(old);
			CHECK_FOR_INTERRUPTS();
			for (int t = 0; t < data.n_targets; t++)
			{
				int64		pair = (int64) d * data.n_targets + t;
				Datum		values[7];
				bool		nulls[7] = {false};

				values[0] = Int32GetDatum(d);
				values[1] = Int32GetDatum(t);
				values[2] = Int32GetDatum(data.target_cluster[t]);
				values[3] = drug_vec;
				values[4] = target_vecs[t];
				values[5] = Float4GetDatum(data.label[pair]);
				values[6] = split_names[pair_split(spec.seed, pair)];
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			MemoryContextReset(drug_cxt);
		}
	}
	PG_FINALLY();
	{
		moe_synthetic_free(&data);
	}
	PG_END_TRY();
	return (Datum) 0;
}
