/*
 * moe_status.h — status codes and error reports of the engine.
 *
 * The engine never aborts and never prints: every fallible function returns a
 * moe_status and, on failure, fills a moe_error whose message names the
 * problem.  The SQL layer maps the status to a SQLSTATE.
 */
#ifndef MOE_STATUS_H
#define MOE_STATUS_H

#include <stdarg.h>

typedef enum moe_status
{
	MOE_OK = 0,
	MOE_ERR_INVALID,			/* bad argument or option value */
	MOE_ERR_DATA,				/* bad input data: NaN, wrong dimension, bad character */
	MOE_ERR_NOMEM,				/* allocation failed or size overflow */
	MOE_ERR_CORRUPT,			/* checkpoint truncated or damaged */
	MOE_ERR_VERSION,			/* checkpoint written by a newer format */
	MOE_ERR_CANCELLED,			/* a callback asked to stop */
	MOE_ERR_BACKEND				/* the compute backend failed */
} moe_status;

typedef struct moe_error
{
	moe_status	status;
	int			position;		/* 1-based position in a text input, 0 if none */
	char		message[256];
} moe_error;

/* Fill err (which may be NULL) and return st, so callers can write
 * "return moe_fail(err, MOE_ERR_DATA, "...", ...);". */
moe_status	moe_fail(moe_error *err, moe_status st, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* The same, also recording a 1-based position in a text input. */
moe_status	moe_fail_at(moe_error *err, moe_status st, int position, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

void		moe_error_clear(moe_error *err);

#endif
