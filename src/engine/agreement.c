/*
 * agreement.c — NMI, ARI and purity from the contingency table of two
 * labellings.
 */
#include "agreement.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Map labels to 0..k-1 in order of first appearance; returns k or -1. */
static int
densify(const int *labels, size_t n, int *dense)
{
	int			max = 0,
				k = 0;
	int		   *map;

	for (size_t i = 0; i < n; i++)
	{
		if (labels[i] < 0)
			return -1;
		if (labels[i] > max)
			max = labels[i];
	}
	map = malloc(sizeof(int) * ((size_t) max + 1));
	if (map == NULL)
		return -1;
	for (int i = 0; i <= max; i++)
		map[i] = -1;
	for (size_t i = 0; i < n; i++)
	{
		if (map[labels[i]] < 0)
			map[labels[i]] = k++;
		dense[i] = map[labels[i]];
	}
	free(map);
	return k;
}

static double
comb2(double x)
{
	return x * (x - 1.0) / 2.0;
}

moe_status
moe_label_agreement(const int *a, const int *b, size_t n, moe_agreement *out, moe_error *err)
{
	int		   *da = NULL,
			   *db = NULL;
	double	   *table = NULL,
			   *ra = NULL,
			   *rb = NULL;
	int			ka,
				kb;
	double		ha = 0,
				hb = 0,
				mi = 0,
				index = 0,
				sum_a = 0,
				sum_b = 0,
				majority = 0;
	moe_status	st = MOE_OK;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return moe_fail(err, MOE_ERR_DATA, "no rows to compare");
	da = malloc(sizeof(int) * n);
	db = malloc(sizeof(int) * n);
	if (da == NULL || db == NULL)
	{
		st = moe_fail(err, MOE_ERR_NOMEM, "out of memory comparing labellings");
		goto done;
	}
	ka = densify(a, n, da);
	kb = densify(b, n, db);
	if (ka < 0 || kb < 0)
	{
		st = moe_fail(err, MOE_ERR_DATA, "labels must be non-negative integers");
		goto done;
	}
	table = calloc((size_t) ka * kb, sizeof(double));
	ra = calloc(ka, sizeof(double));
	rb = calloc(kb, sizeof(double));
	if (table == NULL || ra == NULL || rb == NULL)
	{
		st = moe_fail(err, MOE_ERR_NOMEM, "out of memory comparing labellings");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
	{
		table[(size_t) da[i] * kb + db[i]] += 1.0;
		ra[da[i]] += 1.0;
		rb[db[i]] += 1.0;
	}

	for (int i = 0; i < ka; i++)
	{
		double		best = 0;

		ha -= ra[i] / n * log(ra[i] / n);
		sum_a += comb2(ra[i]);
		for (int j = 0; j < kb; j++)
		{
			double		c = table[(size_t) i * kb + j];

			if (c > 0)
				mi += c / n * log(c * n / (ra[i] * rb[j]));
			index += comb2(c);
			if (c > best)
				best = c;
		}
		majority += best;
	}
	for (int j = 0; j < kb; j++)
	{
		hb -= rb[j] / n * log(rb[j] / n);
		sum_b += comb2(rb[j]);
	}

	out->n_a = ka;
	out->n_b = kb;
	/* both constant: nothing to explain, the labellings agree */
	out->nmi = (ha + hb) > 0 ? mi / ((ha + hb) / 2.0) : 1.0;
	if (out->nmi > 1.0)
		out->nmi = 1.0;
	{
		double		expected = sum_a * sum_b / comb2((double) n);
		double		max_index = (sum_a + sum_b) / 2.0;

		out->ari = max_index - expected != 0 ? (index - expected) / (max_index - expected) : 1.0;
	}
	out->purity = majority / n;

done:
	free(da);
	free(db);
	free(table);
	free(ra);
	free(rb);
	return st;
}
