/*
 * device.h — where work runs: the process's CPU backend and, on request,
 * the CUDA backend (docs/cuda.md).  Owns moe_pg.threads and moe_pg.device.
 * Called by training and scoring; calls only glue.h and progress.h.
 */
#ifndef MOE_PG_DEVICE_H
#define MOE_PG_DEVICE_H

#include "glue.h"

extern int	moe_threads;

/* Register moe_pg.threads and moe_pg.device (from _PG_init). */
void		moe_device_init(void);

/* The process-wide CPU backend, created on first use. */
moe_backend *moe_cpu_backend(void);

/* Values of moe_pg.device and of moe_train's device option. */
typedef enum moe_device_choice
{
	MOE_DEVICE_AUTO = 0,		/* a CUDA GPU when one is usable, else the CPU */
	MOE_DEVICE_CPU,
	MOE_DEVICE_CUDA				/* a GPU or an error */
} moe_device_choice;

#define MOE_DEVICE_CHOICES "auto, cpu, cuda"

extern int	moe_device;

/* The choice named name, or -1 when it is not one. */
int			moe_device_parse(const char *name);

/*
 * The backend that work (what, e.g. "training") runs on for choice, or for
 * the moe_pg.device setting when choice < 0.  The CUDA library is opened
 * and the device initialised on the first request of the session, never
 * earlier; the backend then lives as long as the session.  cuda without a
 * usable GPU is an ERROR naming the reason; auto falls back to the CPU and
 * says so in a NOTICE once per session.
 */
moe_backend *moe_device_backend(int choice, const char *what);

#endif
