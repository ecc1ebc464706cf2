/*
 * sql_io.c — moe_export_model() and moe_import_model(): checkpoints to and
 * from server files, for roles that may read or write server files anyway
 * (the same rule as COPY TO/FROM a file).
 */
#include "model_store.h"
#include "checkpoint_rows.h"
#include "device.h"

#include <sys/stat.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "checkpoint.h"
#include "mb/pg_wchar.h"
#include "spi_safe.h"

static void
require_role(Oid role, const char *action, const char *role_name)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", action),
				 errdetail("Only superusers and roles with privileges of the \"%s\" role may do this.",
						   role_name)));
}

static char *
absolute_path_arg(text *t)
{
	char	   *path = text_to_cstring(t);

	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("path \"%s\" must be absolute", path)));
	return path;
}

static int64
export_model(int64 id, text *path_text)
{
	char	   *path,
			   *tmp;
	bytea	   *blob;
	FILE	   *f;
	size_t		len;

	require_role(ROLE_PG_WRITE_SERVER_FILES, "export a model to a server file", "pg_write_server_files");
	path = absolute_path_arg(path_text);

	blob = moe_checkpoint_row(id, InvalidTransactionId, NULL);
	if (blob == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model %lld does not exist", (long long) id)));
	len = VARSIZE_ANY_EXHDR(blob);

	/* Write beside the target and rename, so a reader never sees half a file. */
	tmp = psprintf("%s.tmp.%d", path, MyProcPid);
	f = AllocateFile(tmp, PG_BINARY_W);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for writing: %m", tmp)));
	if (fwrite(VARDATA_ANY(blob), 1, len, f) != len || fflush(f) != 0 || pg_fsync(fileno(f)) != 0)
	{
		int			save = errno;

		FreeFile(f);
		unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	if (FreeFile(f) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", tmp)));
	if (rename(tmp, path) != 0)
	{
		int			save = errno;

		unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename \"%s\" to \"%s\": %m", tmp, path)));
	}
	return (int64) len;
}

PG_FUNCTION_INFO_V1(moe_export_model_by_id);
Datum
moe_export_model_by_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(export_model(PG_GETARG_INT64(0), PG_GETARG_TEXT_PP(1)));
}

PG_FUNCTION_INFO_V1(moe_export_model_by_name);
Datum
moe_export_model_by_name(PG_FUNCTION_ARGS)
{
	int64		id = moe_model_id_by_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	PG_RETURN_INT64(export_model(id, PG_GETARG_TEXT_PP(1)));
}

/* The whole file as a bytea, refusing anything a checkpoint cannot be. */
static bytea *
read_checkpoint_file(const char *path)
{
	struct stat st;
	FILE	   *f;
	bytea	   *blob;

	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", path)));
	if (st.st_size > (off_t) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("file \"%s\" is too large to be a model (%lld bytes)", path,
						(long long) st.st_size)));
	f = AllocateFile(path, PG_BINARY_R);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	blob = palloc(VARHDRSZ + st.st_size);
	SET_VARSIZE(blob, VARHDRSZ + st.st_size);
	if (fread(VARDATA(blob), 1, st.st_size, f) != (size_t) st.st_size)
	{
		FreeFile(f);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	}
	FreeFile(f);
	return blob;
}

PG_FUNCTION_INFO_V1(moe_import_model_sql);
Datum
moe_import_model_sql(PG_FUNCTION_ARGS)
{
	char	   *path;
	bytea	   *blob;
	moe_model  *model;
	moe_checkpoint_view view;
	moe_error	err;
	moe_status	st;
	char	   *metadata;
	int64		id;
	bool		isnull;
	bool		deploy;

	require_role(ROLE_PG_READ_SERVER_FILES, "import a model from a server file", "pg_read_server_files");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("path and deploy must not be NULL")));
	if (!PG_ARGISNULL(1) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("name must not be empty"),
				 errhint("Pass NULL to take the name stored in the file.")));
	path = absolute_path_arg(PG_GETARG_TEXT_PP(0));
	deploy = PG_GETARG_BOOL(2);
	blob = read_checkpoint_file(path);

	/* Full validation, parameters included, before anything is stored. */
	st = moe_checkpoint_load(VARDATA(blob), VARSIZE(blob) - VARHDRSZ, moe_cpu_backend(), &model, &err);
	if (st != MOE_OK)
		ereport(ERROR,
				(errcode(st == MOE_ERR_VERSION ? ERRCODE_FEATURE_NOT_SUPPORTED : ERRCODE_DATA_CORRUPTED),
				 errmsg("\"%s\" is not a usable model: %s", path, err.message)));
	moe_model_free(model);
	moe_check(moe_checkpoint_read(VARDATA(blob), VARSIZE(blob) - VARHDRSZ, &view, &err), &err);
	metadata = pnstrdup(view.metadata_len > 0 ? view.metadata : "{}",
						view.metadata_len > 0 ? view.metadata_len : 2);
	/* Text from a file enters the database only in its encoding: a stray
	 * byte stored here would make every later dump unrestorable. */
	if (!pg_verify_mbstr(GetDatabaseEncoding(), metadata, strlen(metadata), true) ||
		strlen(metadata) != (size_t) (view.metadata_len > 0 ? view.metadata_len : 2))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("cannot import \"%s\": its metadata is not valid %s text", path,
						GetDatabaseEncodingName()),
				 errdetail("The model name, dataset and configuration stored in a checkpoint must be in the database encoding, without NUL bytes.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Oid			types[3] = {TEXTOID, TEXTOID, BYTEAOID};
		Datum		values[3] = {CStringGetTextDatum(metadata),
			PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1), PointerGetDatum(blob)};
		char		nulls[3] = {' ', PG_ARGISNULL(1) ? 'n' : ' ', ' '};
		int			rc;

		/* A checkpoint's metadata is JSON written by moe_train; a file that
		 * passed the checksum but carries something else is refused here. */
		PG_TRY();
		{
			rc = moe_models_write("INSERT INTO moe.models (name, dataset, fold, config, metrics, checkpoint) "
								  "SELECT coalesce($2, nullif(m->>'name', '')), m->>'dataset', (m->>'fold')::integer, "
								  "coalesce(m->'config', '{}'), m->'metrics', $3 "
								  "FROM (SELECT $1::jsonb AS m) s RETURNING id",
								  3, types, values, nulls, 1);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(CurTransactionContext);
			edata = CopyErrorData();
			if (edata->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION &&
				edata->sqlerrcode != ERRCODE_NOT_NULL_VIOLATION &&
				edata->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER)
				PG_RE_THROW();
			FlushErrorState();
			ereport(ERROR,
					(errcode(edata->sqlerrcode == ERRCODE_NOT_NULL_VIOLATION ? ERRCODE_NULL_VALUE_NOT_ALLOWED
							 : ERRCODE_DATA_CORRUPTED),
					 errmsg("cannot import \"%s\": %s", path,
							edata->sqlerrcode == ERRCODE_NOT_NULL_VIOLATION
							? "the file names no model, so name must be given"
							: "its metadata is not valid JSON")));
		}
		PG_END_TRY();
		if (rc != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert into moe.models");
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (deploy)
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(id)};

		if (moe_spi_execute("INSERT INTO moe.deployments (name, model_id) "
							"SELECT m.name, m.id FROM moe.models m WHERE m.id = $1 "
							"ON CONFLICT (name) DO UPDATE SET model_id = EXCLUDED.model_id, "
							"updated_at = now(), updated_by = current_user",
							1, types, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not update moe.deployments");
	}
	SPI_finish();
	PG_RETURN_INT64(id);
}
