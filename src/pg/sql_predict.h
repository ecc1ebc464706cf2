/*
 * sql_predict.h — moe_predict and moe_route, per pair, by id, by name or
 * with the default model.  Owns moe_pg.default_model.  Only _PG_init
 * calls this header; the functions are called from SQL.
 */
#ifndef MOE_PG_SQL_PREDICT_H
#define MOE_PG_SQL_PREDICT_H

#include "model_store.h"

extern char *moe_default_model;

/* Register moe_pg.default_model (from _PG_init). */
void		moe_predict_init(void);

#endif
