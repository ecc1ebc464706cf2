/*
 * train_options.c — the option table of the training procedures.
 *
 * Every option has a name, a type and one place in train_spec.  The same
 * code reads it from moe_train's named arguments and from a jsonb object
 * (moe_train's options argument, moe_cross_validate's options, each point
 * of moe_sweep's grid), so the three can never disagree.
 */
#include "glue.h"
#include "device.h"

#include <limits.h>
#include <math.h>

#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "funcapi.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "train_options.h"
#include "json_write.h"

#include "featurizer_spec.h"

typedef enum opt_type
{
	T_INT, T_BIGINT, T_REAL, T_TEXT, T_BOOL, T_WIDTHS, T_JSONB
} opt_type;

/* In the order of moe_train's SQL signature, after dataset, fold, model_name. */
typedef enum opt_id
{
	O_EXPERTS, O_TOP_K, O_LB_METHOD, O_LB_WEIGHT, O_BALANCE, O_LB_SCHEDULE, O_LB_WARMUP_EPOCHS,
	O_LB_MIN_SCALE, O_LB_DECAY, O_EPOCHS, O_BATCH_SIZE, O_LR, O_LR_MIN, O_LR_SCHEDULE,
	O_LR_WARMUP_EPOCHS, O_LR_STEP_EPOCHS, O_LR_GAMMA, O_LR_DECAY_START, O_WEIGHT_DECAY,
	O_GRAD_CLIP, O_EMA_DECAY, O_DROPOUT, O_TEMPERATURE, O_TEMPERATURE_SCHEDULE, O_TEMPERATURE_END,
	O_TEMPERATURE_STEP_EPOCHS, O_NOISY_GATING, O_PATIENCE, O_MIN_DELTA, O_SEED, O_DRUG_HIDDEN,
	O_PROTEIN_HIDDEN, O_GATE_HIDDEN, O_EXPERT_HIDDEN, O_DEPLOY, O_DEVICE, O_REFIT, O_SPARSE_INPUTS,
	O_MAX_SECONDS, N_OPTIONS
} opt_id;

/* The weight of an lb_method given without lb_weight (0.1.0's default). */
#define MOE_DEFAULT_LB_WEIGHT 0.001f

#define FIRST_OPTION_ARG 3		/* dataset, fold, model_name come first */

static const struct
{
	const char *name;
	opt_type	type;
	bool		nullable;
	bool		bool_alias;		/* text that a JSON true/false may stand for */
}			options[N_OPTIONS] = {
	[O_EXPERTS] = {"experts", T_INT},
	[O_TOP_K] = {"top_k", T_INT},
	[O_LB_METHOD] = {"lb_method", T_TEXT, true},	/* NULL: the default balancing */
	[O_LB_WEIGHT] = {"lb_weight", T_REAL, true},	/* NULL: 0.001 with an lb_method */
	[O_BALANCE] = {"balance", T_JSONB, true},
	[O_LB_SCHEDULE] = {"lb_schedule", T_TEXT},
	[O_LB_WARMUP_EPOCHS] = {"lb_warmup_epochs", T_INT},
	[O_LB_MIN_SCALE] = {"lb_min_scale", T_REAL},
	[O_LB_DECAY] = {"lb_decay", T_REAL},
	[O_EPOCHS] = {"epochs", T_INT},
	[O_BATCH_SIZE] = {"batch_size", T_INT},
	[O_LR] = {"lr", T_REAL},
	[O_LR_MIN] = {"lr_min", T_REAL},
	[O_LR_SCHEDULE] = {"lr_schedule", T_TEXT},
	[O_LR_WARMUP_EPOCHS] = {"lr_warmup_epochs", T_INT},
	[O_LR_STEP_EPOCHS] = {"lr_step_epochs", T_INT},
	[O_LR_GAMMA] = {"lr_gamma", T_REAL},
	[O_LR_DECAY_START] = {"lr_decay_start", T_REAL},
	[O_WEIGHT_DECAY] = {"weight_decay", T_REAL},
	[O_GRAD_CLIP] = {"grad_clip", T_REAL},
	[O_EMA_DECAY] = {"ema_decay", T_REAL},
	[O_DROPOUT] = {"dropout", T_REAL},
	[O_TEMPERATURE] = {"temperature", T_REAL},
	[O_TEMPERATURE_SCHEDULE] = {"temperature_schedule", T_TEXT},
	[O_TEMPERATURE_END] = {"temperature_end", T_REAL, true},
	[O_TEMPERATURE_STEP_EPOCHS] = {"temperature_step_epochs", T_INT},
	[O_NOISY_GATING] = {"noisy_gating", T_BOOL},
	[O_PATIENCE] = {"patience", T_INT},
	[O_MIN_DELTA] = {"min_delta", T_REAL},
	[O_SEED] = {"seed", T_BIGINT},
	[O_DRUG_HIDDEN] = {"drug_hidden", T_WIDTHS},
	[O_PROTEIN_HIDDEN] = {"protein_hidden", T_WIDTHS},
	[O_GATE_HIDDEN] = {"gate_hidden", T_WIDTHS},
	[O_EXPERT_HIDDEN] = {"expert_hidden", T_WIDTHS},
	[O_DEPLOY] = {"deploy", T_TEXT, false, true},	/* true: always, false: never */
	[O_DEVICE] = {"device", T_TEXT, true},	/* NULL: the moe_pg.device setting */
	[O_REFIT] = {"refit", T_BOOL},
	[O_SPARSE_INPUTS] = {"sparse_inputs", T_TEXT},
	[O_MAX_SECONDS] = {"max_seconds", T_REAL, true},	/* NULL: no time limit */
};

static const char *const deploy_names[] = {"if_better", "always", "never"};

const char *
moe_deploy_mode_name(moe_deploy_mode mode)
{
	return (int) mode >= 0 && mode <= MOE_DEPLOY_NEVER ? deploy_names[mode] : "unknown";
}

static moe_deploy_mode
deploy_mode_parse(const char *name)
{
	for (int i = 0; i <= MOE_DEPLOY_NEVER; i++)
		if (strcmp(name, deploy_names[i]) == 0)
			return (moe_deploy_mode) i;
	if (strcmp(name, "true") == 0)
		return MOE_DEPLOY_ALWAYS;
	if (strcmp(name, "false") == 0)
		return MOE_DEPLOY_NEVER;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown deploy \"%s\" (valid: %s)", name, MOE_DEPLOY_CHOICES)));
	return MOE_DEPLOY_NEVER;	/* not reached */
}

/* One option's value, whatever its source. */
typedef struct opt_value
{
	bool		isnull;
	int64		i;
	double		r;
	char	   *s;
	bool		b;
	int			n;
	int32		w[MOE_MAX_LAYERS + 1];
	Jsonb	   *j;
} opt_value;

const char *
train_option_names(void)
{
	static char *names = NULL;

	if (names == NULL)
	{
		StringInfoData s;

		initStringInfo(&s);
		for (int i = 0; i < N_OPTIONS; i++)
			appendStringInfo(&s, "%s%s", i ? ", " : "", options[i].name);
		names = MemoryContextStrdup(TopMemoryContext, s.data);
		pfree(s.data);
	}
	return names;
}

static int
option_index(const char *name)
{
	for (int i = 0; i < N_OPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return i;
	return -1;
}

bool
train_option_exists(const char *name)
{
	return option_index(name) >= 0;
}

/* ---- applying one value ---------------------------------------------- */

static void
invalid(const char *fmt, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(fmt, name)));
}

static void
set_widths(int32_t *n, int32_t *widths, const opt_value *v, const char *name)
{
	if (v->n > MOE_MAX_LAYERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must list at most %d layer widths, not %d", name, MOE_MAX_LAYERS, v->n)));
	*n = v->n;
	for (int i = 0; i < v->n; i++)
		widths[i] = v->w[i];
}

static void
apply_option(train_spec *s, int id, const opt_value *v)
{
	const char *name = options[id].name;

	if (v->isnull && !options[id].nullable)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	if (options[id].type == T_REAL && !v->isnull && !isfinite(v->r))
		invalid("%s must be a finite number", name);
	if ((options[id].type == T_INT) && !v->isnull && (v->i < INT_MIN || v->i > INT_MAX))
		invalid("%s is out of range", name);

	switch ((opt_id) id)
	{
		case O_EXPERTS:
			s->arch.n_experts = (int32_t) v->i;
			break;
		case O_TOP_K:
			s->arch.top_k = (int32_t) v->i;
			break;
		case O_LB_METHOD:
			s->lb_method = v->isnull ? NULL : v->s;
			break;
		case O_LB_WEIGHT:
			s->lb_weight = v->isnull ? NAN : (float) v->r;
			break;
		case O_BALANCE:
			if (!v->isnull && !JB_ROOT_IS_OBJECT(v->j))
				invalid("%s must be a JSON object of method weights, e.g. {\"entropy\": 0.001}", name);
			s->balance = v->isnull ? NULL : v->j;
			break;
		case O_LB_SCHEDULE:
			{
				moe_error	err;

				moe_check(moe_lb_schedule_parse(v->s, &s->opt.lb_schedule, &err), &err);
			}
			break;
		case O_LB_WARMUP_EPOCHS:
			s->opt.lb_warmup_epochs = (int) v->i;
			break;
		case O_LB_MIN_SCALE:
			s->opt.lb_min_scale = (float) v->r;
			break;
		case O_LB_DECAY:
			s->opt.lb_decay = (float) v->r;
			break;
		case O_EPOCHS:
			s->opt.epochs = (int) v->i;
			break;
		case O_BATCH_SIZE:
			s->opt.batch_size = (int) v->i;
			break;
		case O_LR:
			s->opt.lr = (float) v->r;
			break;
		case O_LR_MIN:
			s->opt.lr_min = (float) v->r;
			break;
		case O_LR_SCHEDULE:
			{
				moe_error	err;

				moe_check(moe_lr_schedule_parse(v->s, &s->opt.lr_schedule, &err), &err);
			}
			break;
		case O_LR_WARMUP_EPOCHS:
			s->opt.lr_warmup_epochs = (int) v->i;
			break;
		case O_LR_STEP_EPOCHS:
			s->opt.lr_step_epochs = (int) v->i;
			break;
		case O_LR_GAMMA:
			s->opt.lr_gamma = (float) v->r;
			break;
		case O_LR_DECAY_START:
			s->opt.lr_decay_start = (float) v->r;
			break;
		case O_WEIGHT_DECAY:
			s->opt.weight_decay = (float) v->r;
			break;
		case O_GRAD_CLIP:
			s->opt.grad_clip = (float) v->r;
			break;
		case O_EMA_DECAY:
			s->opt.ema_decay = (float) v->r;
			break;
		case O_DROPOUT:
			s->arch.dropout = (float) v->r;
			break;
		case O_TEMPERATURE:
			s->arch.temperature = (float) v->r;
			break;
		case O_TEMPERATURE_SCHEDULE:
			{
				moe_error	err;

				moe_check(moe_temperature_schedule_parse(v->s, &s->opt.temperature_schedule, &err),
						  &err);
			}
			break;
		case O_TEMPERATURE_END:
			s->opt.temperature_end = v->isnull ? NAN : (float) v->r;
			break;
		case O_TEMPERATURE_STEP_EPOCHS:
			s->opt.temperature_step_epochs = (int) v->i;
			break;
		case O_NOISY_GATING:
			s->arch.noisy_gating = v->b ? 1 : 0;
			break;
		case O_PATIENCE:
			s->opt.patience = (int) v->i;
			break;
		case O_MIN_DELTA:
			s->opt.min_delta = (float) v->r;
			break;
		case O_SEED:
			if (v->i < 0)
				invalid("%s must not be negative", name);
			s->opt.seed = (uint64_t) v->i;
			break;
		case O_DRUG_HIDDEN:
			set_widths(&s->arch.n_drug_layers, s->arch.drug_hidden, v, name);
			break;
		case O_PROTEIN_HIDDEN:
			set_widths(&s->arch.n_protein_layers, s->arch.protein_hidden, v, name);
			break;
		case O_GATE_HIDDEN:
			set_widths(&s->arch.n_gate_layers, s->arch.gate_hidden, v, name);
			break;
		case O_EXPERT_HIDDEN:
			set_widths(&s->arch.n_expert_layers, s->arch.expert_hidden, v, name);
			break;
		case O_DEPLOY:
			s->deploy = deploy_mode_parse(v->s);
			break;
		case O_MAX_SECONDS:
			if (v->isnull)
				s->max_seconds = 0.0;
			else if (!(v->r > 0.0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("max_seconds must be a positive number of seconds, or NULL for no limit, not %g",
								v->r)));
			else
				s->max_seconds = v->r;
			break;
		case O_REFIT:
			s->refit = v->b;
			break;
		case O_SPARSE_INPUTS:
			{
				moe_error	err;

				moe_check(moe_sparse_inputs_parse(v->s, &s->opt.sparse_inputs, &err), &err);
			}
			break;
		case O_DEVICE:
			if (v->isnull)
				s->device = -1;
			else if ((s->device = moe_device_parse(v->s)) < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("device must be one of %s, not \"%s\"", MOE_DEVICE_CHOICES, v->s)));
			break;
		case N_OPTIONS:
			break;
	}
}

/* ---- values from a procedure's arguments ------------------------------ */

/* An option's value from a datum of its SQL type (option_sql_type). */
static void
value_from_datum(Datum d, bool isnull, opt_type type, opt_value *v)
{
	memset(v, 0, sizeof(*v));
	v->isnull = isnull;
	if (v->isnull)
		return;
	switch (type)
	{
		case T_INT:
			v->i = DatumGetInt32(d);
			break;
		case T_BIGINT:
			v->i = DatumGetInt64(d);
			break;
		case T_REAL:
			v->r = DatumGetFloat4(d);
			break;
		case T_TEXT:
			v->s = TextDatumGetCString(d);
			break;
		case T_BOOL:
			v->b = DatumGetBool(d);
			break;
		case T_JSONB:
			v->j = DatumGetJsonbPCopy(d);
			break;
		case T_WIDTHS:
			{
				ArrayType  *arr = DatumGetArrayTypeP(d);
				Datum	   *elems;
				bool	   *nulls;
				int			count;

				if (ARR_NDIM(arr) > 1)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("layer widths must be a one-dimensional array")));
				deconstruct_array(arr, INT4OID, 4, true, TYPALIGN_INT, &elems, &nulls, &count);
				if (count > MOE_MAX_LAYERS)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("at most %d layer widths can be given, not %d", MOE_MAX_LAYERS,
									count)));
				for (int i = 0; i < count; i++)
				{
					if (nulls[i])
						ereport(ERROR,
								(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								 errmsg("layer widths must not contain NULL")));
					v->w[i] = DatumGetInt32(elems[i]);
				}
				v->n = count;
			}
			break;
	}
}

void
train_spec_defaults(train_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	moe_config_defaults(&spec->arch, 1, 1);
	moe_train_options_defaults(&spec->opt);
	spec->lb_method = NULL;
	spec->lb_weight = NAN;
	spec->deploy = MOE_DEPLOY_IF_BETTER;
	spec->max_seconds = 0.0;
	spec->device = -1;
}

/* The SQL type an option's argument must have. */
static Oid
option_sql_type(opt_type type)
{
	switch (type)
	{
		case T_INT:
			return INT4OID;
		case T_BIGINT:
			return INT8OID;
		case T_REAL:
			return FLOAT4OID;
		case T_TEXT:
			return TEXTOID;
		case T_BOOL:
			return BOOLOID;
		case T_WIDTHS:
			return INT4ARRAYOID;
		case T_JSONB:
			return JSONBOID;
	}
	return InvalidOid;
}

/*
 * The name of the argument at position i of the procedure being called
 * (palloc'd), or NULL when it has none.
 */
static char *
called_arg_name(FunctionCallInfo fcinfo, int i)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	Oid		   *types;
	char	  **names;
	char	   *modes;
	char	   *name = NULL;
	int			n;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for procedure %u", fcinfo->flinfo->fn_oid);
	n = get_func_arg_info(tup, &types, &names, &modes);
	if (names != NULL && i < n && names[i] != NULL && names[i][0] != '\0')
		name = pstrdup(names[i]);
	ReleaseSysCache(tup);
	return name;
}

/*
 * The procedure's SQL signature against the option table, by position,
 * type and name: a library newer than the installed SQL (before ALTER
 * EXTENSION ... UPDATE), or a procedure declared by hand, would otherwise
 * read the arguments at the wrong places, as the wrong types or under the
 * wrong names.
 */
static void
check_signature(FunctionCallInfo fcinfo)
{
	bool		ok = PG_NARGS() == FIRST_OPTION_ARG + N_OPTIONS + 1;
	int			bad = -1;

	for (int id = 0; ok && id < N_OPTIONS; id++)
		ok = get_fn_expr_argtype(fcinfo->flinfo, FIRST_OPTION_ARG + id) == option_sql_type(options[id].type);
	for (int id = 0; ok && id < N_OPTIONS; id++)
	{
		char	   *name = called_arg_name(fcinfo, FIRST_OPTION_ARG + id);

		ok = name != NULL && strcmp(name, options[id].name) == 0;
		if (!ok)
			bad = id;
	}
	if (!ok && bad >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("moe_train's SQL definition does not match the moe_pg library"),
				 errdetail("The library expects argument %d to be %s.",
						   FIRST_OPTION_ARG + bad + 1, options[bad].name),
				 errhint("Run ALTER EXTENSION moe_pg UPDATE to install the SQL of this library's version.")));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("moe_train's SQL definition does not match the moe_pg library"),
				 errdetail("The library expects %d arguments in the order of its option table; the installed procedure has %d.",
						   FIRST_OPTION_ARG + N_OPTIONS + 1, PG_NARGS()),
				 errhint("Run ALTER EXTENSION moe_pg UPDATE to install the SQL of this library's version.")));
}

/*
 * The procedure's SQL defaults against the library's (train_spec_defaults).
 * moe_train's SQL spells its defaults out so that \df shows them, but
 * moe_cross_validate, moe_sweep and the options argument take the
 * library's: a default drifted in one place would make the same settings
 * train differently by route.  Each SQL default, applied alone to the
 * library's defaults, must leave them as they are (the spec is zeroed
 * before it is filled, so comparing its bytes is exact).
 */
static void
check_defaults(FunctionCallInfo fcinfo)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	List	   *defaults = NIL;
	bool		isnull;
	Datum		d;
	int			first_default;
	train_spec	library;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for procedure %u", fcinfo->flinfo->fn_oid);
	d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proargdefaults, &isnull);
	if (!isnull)
		defaults = castNode(List, stringToNode(TextDatumGetCString(d)));
	first_default = ((Form_pg_proc) GETSTRUCT(tup))->pronargs - list_length(defaults);
	ReleaseSysCache(tup);

	train_spec_defaults(&library);
	for (int id = 0; id < N_OPTIONS; id++)
	{
		int			at = FIRST_OPTION_ARG + id - first_default;
		Node	   *expr = at >= 0 ? eval_const_expressions(NULL, list_nth(defaults, at)) : NULL;
		train_spec	with_sql_default;
		opt_value	v;

		train_spec_defaults(&with_sql_default);
		if (expr != NULL && IsA(expr, Const))
		{
			value_from_datum(((Const *) expr)->constvalue, ((Const *) expr)->constisnull,
							 options[id].type, &v);
			apply_option(&with_sql_default, id, &v);
		}
		if (expr == NULL || !IsA(expr, Const) ||
			memcmp(&with_sql_default, &library, sizeof(library)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("moe_train's SQL definition does not match the moe_pg library"),
					 errdetail("The default of argument %s is not the library's.", options[id].name),
					 errhint("Run ALTER EXTENSION moe_pg UPDATE to install the SQL of this library's version.")));
	}
}

void
train_spec_from_call(train_spec *spec, FunctionCallInfo fcinfo)
{
	check_signature(fcinfo);
	check_defaults(fcinfo);
	train_spec_defaults(spec);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dataset and fold must not be NULL")));
	spec->dataset = text_to_cstring(PG_GETARG_TEXT_PP(0));
	spec->fold = PG_GETARG_INT32(1);
	spec->model_name = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	for (int id = 0; id < N_OPTIONS; id++)
	{
		opt_value	v;

		value_from_datum(PG_GETARG_DATUM(FIRST_OPTION_ARG + id), PG_ARGISNULL(FIRST_OPTION_ARG + id),
						 options[id].type, &v);
		apply_option(spec, id, &v);
	}
	if (!PG_ARGISNULL(FIRST_OPTION_ARG + N_OPTIONS))
		train_spec_apply_json(spec, PG_GETARG_JSONB_P_COPY(FIRST_OPTION_ARG + N_OPTIONS), "options");
	if (spec->model_name == NULL)
		spec->model_name = pstrdup(spec->dataset);
}

/* ---- values from jsonb -------------------------------------------------- */

static void
wrong_json(const char *what, const char *name, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: \"%s\" must be %s", what, name, expected)));
}

static double
json_number(JsonbValue *jv, const char *what, const char *name)
{
	if (jv->type != jbvNumeric)
		wrong_json(what, name, "a number");
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(jv->val.numeric)));
}

static int64
json_integer(JsonbValue *jv, const char *what, const char *name)
{
	double		d = json_number(jv, what, name);

	if (d != floor(d) || fabs(d) > 9.0e15)
		wrong_json(what, name, "an integer");
	return (int64) d;
}

static void
value_from_json(JsonbValue *jv, opt_type type, const char *what, const char *name, opt_value *v)
{
	memset(v, 0, sizeof(*v));
	if (jv->type == jbvNull)
	{
		v->isnull = true;
		return;
	}
	switch (type)
	{
		case T_INT:
		case T_BIGINT:
			v->i = json_integer(jv, what, name);
			break;
		case T_REAL:
			v->r = json_number(jv, what, name);
			break;
		case T_TEXT:
			if (jv->type != jbvString)
				wrong_json(what, name, "a string");
			v->s = pnstrdup(jv->val.string.val, jv->val.string.len);
			break;
		case T_BOOL:
			if (jv->type != jbvBool)
				wrong_json(what, name, "true or false");
			v->b = jv->val.boolean;
			break;
		case T_JSONB:
			if (jv->type != jbvBinary || !JsonContainerIsObject(jv->val.binary.data))
				wrong_json(what, name, "an object");
			v->j = JsonbValueToJsonb(jv);
			break;
		case T_WIDTHS:
			{
				JsonbIterator *it;
				JsonbValue	elem;
				JsonbIteratorToken tok;

				if (jv->type != jbvBinary || !JsonContainerIsArray(jv->val.binary.data))
					wrong_json(what, name, "an array of layer widths");
				it = JsonbIteratorInit(jv->val.binary.data);
				while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
				{
					if (tok != WJB_ELEM)
						continue;
					if (v->n == MOE_MAX_LAYERS)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("%s: \"%s\" lists more than %d layer widths", what, name,
										MOE_MAX_LAYERS)));
					{
						int64		w = json_integer(&elem, what, name);

						if (w < PG_INT32_MIN || w > PG_INT32_MAX)
							ereport(ERROR,
									(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									 errmsg("%s: \"%s\" has a layer width out of range (%lld)", what,
											name, (long long) w)));
						v->w[v->n++] = (int32) w;
					}
				}
			}
			break;
	}
}

void
train_spec_apply_json(train_spec *spec, Jsonb *jb, const char *what)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object of training options", what)));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			int			id = option_index(key);
			opt_value	val;

			if (id < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: unknown training option \"%s\"", what, key),
						 errhint("Valid options: %s.", train_option_names())));
			if (options[id].bool_alias && v.type == jbvBool)
			{
				memset(&val, 0, sizeof(val));
				val.s = pstrdup(v.val.boolean ? "true" : "false");
			}
			else
				value_from_json(&v, options[id].type, what, key, &val);
			apply_option(spec, id, &val);
		}
	}
}

/* ---- validation ------------------------------------------------------- */

static void
parse_balance(train_spec *spec)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	moe_lb_method method = MOE_LB_NONE;
	moe_error	err;

	spec->opt.n_balance = 0;
	it = JsonbIteratorInit(&spec->balance->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *name = pnstrdup(v.val.string.val, v.val.string.len);

			moe_check(moe_lb_method_parse(name, &method, &err), &err);
		}
		else if (tok == WJB_VALUE)
		{
			double		w = json_number(&v, "balance", moe_lb_method_name(method));

			if (!(w >= 0.0) || !isfinite(w))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("balance: the weight of \"%s\" must be a non-negative number, not %g",
								moe_lb_method_name(method), w)));
			moe_check(moe_train_options_add_balance(&spec->opt, method, (float) w, &err), &err);
		}
	}
}

void
train_spec_finalize(train_spec *spec)
{
	moe_lb_method method;
	moe_error	err;

	if (spec->dataset == NULL || spec->dataset[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dataset must not be empty")));
	if (spec->model_name == NULL || spec->model_name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_name must not be empty")));

	if (spec->balance != NULL && (spec->lb_method != NULL || !isnan(spec->lb_weight)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give either lb_method and lb_weight or balance, not both")));
	if (spec->lb_method == NULL && !isnan(spec->lb_weight))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lb_weight needs an lb_method"),
				 errhint("The default balancing is %s; to change one weight, give balance.",
						 MOE_DEFAULT_BALANCE_TEXT)));
	if (spec->balance != NULL)
		parse_balance(spec);
	else if (spec->lb_method != NULL)
	{
		moe_check(moe_lb_method_parse(spec->lb_method, &method, &err), &err);
		if (isnan(spec->lb_weight))
			spec->lb_weight = MOE_DEFAULT_LB_WEIGHT;
		if (!(spec->lb_weight >= 0.0f))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("lb_weight must be a non-negative number, not %g", (double) spec->lb_weight)));
		moe_train_options_set_balance(&spec->opt, method, spec->lb_weight);
	}
	else
		moe_train_options_default_balance(&spec->opt);

	if (spec->opt.temperature_schedule == MOE_TS_CONSTANT && !isnan(spec->opt.temperature_end) &&
		spec->opt.temperature_end != spec->arch.temperature)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("temperature_end needs a temperature_schedule other than constant (valid: %s)",
						MOE_TEMPERATURE_SCHEDULE_CHOICES)));

	moe_check(moe_config_validate(&spec->arch, &err), &err);
	moe_check(moe_train_options_validate(&spec->opt, &err), &err);
}

/* ---- the config as JSON ---------------------------------------------- */

static void
json_widths(StringInfo s, const char *key, int n, const int32_t *w)
{
	moe_json_key(s, key);
	appendStringInfoChar(s, '[');
	for (int i = 0; i < n; i++)
		appendStringInfo(s, "%s%d", i ? ", " : "", w[i]);
	appendStringInfoChar(s, ']');
}

char *
train_spec_config_json(const train_spec *spec)
{
	StringInfoData s;
	const moe_config *a = &spec->arch;
	const moe_train_options *o = &spec->opt;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	moe_json_int(&s, "experts", a->n_experts);
	moe_json_int(&s, "top_k", a->top_k);
	moe_json_key(&s, "balance");
	appendStringInfoChar(&s, '{');
	for (int i = 0; i < o->n_balance; i++)
		moe_json_real(&s, moe_lb_method_name(o->balance[i].method), o->balance[i].weight);
	appendStringInfoChar(&s, '}');
	moe_json_text(&s, "lb_schedule", moe_lb_schedule_name(o->lb_schedule));
	moe_json_int(&s, "lb_warmup_epochs", o->lb_warmup_epochs);
	moe_json_real(&s, "lb_min_scale", o->lb_min_scale);
	moe_json_real(&s, "lb_decay", o->lb_decay);
	moe_json_int(&s, "epochs", o->epochs);
	moe_json_int(&s, "batch_size", o->batch_size);
	moe_json_real(&s, "lr", o->lr);
	moe_json_real(&s, "lr_min", o->lr_min);
	moe_json_text(&s, "lr_schedule", moe_lr_schedule_name(o->lr_schedule));
	moe_json_int(&s, "lr_warmup_epochs", o->lr_warmup_epochs);
	moe_json_int(&s, "lr_step_epochs", o->lr_step_epochs);
	moe_json_real(&s, "lr_gamma", o->lr_gamma);
	moe_json_real(&s, "lr_decay_start", o->lr_decay_start);
	moe_json_real(&s, "weight_decay", o->weight_decay);
	moe_json_real(&s, "grad_clip", o->grad_clip);
	moe_json_real(&s, "ema_decay", o->ema_decay);
	moe_json_real(&s, "dropout", a->dropout);
	moe_json_real(&s, "temperature", a->temperature);
	moe_json_text(&s, "temperature_schedule", moe_temperature_schedule_name(o->temperature_schedule));
	moe_json_real(&s, "temperature_end", isnan(o->temperature_end) ? a->temperature : o->temperature_end);
	moe_json_int(&s, "temperature_step_epochs", o->temperature_step_epochs);
	moe_json_bool(&s, "noisy_gating", a->noisy_gating);
	moe_json_int(&s, "patience", o->patience);
	moe_json_real(&s, "min_delta", o->min_delta);
	moe_json_int(&s, "seed", (long long) o->seed);
	json_widths(&s, "drug_hidden", a->n_drug_layers, a->drug_hidden);
	json_widths(&s, "protein_hidden", a->n_protein_layers, a->protein_hidden);
	json_widths(&s, "gate_hidden", a->n_gate_layers, a->gate_hidden);
	json_widths(&s, "expert_hidden", a->n_expert_layers, a->expert_hidden);
	moe_json_bool(&s, "refit", spec->refit);
	moe_json_text(&s, "sparse_inputs", moe_sparse_inputs_name(o->sparse_inputs));
	moe_json_key(&s, "drug_featurizer");
	appendStringInfoString(&s, moe_featurizer_json(&spec->drug_featurizer));
	moe_json_key(&s, "protein_featurizer");
	appendStringInfoString(&s, moe_featurizer_json(&spec->protein_featurizer));
	/* NULL: no limit */
	moe_json_real(&s, "max_seconds", spec->max_seconds > 0.0 ? spec->max_seconds : NAN);
	appendStringInfoChar(&s, '}');
	return s.data;
}
