/*
 * json_write.c — writing the keys and values of moe_pg's own JSON objects
 * (json_write.h).
 */
#include "json_write.h"

#include <math.h>
#include <stdlib.h>

#include "utils/json.h"

void
moe_json_key(StringInfo s, const char *key)
{
	if (s->len > 0 && s->data[s->len - 1] != '{')
		appendStringInfoString(s, ", ");
	escape_json(s, key);
	appendStringInfoString(s, ": ");
}

void
moe_json_int(StringInfo s, const char *key, long long v)
{
	moe_json_key(s, key);
	appendStringInfo(s, "%lld", v);
}

/* The shortest of 6 to 9 significant digits that reads back as (float) v. */
static void
append_number(StringInfo s, double v)
{
	if (!isfinite(v))
	{
		appendStringInfoString(s, "null");
		return;
	}
	for (int digits = 6; digits <= 9; digits++)
	{
		char		buf[32];

		snprintf(buf, sizeof(buf), "%.*g", digits, v);
		if (strtof(buf, NULL) == (float) v || digits == 9)
		{
			appendStringInfoString(s, buf);
			return;
		}
	}
}

void
moe_json_real(StringInfo s, const char *key, double v)
{
	moe_json_key(s, key);
	append_number(s, v);
}

void
moe_json_real_array(StringInfo s, const char *key, const double *v, int n)
{
	moe_json_key(s, key);
	appendStringInfoChar(s, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(s, ", ");
		append_number(s, v[i]);
	}
	appendStringInfoChar(s, ']');
}

void
moe_json_text(StringInfo s, const char *key, const char *v)
{
	moe_json_key(s, key);
	escape_json(s, v);
}

void
moe_json_bool(StringInfo s, const char *key, bool v)
{
	moe_json_key(s, key);
	appendStringInfoString(s, v ? "true" : "false");
}
