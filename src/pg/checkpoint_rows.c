/*
 * checkpoint_rows.c — see checkpoint_rows.h.
 */
#include "checkpoint_rows.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/memutils.h"
#include "spi_safe.h"

bytea *
moe_checkpoint_row(int64 id, TransactionId xmin, TransactionId *xmin_out)
{
	Oid			argtypes[2] = {INT8OID, XIDOID};
	Datum		args[2] = {Int64GetDatum(id), TransactionIdGetDatum(xmin)};
	MemoryContext outer = CurrentMemoryContext;
	bytea	   *blob = NULL;
	bool		isnull;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (TransactionIdIsValid(xmin))
		rc = moe_spi_execute("SELECT m.checkpoint, m.xmin FROM moe.models m "
							 "WHERE m.id = $1 AND m.xmin = $2", 2, argtypes, args, NULL, true, 1);
	else
		rc = moe_spi_execute("SELECT m.checkpoint, m.xmin FROM moe.models m WHERE m.id = $1",
							 1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read moe.models");
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
