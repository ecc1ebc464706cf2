/*
 * json_write.h — the JSON objects moe_pg writes itself (a run's config,
 * metrics and held-out routing, a model's metadata): one way to write a
 * key and a number, so the same value reads the same wherever it was
 * stored.  Numbers are written as the shortest decimal that reads back as
 * the same float (0.1, not 0.100000001), the engine's precision; values
 * that are not finite as null.  Called by the training glue and the
 * featurizer specs; calls nothing of moe_pg.
 */
#ifndef MOE_PG_JSON_WRITE_H
#define MOE_PG_JSON_WRITE_H

#include "postgres.h"

#include "lib/stringinfo.h"

/* "key": after a comma unless it opens an object. */
void		moe_json_key(StringInfo s, const char *key);
void		moe_json_int(StringInfo s, const char *key, long long v);
void		moe_json_real(StringInfo s, const char *key, double v);
void		moe_json_real_array(StringInfo s, const char *key, const double *v, int n);
void		moe_json_text(StringInfo s, const char *key, const char *v);
void		moe_json_bool(StringInfo s, const char *key, bool v);

#endif
