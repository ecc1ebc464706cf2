#include "rng.h"

#include <math.h>

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
moe_rng_seed(moe_rng *rng, uint64_t seed)
{
	uint64_t	x = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

uint64_t
moe_rng_next(moe_rng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

float
moe_rng_uniform(moe_rng *rng)
{
	return (float) (moe_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

float
moe_rng_normal(moe_rng *rng)
{
	/* 53-bit uniforms; u1 kept away from 0 so log() stays finite. */
	double		u1 = ((moe_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
	double		u2 = (moe_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);

	return (float) (sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t
moe_rng_below(moe_rng *rng, uint32_t n)
{
	/* Lemire's multiply-shift with rejection of the biased low range. */
	uint64_t	m = (uint64_t) (uint32_t) (moe_rng_next(rng) >> 32) * n;
	uint32_t	low = (uint32_t) m;

	if (low < n)
	{
		uint32_t	threshold = (uint32_t) (-n) % n;

		while (low < threshold)
		{
			m = (uint64_t) (uint32_t) (moe_rng_next(rng) >> 32) * n;
			low = (uint32_t) m;
		}
	}
	return (uint32_t) (m >> 32);
}

void
moe_rng_shuffle_u32(moe_rng *rng, uint32_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--)
	{
		size_t		j = moe_rng_below(rng, (uint32_t) i);
		uint32_t	t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}
