/*
 * rng.h — the engine's only source of randomness.
 *
 * xoshiro256** seeded through splitmix64: fast, well tested, and identical
 * on every platform, so the same seed gives the same model.
 */
#ifndef MOE_RNG_H
#define MOE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct moe_rng
{
	uint64_t	s[4];
} moe_rng;

void		moe_rng_seed(moe_rng *rng, uint64_t seed);
uint64_t	moe_rng_next(moe_rng *rng);

/* Uniform in [0, 1) with 24 random bits (exact in float). */
float		moe_rng_uniform(moe_rng *rng);

/* Standard normal (Box-Muller, both draws consumed for simplicity). */
float		moe_rng_normal(moe_rng *rng);

/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t	moe_rng_below(moe_rng *rng, uint32_t n);

/* Fisher-Yates shuffle. */
void		moe_rng_shuffle_u32(moe_rng *rng, uint32_t *a, size_t n);

#endif
