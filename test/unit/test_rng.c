#include "rng.h"
#include "unit.h"

#include <string.h>

static void
test_same_seed_same_stream(void)
{
	moe_rng		a, b;

	moe_rng_seed(&a, 42);
	moe_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		CHECK(moe_rng_next(&a) == moe_rng_next(&b));
	moe_rng_seed(&b, 43);
	CHECK(moe_rng_next(&a) != moe_rng_next(&b));
}

static void
test_uniform_and_normal_moments(void)
{
	moe_rng		r;
	double		su = 0, sn = 0, sn2 = 0;
	const int	n = 200000;

	moe_rng_seed(&r, 7);
	for (int i = 0; i < n; i++)
	{
		float		u = moe_rng_uniform(&r);
		float		z = moe_rng_normal(&r);

		CHECK(u >= 0.0f && u < 1.0f);
		su += u;
		sn += z;
		sn2 += (double) z * z;
	}
	CHECK_NEAR(su / n, 0.5, 0.005);
	CHECK_NEAR(sn / n, 0.0, 0.01);
	CHECK_NEAR(sn2 / n, 1.0, 0.02);
}

static void
test_below_is_uniform_and_in_range(void)
{
	moe_rng		r;
	int			counts[7] = {0};
	const int	n = 70000;

	moe_rng_seed(&r, 1);
	for (int i = 0; i < n; i++)
	{
		uint32_t	v = moe_rng_below(&r, 7);

		CHECK(v < 7);
		if (v < 7)
			counts[v]++;
	}
	for (int i = 0; i < 7; i++)
		CHECK_NEAR(counts[i], n / 7.0, 400);
}

static void
test_shuffle_is_a_permutation(void)
{
	moe_rng		r;
	uint32_t	a[100];
	int			seen[100];

	moe_rng_seed(&r, 3);
	for (int i = 0; i < 100; i++)
		a[i] = i;
	moe_rng_shuffle_u32(&r, a, 100);
	memset(seen, 0, sizeof(seen));
	int			moved = 0;

	for (int i = 0; i < 100; i++)
	{
		CHECK(a[i] < 100);
		if (a[i] < 100)
			seen[a[i]]++;
		moved += a[i] != (uint32_t) i;
	}
	for (int i = 0; i < 100; i++)
		CHECK_INT(seen[i], 1);
	CHECK(moved > 50);
}

int
main(void)
{
	RUN(test_same_seed_same_stream);
	RUN(test_uniform_and_normal_moments);
	RUN(test_below_is_uniform_and_in_range);
	RUN(test_shuffle_is_a_permutation);
	return unit_summary("test_rng");
}
