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

bytea *
moe_checkpoint_row_in(Oid relid, int64 id, TransactionId xmin, TransactionId *xmin_out)
{
	Oid			argtypes[2] = {INT8OID, XIDOID};
	Datum		args[2] = {Int64GetDatum(id), TransactionIdGetDatum(xmin)};
	MemoryContext outer = CurrentMemoryContext;
	bytea	   *blob = NULL;
	bool		isnull;
	int			rc;
	const char *rel = "moe.models";

	if (OidIsValid(relid))
	{
		char	   *nsp = get_namespace_name(get_rel_namespace(relid));
		char	   *name = get_rel_name(relid);

		if (nsp == NULL || name == NULL)
			return NULL;		/* dropped meanwhile: no such row */
		rel = quote_qualified_identifier(nsp, name);
	}
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
