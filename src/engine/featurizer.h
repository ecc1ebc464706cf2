/*
 * featurizer.h — a featurizer described by its name and parameters, so that
 * a model can record how its input vectors were made and score text
 * (SMILES strings, protein sequences) by making them the same way.
 *
 * The names are those of the SQL functions without their moe_featurize_
 * prefix: "smiles" (token n-grams), "ecfp" (circular fingerprints) for
 * drugs; "protein" (k-mer composition), "protein_triad", "protein_cksaap"
 * for proteins.  Each featurizer's parameters are its SQL function's.
 */
#ifndef MOE_FEATURIZER_H
#define MOE_FEATURIZER_H

#include <stdbool.h>
#include <stddef.h>

#include "moe_status.h"

typedef enum moe_featurizer_kind
{
	MOE_FZ_NONE = 0,			/* vectors supplied by the user */
	MOE_FZ_SMILES,
	MOE_FZ_ECFP,
	MOE_FZ_PROTEIN,
	MOE_FZ_PROTEIN_TRIAD,
	MOE_FZ_PROTEIN_CKSAAP,
	MOE_FZ_N_KINDS
} moe_featurizer_kind;

typedef struct moe_featurizer
{
	moe_featurizer_kind kind;
	int			dim;			/* smiles, ecfp: buckets */
	int			max_n;			/* smiles: longest token n-gram */
	int			radius;			/* ecfp */
	bool		counts;			/* ecfp: log(1 + count) rather than bits */
	int			k;				/* protein: longest k-mer */
	int			max_gap;		/* protein_cksaap */
} moe_featurizer;

/* The kind of a name ("ecfp"), MOE_FZ_NONE when unknown. */
moe_featurizer_kind moe_featurizer_kind_parse(const char *name);
const char *moe_featurizer_name(moe_featurizer_kind kind);

/* A featurizer of kind with its SQL function's default parameters. */
void		moe_featurizer_defaults(moe_featurizer_kind kind, moe_featurizer *f);

/* True for the featurizers of SMILES strings (the others read sequences). */
bool		moe_featurizer_is_drug(moe_featurizer_kind kind);

/* MOE_ERR_INVALID naming the parameter when f's parameters are out of range. */
moe_status	moe_featurizer_validate(const moe_featurizer *f, moe_error *err);

/* Length of the vectors f makes (0 for MOE_FZ_NONE). */
int			moe_featurizer_dim(const moe_featurizer *f);

/* text[0..len) into out[0..moe_featurizer_dim(f)); errors as the featurizers'. */
moe_status	moe_featurizer_apply(const moe_featurizer *f, const char *text, size_t len, float *out,
								 moe_error *err);

/*
 * Whether x[0..n) can have come from f: the values each featurizer can
 * make (log(1 + count) for n-grams and counted fingerprints, 0 or 1 for
 * fingerprint bits, frequency blocks that sum to 1 or are empty for the
 * protein compositions).  This catches most vectors of the wrong family,
 * not every one: two featurizers of the same family and length (SMILES
 * n-grams and counted fingerprints) make values of the same form.  When it
 * returns false, why says what does not fit.
 */
bool		moe_featurizer_plausible(const moe_featurizer *f, const float *x, int n, char *why,
									 size_t why_size);

/*
 * The call that makes such vectors, for messages:
 * "moe_featurize_ecfp(smiles, radius => 2, dim => 2048, counts => true)",
 * or "vectors supplied by the user".
 */
void		moe_featurizer_describe(const moe_featurizer *f, char *buf, size_t size);

#endif
