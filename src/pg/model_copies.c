/*
 * model_copies.c — see model_copies.h.
 */
#include "model_copies.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"

#include "spi_safe.h"

Oid
moe_model_copies_local_shard(void)
{
	Oid			nsp = get_namespace_oid("moe", true);
	Oid			copies = OidIsValid(nsp) ? get_relname_relid("model_copies", nsp) : InvalidOid;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(copies)};
	Oid			shard = InvalidOid;
	bool		isnull;

	if (!OidIsValid(copies) || !OidIsValid(get_extension_oid("citus", true)))
		return InvalidOid;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a worker only: the coordinator's own moe.models is the truth there */
	if (moe_spi_execute("SELECT s.shardid FROM pg_catalog.pg_dist_shard s, pg_catalog.pg_dist_local_group g "
						"WHERE g.groupid <> 0 AND s.logicalrelid::pg_catalog.oid = $1",
						1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_dist_shard");
	if (SPI_processed > 0)
	{
		int64		shardid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
														 &isnull));
		/* Citus names a shard <table>_<shardid>, in the table's schema */
		char	   *name = psprintf("model_copies_" INT64_FORMAT, shardid);

		shard = get_relname_relid(name, nsp);
	}
	SPI_finish();
	return shard;
}
