/*
 * progress.h — how much training says as it goes (moe_pg.progress).
 * Owns the setting; training and the device notices ask progress_at().
 */
#ifndef MOE_PG_PROGRESS_H
#define MOE_PG_PROGRESS_H

#include "postgres.h"

typedef enum moe_progress_level
{
	MOE_PROGRESS_QUIET = 0,		/* nothing but warnings and errors */
	MOE_PROGRESS_SUMMARY,		/* a run's start and end */
	MOE_PROGRESS_EPOCH			/* and every epoch */
} moe_progress_level;

extern int	moe_progress;

/* Register moe_pg.progress (from _PG_init). */
void		moe_progress_init(void);

/* Whether NOTICEs of this level are wanted. */
bool		progress_at(moe_progress_level level);

#endif
