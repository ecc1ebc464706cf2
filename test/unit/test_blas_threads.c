/*
 * test_blas_threads.c — OpenBLAS never starts a thread in a process forked
 * after moe_blas_single_threaded() (a PostgreSQL backend forked from the
 * postmaster): the CPU backend setting its threads there must not restart
 * OpenBLAS's thread server, whose helper spins ~0.1 s of CPU per backend.
 */
#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "unit.h"

static int
threads_of_this_process(void)
{
	DIR		   *d = opendir("/proc/self/task");
	struct dirent *e;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* What a backend does: make a CPU backend, set its threads again. */
static int
child_thread_count(void)
{
	moe_backend *be = moe_backend_cpu_create(0);

	if (be == NULL)
		return -1;
	moe_backend_cpu_set_threads(2);
	moe_blas_single_threaded();
	be->destroy(be);
	return threads_of_this_process();
}

static void
test_forked_process_stays_single_threaded(void)
{
	int			fds[2],
				status = 0,
				count = -2;
	pid_t		pid;

	moe_blas_single_threaded();
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
	{
		int			n = child_thread_count();

		_exit(write(fds[1], &n, sizeof(n)) == sizeof(n) ? 0 : 1);
	}
	CHECK(read(fds[0], &count, sizeof(count)) == sizeof(count));
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[0]);
	close(fds[1]);
	CHECK_INT(count, 1);
}

int
main(void)
{
	RUN(test_forked_process_stays_single_threaded);
	return unit_summary("test_blas_threads");
}
