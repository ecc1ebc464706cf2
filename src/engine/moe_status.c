#include "moe_status.h"

#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 0)))
static moe_status
fail_va(moe_error *err, moe_status st, int position, const char *fmt, va_list ap)
{
	if (err != NULL)
	{
		err->status = st;
		err->position = position;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
	}
	return st;
}

moe_status
moe_fail(moe_error *err, moe_status st, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fail_va(err, st, 0, fmt, ap);
	va_end(ap);
	return st;
}

moe_status
moe_fail_at(moe_error *err, moe_status st, int position, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fail_va(err, st, position, fmt, ap);
	va_end(ap);
	return st;
}

void
moe_error_clear(moe_error *err)
{
	if (err != NULL)
	{
		err->status = MOE_OK;
		err->position = 0;
		err->message[0] = '\0';
	}
}
