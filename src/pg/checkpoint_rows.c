/*
 * checkpoint_rows.c — see checkpoint_rows.h.
 */
#include "checkpoint_rows.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "spi_safe.h"

bytea *
moe_checkpoint_row(int64 id, TransactionId xmin, TransactionId *xmin_out)
{
	return moe_checkpoint_row_in(InvalidOid, id, xmin, xmin_out);
}

/* relid's name, schema-qualified and quoted (InvalidOid: moe.models);
 * NULL for a relation dropped meanwhile. */
static const char *
checkpoint_relation(Oid relid)
{
	char	   *nsp,
			   *name;

	if (!OidIsValid(relid))
		return "moe.models";
	nsp = get_namespace_name(get_rel_namespace(relid));
	name = get_rel_name(relid);
	return nsp != NULL && name != NULL ? quote_qualified_identifier(nsp, name) : NULL;
}

bool
moe_checkpoint_row_version(Oid relid, int64 id, TransactionId *xmin)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	const char *rel = checkpoint_relation(relid);
	bool		isnull,
				exists;

	if (rel == NULL)
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (moe_spi_execute(psprintf("SELECT m.xmin FROM %s m WHERE m.id = $1", rel), 1, argtypes, args, NULL,
						true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", rel);
	exists = SPI_processed > 0;
	if (exists)
		*xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
													&isnull));
	SPI_finish();
	return exists;
}

bytea *
moe_checkpoint_row_in(Oid relid, int64 id, TransactionId xmin, TransactionId *xmin_out)
{
	Oid			argtypes[2] = {INT8OID, XIDOID};
	Datum		args[2] = {Int64GetDatum(id), TransactionIdGetDatum(xmin)};
	MemoryContext outer = CurrentMemoryContext;
	bytea	   *blob = NULL;
	bool		isnull;
	int			rc;
	const char *rel = checkpoint_relation(relid);

	if (rel == NULL)
		return NULL;			/* dropped meanwhile: no such row */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (TransactionIdIsValid(xmin))
		rc = moe_spi_execute(psprintf("SELECT m.checkpoint, m.xmin FROM %s m "
									  "WHERE m.id = $1 AND m.xmin = $2", rel),
							 2, argtypes, args, NULL, true, 1);
	else
		rc = moe_spi_execute(psprintf("SELECT m.checkpoint, m.xmin FROM %s m WHERE m.id = $1", rel),
							 1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", rel);
	if (SPI_processed > 0)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(outer);

		/* detoasted into the caller's memory, which outlives SPI_finish */
		blob = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 1, &isnull));
		if (xmin_out != NULL)
			*xmin_out = DatumGetTransactionId(SPI_getbinval(tup, desc, 2, &isnull));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return blob;
}
