/*
 * relation_read.c — see relation_read.h.
 */
#include "relation_read.h"

#include "access/relation.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

void
moe_relation_reader_init(moe_relation_reader *r, Oid relid, const char *what)
{
	Oid			user = GetUserId();
	Relation	rel;
	bool		row_security,
				invoker_view;
	AclResult	acl;

	memset(r, 0, sizeof(*r));
	r->relid = relid;
	rel = relation_open(relid, AccessShareLock);
	r->owner = rel->rd_rel->relowner;
	row_security = rel->rd_rel->relrowsecurity;
	invoker_view = rel->rd_rel->relkind == RELKIND_VIEW && RelationHasSecurityInvoker(rel);
	relation_close(rel, AccessShareLock);

	acl = pg_namespace_aclcheck(get_rel_namespace(relid), user, ACL_USAGE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_SCHEMA, get_namespace_name(get_rel_namespace(relid)));
	if (pg_class_aclcheck(relid, user, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, user, ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s %s", get_rel_relkind(relid) == RELKIND_VIEW ? "view" : "table",
						get_rel_name(relid)),
				 errdetail("%s reads all of it, which needs SELECT on it (or on all its columns).", what)));
	/* anyone else, even a member of the owner or a superuser, could have
	 * more privileges than the owner: its code runs as the owner */
	r->as_owner = user != r->owner;
	if (r->as_owner && !superuser_arg(user) && (row_security || invoker_view))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s reads %s of role \"%s\", which %s", what, get_rel_name(relid),
						GetUserNameFromId(r->owner, false),
						row_security ? "has row-level security" : "is a security_invoker view"),
				 errdetail("moe_pg reads other roles' relations as their owner, which would not apply their row policies to you."),
				 errhint("Use a relation you own, e.g. a table or view of the rows you may read.")));
}

void
moe_relation_read_begin(moe_relation_reader *r)
{
	Assert(!r->reading);
	GetUserIdAndSecContext(&r->saved_user, &r->saved_sec_context);
	if (r->as_owner)
		SetUserIdAndSecContext(r->owner, r->saved_sec_context | SECURITY_RESTRICTED_OPERATION);
	r->reading = true;
}

void
moe_relation_read_end(moe_relation_reader *r)
{
	if (!r->reading)
		return;
	SetUserIdAndSecContext(r->saved_user, r->saved_sec_context);
	r->reading = false;
}
