/*
 * sql_models.c — the SQL functions about stored models as objects:
 * moe_model_info() (what a checkpoint holds), moe_drop_model(), and
 * moe_cache() / moe_cache_clear() (what this backend and the server hold
 * loaded).  Scoring is in sql_predict.c, sql_score.c and sql_screen.c,
 * export and import in sql_io.c.
 */
#include "model_store.h"
#include "checkpoint_rows.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "miscadmin.h"
#include "utils/acl.h"

#include "checkpoint.h"
#include "entity_cache.h"
#include "shared_cache.h"
#include "spi_safe.h"

static void
model_info(FunctionCallInfo fcinfo, int64 id)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *blob;
	moe_checkpoint_view view;
	moe_error	err;
	char		md5[33];
	Datum		values[9];
	bool		nulls[9] = {false};

	InitMaterializedSRF(fcinfo, 0);
	blob = moe_checkpoint_row(id, InvalidTransactionId, NULL);
	if (blob == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) id)));
	if (moe_checkpoint_read(VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), &view, &err) != MOE_OK)
		ereport(ERROR,
				(errcode(err.status == MOE_ERR_VERSION ? ERRCODE_FEATURE_NOT_SUPPORTED : ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot read model %lld: %s", (long long) id, err.message)));
	/* A fingerprint of the weights alone, independent of names and metrics. */
	moe_params_md5(view.data, view.n_params, md5);

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum((int32) view.version);
	values[2] = Int64GetDatum((int64) view.n_params);
	values[3] = Int64GetDatum((int64) VARSIZE_ANY_EXHDR(blob));
	values[4] = Int32GetDatum(view.cfg.drug_dim);
	values[5] = Int32GetDatum(view.cfg.protein_dim);
	values[6] = Int32GetDatum(view.cfg.n_experts);
	values[7] = Int32GetDatum(view.cfg.top_k);
	values[8] = CStringGetTextDatum(md5);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(moe_model_info_by_id);
Datum
moe_model_info_by_id(PG_FUNCTION_ARGS)
{
	model_info(fcinfo, PG_GETARG_INT64(0));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moe_model_info_by_name);
Datum
moe_model_info_by_name(PG_FUNCTION_ARGS)
{
	model_info(fcinfo, moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	return (Datum) 0;
}

/* ---- moe_drop_model() --------------------------------------------------- */

/* Whether the current user may act for role name (is it, is a member of
 * it, or is a superuser); a role that no longer exists: superusers only. */
static bool
may_act_as(const char *role_name)
{
	Oid			role = get_role_oid(role_name, true);

	if (superuser())
		return true;
	return OidIsValid(role) && is_member_of_role(GetUserId(), role);
}

/*
 * moe_drop_model(model_id): delete a stored model that no name points at.
 * Only the role that made it (or a member of that role, or a superuser)
 * may drop it.
 */
PG_FUNCTION_INFO_V1(moe_drop_model_sql);
Datum
moe_drop_model_sql(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	int64		id;
	char	   *owner,
			   *names;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model_id must not be NULL")));
	id = PG_GETARG_INT64(0);
	values[0] = Int64GetDatum(id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute("SELECT m.created_by::pg_catalog.text, "
						"(SELECT pg_catalog.string_agg(pg_catalog.quote_literal(d.name), ', ' ORDER BY d.name) "
						"   FROM moe.deployments d WHERE d.model_id = m.id) "
						"FROM moe.models m WHERE m.id = $1", 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) id)));
	owner = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (!may_act_as(owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("model %lld belongs to role \"%s\"", (long long) id, owner),
				 errdetail("Only the role that made a model, its members and superusers may drop it.")));
	if (names != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("model %lld is deployed as %s", (long long) id, names),
				 errhint("Point those names at another model with moe_deploy() or delete them from moe.deployments first.")));
	if (moe_models_write("DELETE FROM moe.models m WHERE m.id = $1", 1, types, values, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from moe.models");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) id)));
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---- moe_cache() and moe_cache_clear() ------------------------------ */

/* shared_parts < 0: not a shared entry (NULL) */
static void
cache_row(Tuplestorestate *ts, TupleDesc desc, int64 id, const char *scope, int64 bytes,
		  int64 loads, int64 hits, int32 pins, TimestampTz last_use, int64 shared_parts)
{
	Datum		values[11];
	bool		nulls[11] = {false};
	int64		parts,
				part_bytes,
				copied,
				phits,
				pmisses;

	moe_entity_cache_usage(id, &parts, &part_bytes, &copied, &phits, &pmisses);
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(scope);
	values[2] = Int64GetDatum(bytes);
	values[3] = Int64GetDatum(loads);
	values[4] = Int64GetDatum(hits);
	values[5] = Int32GetDatum(pins);
	values[6] = TimestampTzGetDatum(last_use);
	nulls[6] = last_use == 0;
	values[7] = Int64GetDatum(parts);
	values[8] = Int64GetDatum(part_bytes);
	values[9] = Int64GetDatum(copied);
	values[10] = Int64GetDatum(shared_parts);
	nulls[10] = shared_parts < 0;
	tuplestore_putvalues(ts, desc, values, nulls);
}

PG_FUNCTION_INFO_V1(moe_cache_sql);
Datum
moe_cache_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	moe_shared_stats *shared;
	moe_local_stats *local;
	Size		used,
				capacity;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = moe_shared_stats_list(moe_models_relid(), &shared, &used, &capacity);
	for (int i = 0; i < n; i++)
		cache_row(rsinfo->setResult, rsinfo->setDesc, shared[i].model_id, "shared", shared[i].bytes,
				  shared[i].loads, shared[i].hits, shared[i].pins, shared[i].last_use,
				  shared[i].entity_parts);
	n = moe_local_stats_list(&local);
	for (int i = 0; i < n; i++)
		if (!local[i].shared)
			cache_row(rsinfo->setResult, rsinfo->setDesc, local[i].model_id, "local", local[i].bytes,
					  1, local[i].hits, 0, local[i].last_use, -1);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(moe_cache_clear_sql);
Datum
moe_cache_clear_sql(PG_FUNCTION_ARGS)
{
	char	   *scope = PG_ARGISNULL(0) ? "connection" : text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strcmp(scope, "connection") != 0 && strcmp(scope, "database") != 0 &&
		strcmp(scope, "server") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown scope \"%s\" (valid: connection, database, server)", scope)));
	moe_model_cache_forget(-1);
	if (strcmp(scope, "database") == 0)
		moe_shared_forget(moe_models_relid(), -1);
	else if (strcmp(scope, "server") == 0)
		moe_shared_forget_all();
	PG_RETURN_VOID();
}
