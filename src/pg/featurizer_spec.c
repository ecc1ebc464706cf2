/*
 * featurizer_spec.c — featurizer specs as jsonb, and the featurizers of a
 * loaded model (featurizer_spec.h).
 */
#include "featurizer_spec.h"

#include <limits.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"

#include "json_write.h"
#include "spi_safe.h"

/* The parameters each featurizer takes, in the order they are written. */
static const char *const params_of[MOE_FZ_N_KINDS][4] = {
	[MOE_FZ_SMILES] = {"dim", "max_n"},
	[MOE_FZ_ECFP] = {"radius", "dim", "counts"},
	[MOE_FZ_PROTEIN] = {"k"},
	[MOE_FZ_PROTEIN_TRIAD] = {NULL},
	[MOE_FZ_PROTEIN_CKSAAP] = {"max_gap"},
};

static void
bad_spec(const char *what, const char *fmt, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s", what, psprintf(fmt, detail)),
			 errhint("A featurizer spec names one of smiles, ecfp (drugs), protein, protein_triad, protein_cksaap (proteins) with the parameters of its moe_featurize_ function, e.g. {\"featurizer\": \"ecfp\", \"radius\": 2, \"dim\": 2048, \"counts\": true}.")));
}

static bool
takes_param(moe_featurizer_kind kind, const char *key)
{
	for (int i = 0; i < 4 && params_of[kind][i] != NULL; i++)
		if (strcmp(params_of[kind][i], key) == 0)
			return true;
	return false;
}

static int
int_param(JsonbValue *v, const char *what, const char *key)
{
	double		d;

	if (v->type != jbvNumeric)
		bad_spec(what, "parameter \"%s\" must be an integer", key);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (d != floor(d) || d < INT_MIN || d > INT_MAX)
		bad_spec(what, "parameter \"%s\" must be an integer", key);
	return (int) d;
}

void
moe_featurizer_from_jsonb(Jsonb *spec, const char *side, const char *what, moe_featurizer *f)
{
	JsonbValue *name;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	moe_featurizer_kind kind;
	moe_error	err;

	moe_featurizer_defaults(MOE_FZ_NONE, f);
	if (spec == NULL || JB_ROOT_IS_SCALAR(spec))
	{
		if (spec != NULL)
		{
			JsonbValue	scalar;

			if (!JsonbExtractScalar(&spec->root, &scalar) || scalar.type != jbvNull)
				bad_spec(what, "%s", "a spec must be a JSON object (or null for vectors supplied by the user)");
		}
		return;
	}
	if (!JB_ROOT_IS_OBJECT(spec))
		bad_spec(what, "%s", "a spec must be a JSON object (or null for vectors supplied by the user)");
	name = getKeyJsonValueFromContainer(&spec->root, "featurizer", strlen("featurizer"), NULL);
	if (name == NULL || name->type != jbvString)
		bad_spec(what, "%s", "the spec names no \"featurizer\"");
	kind = moe_featurizer_kind_parse(pnstrdup(name->val.string.val, name->val.string.len));
	if (kind == MOE_FZ_NONE)
		bad_spec(what, "unknown featurizer \"%s\"", pnstrdup(name->val.string.val, name->val.string.len));
	if (moe_featurizer_is_drug(kind) != (strcmp(side, "drug") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: featurizer \"%s\" makes %s vectors, not %s vectors", what,
						moe_featurizer_name(kind), moe_featurizer_is_drug(kind) ? "drug" : "protein", side)));
	moe_featurizer_defaults(kind, f);

	it = JsonbIteratorInit(&spec->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || strcmp(key, "featurizer") == 0)
			continue;
		if (!takes_param(kind, key))
			bad_spec(what, "featurizer takes no parameter \"%s\"", key);
		if (strcmp(key, "counts") == 0)
		{
			if (v.type != jbvBool)
				bad_spec(what, "parameter \"%s\" must be true or false", key);
			f->counts = v.val.boolean;
		}
		else if (strcmp(key, "dim") == 0)
			f->dim = int_param(&v, what, key);
		else if (strcmp(key, "max_n") == 0)
			f->max_n = int_param(&v, what, key);
		else if (strcmp(key, "radius") == 0)
			f->radius = int_param(&v, what, key);
		else if (strcmp(key, "k") == 0)
			f->k = int_param(&v, what, key);
		else if (strcmp(key, "max_gap") == 0)
			f->max_gap = int_param(&v, what, key);
	}
	if (moe_featurizer_validate(f, &err) != MOE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s: %s", what, moe_featurizer_name(f->kind), err.message)));
}

char *
moe_featurizer_json(const moe_featurizer *f)
{
	StringInfoData s;

	if (f->kind == MOE_FZ_NONE)
		return pstrdup("null");
	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	moe_json_text(&s, "featurizer", moe_featurizer_name(f->kind));
	for (int i = 0; i < 4 && params_of[f->kind][i] != NULL; i++)
	{
		const char *p = params_of[f->kind][i];

		if (strcmp(p, "counts") == 0)
			moe_json_bool(&s, p, f->counts);
		else
			moe_json_int(&s, p,
						 strcmp(p, "dim") == 0 ? f->dim : strcmp(p, "max_n") == 0 ? f->max_n :
						 strcmp(p, "radius") == 0 ? f->radius : strcmp(p, "k") == 0 ? f->k : f->max_gap);
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}

char *
moe_featurizer_text(const moe_featurizer *f)
{
	char		buf[256];

	moe_featurizer_describe(f, buf, sizeof(buf));
	return pstrdup(buf);
}

/* moe_featurizer_spec(spec jsonb, side text): the canonical form of a spec,
 * every parameter written (NULL stays NULL: vectors supplied by the user). */
PG_FUNCTION_INFO_V1(moe_featurizer_spec_sql);
Datum
moe_featurizer_spec_sql(PG_FUNCTION_ARGS)
{
	char	   *side;
	moe_featurizer f;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("side must be 'drug' or 'protein'")));
	side = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(side, "drug") != 0 && strcmp(side, "protein") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("side must be 'drug' or 'protein', not \"%s\"", side)));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	moe_featurizer_from_jsonb(PG_GETARG_JSONB_P(0), side, psprintf("%s featurizer", side), &f);
	if (f.kind == MOE_FZ_NONE)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(moe_featurizer_json(&f))));
}

void
moe_model_featurizers(moe_loaded_model *lm)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(lm->id)};
	moe_featurizer drug,
				protein;
	MemoryContext outer = CurrentMemoryContext;

	if (lm->featurizers_read)
		return;
	moe_featurizer_defaults(MOE_FZ_NONE, &drug);
	moe_featurizer_defaults(MOE_FZ_NONE, &protein);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute("SELECT m.config -> 'drug_featurizer', m.config -> 'protein_featurizer' "
						"FROM moe.models m WHERE m.id = $1", 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
	if (SPI_processed == 1)
	{
		for (int i = 0; i < 2; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);
			MemoryContext spi = MemoryContextSwitchTo(outer);

			if (!isnull)
				moe_featurizer_from_jsonb(DatumGetJsonbPCopy(d), i == 0 ? "drug" : "protein",
										  psprintf("model %lld", (long long) lm->id),
										  i == 0 ? &drug : &protein);
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	/* a spec that does not make the model's vectors is ignored, not trusted */
	if (drug.kind != MOE_FZ_NONE && moe_featurizer_dim(&drug) != lm->model->cfg.drug_dim)
		moe_featurizer_defaults(MOE_FZ_NONE, &drug);
	if (protein.kind != MOE_FZ_NONE && moe_featurizer_dim(&protein) != lm->model->cfg.protein_dim)
		moe_featurizer_defaults(MOE_FZ_NONE, &protein);
	lm->drug_featurizer = drug;
	lm->protein_featurizer = protein;
	lm->featurizers_read = true;
}

Datum
moe_featurize_for_model(moe_loaded_model *lm, bool drug, text *input)
{
	const moe_featurizer *f;

	/*
	 * A text that opens with "{" is a real[] literal, not a SMILES string or
	 * a sequence (neither can start so): an untyped literal vector in a
	 * call resolves to the text form, and means what it always meant.
	 */
	{
		const char *c = VARDATA_ANY(input);
		const char *end = c + VARSIZE_ANY_EXHDR(input);

		while (c < end && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r'))
			c++;
		if (c < end && *c == '{')
			return OidInputFunctionCall(F_ARRAY_IN, text_to_cstring(input), FLOAT4OID, -1);
	}
	moe_model_featurizers(lm);
	f = drug ? &lm->drug_featurizer : &lm->protein_featurizer;
	if (f->kind == MOE_FZ_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model %lld was trained on %s vectors supplied by the user: it cannot featurize %s text",
						(long long) lm->id, drug ? "drug" : "protein", drug ? "SMILES" : "sequence"),
				 errhint("Give the %s as a real[] vector of %d values made the way its training vectors were.",
						 drug ? "drug" : "protein", drug ? lm->model->cfg.drug_dim : lm->model->cfg.protein_dim)));
	return moe_featurize_text(f, input);
}

Datum
moe_featurize_text(const moe_featurizer *f, text *input)
{
	int			dim;
	float	   *out;
	moe_error	err;

	if (moe_featurizer_validate(f, &err) != MOE_OK)
		moe_raise(&err);
	dim = moe_featurizer_dim(f);
	out = palloc0(sizeof(float) * dim);
	if (moe_featurizer_apply(f, VARDATA_ANY(input), VARSIZE_ANY_EXHDR(input), out, &err) != MOE_OK)
		moe_raise_featurize_error(&err);
	return PointerGetDatum(moe_vector_result(out, dim));
}
