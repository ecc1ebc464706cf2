/*
 * entity_cache.h — the one owner, on the PostgreSQL side, of each drug's
 * and protein's part (infer.h): every part a scoring function uses comes
 * from here, computed once per backend and model through the engine
 * (moe_entity_parts), cached, and shared between backends through the
 * shared cache's storage (shared_cache.h keeps the bytes; this module
 * decides what to look up and publish).  Scoring a pairs table thus does
 * per pair only the work that depends on the pair.
 *
 * A vector read from a table arrives as a TOAST pointer: it is keyed by
 * that pointer (no detoasting on a hit at all).  Any other vector is keyed
 * by its bytes, compared exactly.  With the shared cache a part keyed by
 * TOAST pointer is also looked up there before it is computed, and
 * published after.
 *
 * Lifetime.  A part returned by moe_entity_part() stays valid until the
 * next moe_entity_cache_safe_point() of this backend, or the end of the
 * transaction, whichever comes first; memory is freed only there.  Callers
 * that hold parts (a pair, a chunk of moe_score) call the safe point
 * before taking the next set, when they hold none.  The cache is bounded
 * by moe_pg.entity_cache_mb: over it, the safe point empties it, so it
 * can exceed the limit by at most what one caller takes between two safe
 * points (one pair, or one chunk).  Forgetting a model (a dropped row, a
 * cache clear) hides its parts at once and frees them at the next safe
 * point.
 *
 * Owns moe_pg.entity_cache_mb.  Called by the scoring functions; calls the
 * model store (whose forget hook it registers) and the shared cache.
 */
#ifndef MOE_PG_ENTITY_CACHE_H
#define MOE_PG_ENTITY_CACHE_H

#include "model_store.h"

#include "infer.h"
#include "predict.h"

extern int	moe_entity_cache_mb;

/* Register moe_pg.entity_cache_mb and the end-of-transaction safe point
 * (from _PG_init). */
void		moe_entity_cache_init(void);

/*
 * The part of the drug or protein vector arg (a real[] datum, possibly
 * toasted) for model lm.  On a miss the vector is checked (length, NULLs,
 * NaN, ...) and its part computed.  what names the argument in errors.
 */
const float *moe_entity_part(moe_loaded_model *lm, moe_entity_kind kind, Datum arg, const char *what);

/*
 * Parts of the n rows of a matrix of drug or protein vectors (n x the
 * model's input width, checked by the caller), into parts (n x
 * moe_entity_part_floats): computed, not cached.
 */
void		moe_entity_parts_of_matrix(moe_loaded_model *lm, moe_entity_kind kind, const float *rows,
									   int n, float *parts);

/*
 * Free what the cache may free: everything forgotten, and everything when
 * it is over moe_pg.entity_cache_mb.  Every part handed out before is
 * invalid afterwards.
 */
void		moe_entity_cache_safe_point(void);

/*
 * Changes whenever the parts handed out so far are retired (freed at the
 * next safe point): until it changes, a part's address means that part, so
 * a caller may key copies of parts by address across safe points.
 */
uint64		moe_entity_cache_generation(void);

/*
 * Score one pair from its (possibly toasted) vector arguments through the
 * cache (a safe point first); routing and outputs (every expert's output)
 * may be NULL.
 */
float		moe_cached_pair(moe_loaded_model *lm, Datum drug, Datum protein, moe_routing *routing,
							float *outputs);

/* Forget everything cached for a model (all models when id < 0): hidden
 * now, freed at the next safe point. */
void		moe_entity_cache_forget(int64 id);

/* Entries and bytes held, and how many of the entries were copied from
 * the shared cache (shared_cache.h) rather than computed, for moe_cache(). */
void		moe_entity_cache_usage(int64 id, int64 *entries, int64 *bytes, int64 *copied, int64 *hits,
								   int64 *misses);

#endif
