/*
 * unit.h — the smallest test harness that does the job.
 *
 * Each test program defines test functions, calls them through RUN(), and
 * returns unit_summary().  CHECK* macros record a failure with file and line
 * and carry on, so one run shows every broken assertion.
 */
#ifndef MOE_UNIT_H
#define MOE_UNIT_H

#include <math.h>
#include <stdio.h>

static int	unit_failures = 0;
static int	unit_checks = 0;

#define CHECK(cond) \
	do { \
		unit_checks++; \
		if (!(cond)) { \
			unit_failures++; \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

#define CHECK_NEAR(a, b, tol) \
	do { \
		double _a = (double) (a), _b = (double) (b); \
		unit_checks++; \
		if (!(fabs(_a - _b) <= (tol))) { \
			unit_failures++; \
			fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %.3g\n", \
					__FILE__, __LINE__, #a, _a, #b, _b, (double) (tol)); \
		} \
	} while (0)

#define CHECK_INT(a, b) \
	do { \
		long long _a = (long long) (a), _b = (long long) (b); \
		unit_checks++; \
		if (_a != _b) { \
			unit_failures++; \
			fprintf(stderr, "%s:%d: CHECK_INT failed: %s = %lld, %s = %lld\n", \
					__FILE__, __LINE__, #a, _a, #b, _b); \
		} \
	} while (0)

#define RUN(test) \
	do { \
		int _before = unit_failures; \
		test(); \
		printf("%s %s\n", unit_failures == _before ? "ok  " : "FAIL", #test); \
	} while (0)

static inline int
unit_summary(const char *program)
{
	printf("%s: %d checks, %d failures\n", program, unit_checks, unit_failures);
	return unit_failures == 0 ? 0 : 1;
}

#endif
