/*
 * agreement.h — how well one labelling of rows agrees with another, e.g.
 * the expert each row is routed to against the cluster it was generated
 * from.
 */
#ifndef MOE_AGREEMENT_H
#define MOE_AGREEMENT_H

#include <stddef.h>

#include "moe_status.h"

typedef struct moe_agreement
{
	int			n_a;			/* distinct labels in a */
	int			n_b;			/* distinct labels in b */
	double		nmi;			/* normalised mutual information, arithmetic mean of entropies */
	double		ari;			/* adjusted Rand index (Hubert and Arabie) */
	double		purity;			/* fraction of rows in the majority b label of their a label */
} moe_agreement;

/*
 * Labels are non-negative integers (not necessarily dense); n >= 1.
 * NMI is 1 when both labellings have one label (nothing to explain);
 * ARI is 1 when the two labellings are the same partition.
 */
moe_status	moe_label_agreement(const int *a, const int *b, size_t n, moe_agreement *out,
								moe_error *err);

#endif
