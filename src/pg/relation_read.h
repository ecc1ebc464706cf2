/*
 * relation_read.h — reading a relation that a name points at (a dataset's
 * relation, moe_score's source) without running another role's code with
 * the caller's privileges.
 *
 * A view is code: its functions run as whoever reads it.  A dataset name
 * can point at a view another role made, so a superuser who trains on it
 * would otherwise run that role's functions as superuser.  As PostgreSQL
 * does for REFRESH MATERIALIZED VIEW, a relation the caller does not own is
 * read as its owner inside a security-restricted operation, after checking
 * that the caller may read it (USAGE on its schema, SELECT on it or on
 * every column).  Only the owner itself reads as itself: a member of the
 * owning role, or a superuser, may hold privileges the owner does not.
 * Relations whose rows depend on who reads them (row-level security, a
 * security_invoker view) are refused to other roles but superusers:
 * reading them as the owner would show rows the caller may not see, and
 * reading them as the caller would run the owner's policy code.
 *
 * Any module of src/pg may call these; they call nothing of moe_pg.
 */
#ifndef MOE_PG_RELATION_READ_H
#define MOE_PG_RELATION_READ_H

#include "postgres.h"

typedef struct moe_relation_reader
{
	Oid			relid;
	Oid			owner;
	bool		as_owner;		/* false: the caller owns (or acts for) it */
	Oid			saved_user;		/* while reading: the identity to go back to */
	int			saved_sec_context;
	bool		reading;
} moe_relation_reader;

/*
 * Check that the caller may read relid (ERROR 42501 naming the relation
 * and what for otherwise) and decide as whom it is read.
 */
void		moe_relation_reader_init(moe_relation_reader *r, Oid relid, const char *what);

/* Become the reading identity until moe_relation_read_end (an error
 * unwinds it with the (sub)transaction). */
void		moe_relation_read_begin(moe_relation_reader *r);
void		moe_relation_read_end(moe_relation_reader *r);

#endif
