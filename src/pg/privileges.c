/*
 * privileges.c — see privileges.h.
 */
#include "privileges.h"

#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/* The last user found allowed, for which table; reset by invalidations. */
static Oid	allowed_user = InvalidOid;
static Oid	allowed_rel = InvalidOid;
static uint64 invalidations = 0;
static bool callbacks_registered = false;

static void
forget_on_syscache(Datum arg, int cacheid, uint32 hashvalue)
{
	allowed_user = InvalidOid;
	invalidations++;
}

static void
forget_on_relcache(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == allowed_rel)
	{
		allowed_user = InvalidOid;
		invalidations++;
	}
}

void
moe_check_model_read(Oid models_relid)
{
	Oid			user = GetUserId();
	Oid			nsp;
	uint64		seen;
	AclResult	acl;

	if (user == allowed_user && models_relid == allowed_rel)
		return;
	if (!callbacks_registered)
	{
		/* grants on the table, on its schema, role membership, superuser */
		CacheRegisterRelcacheCallback(forget_on_relcache, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, forget_on_syscache, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, forget_on_syscache, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, forget_on_syscache, (Datum) 0);
		callbacks_registered = true;
	}
	seen = invalidations;

	nsp = get_rel_namespace(models_relid);
	acl = pg_namespace_aclcheck(nsp, user, ACL_USAGE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_SCHEMA, get_namespace_name(nsp));
	if (pg_class_aclcheck(models_relid, user, ACL_SELECT) != ACLCHECK_OK)
	{
		AttrNumber	id = get_attnum(models_relid, "id");
		AttrNumber	checkpoint = get_attnum(models_relid, "checkpoint");

		if (id == InvalidAttrNumber || checkpoint == InvalidAttrNumber ||
			pg_attribute_aclcheck(models_relid, id, user, ACL_SELECT) != ACLCHECK_OK ||
			pg_attribute_aclcheck(models_relid, checkpoint, user, ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(models_relid));
	}
	/* remember only if nothing changed while we looked */
	if (seen == invalidations)
	{
		allowed_user = user;
		allowed_rel = models_relid;
	}
}
