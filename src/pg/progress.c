/*
 * progress.c — see progress.h.
 */
#include "progress.h"

#include "utils/guc.h"

static const struct config_enum_entry progress_options[] = {
	{"epoch", MOE_PROGRESS_EPOCH, false},
	{"summary", MOE_PROGRESS_SUMMARY, false},
	{"quiet", MOE_PROGRESS_QUIET, false},
	{NULL, 0, false}
};

int			moe_progress = MOE_PROGRESS_EPOCH;

void
moe_progress_init(void)
{
	DefineCustomEnumVariable("moe_pg.progress",
							 "How much training reports as it goes: epoch, summary or quiet.",
							 "epoch: a NOTICE per epoch and at the start and end of a run; summary: only "
							 "the start and end; quiet: none (warnings and errors always).",
							 &moe_progress,
							 MOE_PROGRESS_EPOCH, progress_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

bool
progress_at(moe_progress_level level)
{
	return moe_progress >= (int) level;
}
