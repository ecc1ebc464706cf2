/*
 * protein_features.h — conjoint triad and CKSAAP protein descriptors.
 *
 * Same alphabet and error rules as moe_featurize_protein (featurize.h): the
 * 20 standard one-letter codes in either case are counted; X B Z J U O are
 * accepted, but a triad or pair that contains one is skipped; any other
 * byte is MOE_ERR_DATA with its 1-based position.  The whole input is
 * validated before out is written.  Pure functions, thread-safe, the same
 * bytes on every platform.  Definitions in docs/featurizers.md.
 */
#ifndef MOE_PROTEIN_FEATURES_H
#define MOE_PROTEIN_FEATURES_H

#include <stddef.h>

#include "moe_status.h"

#define MOE_TRIAD_CLASSES		7
#define MOE_TRIAD_DIM			343		/* 7^3 */

#define MOE_CKSAAP_DEFAULT_GAP	3
#define MOE_CKSAAP_MAX_GAP		5

/*
 * Conjoint triad (Shen et al., PNAS 2007): residues are mapped to 7 classes
 * by dipole and side-chain volume, and every run of 3 consecutive residues
 * is counted as the class triad (c1, c2, c3) at out[c1 * 49 + c2 * 7 + c3].
 * Values are frequencies that sum to 1 (all zeros when there is no
 * countable triad).  out must hold MOE_TRIAD_DIM floats.
 */
moe_status	moe_featurize_protein_triad(const char *seq, size_t len, float *out,
										moe_error *err);

/*
 * CKSAAP: composition of k-spaced amino-acid pairs for k = 0..max_gap.
 * Block k (out[400 * k .. 400 * k + 399]) counts the pairs (s[i], s[i+k+1])
 * at index a * 20 + b (order ACDEFGHIKLMNPQRSTVWY), divided by the number
 * of counted pairs of that gap (all zeros when there is none).  Gap 0 is
 * the dipeptide composition.  out must hold moe_cksaap_feature_dim(max_gap)
 * floats.
 */
moe_status	moe_featurize_protein_cksaap(const char *seq, size_t len, int max_gap,
										 float *out, moe_error *err);

/* 400 * (max_gap + 1), or 0 when max_gap is out of range. */
int			moe_cksaap_feature_dim(int max_gap);

/* Conjoint-triad class 0..6 of an amino-acid letter (either case), or -1. */
int			moe_triad_class(char residue);

#endif
