/*
 * router_stats.c — see router_stats.h.
 */
#include "router_stats.h"

#include <math.h>
#include <string.h>

const char *
moe_router_status_name(moe_router_status s)
{
	switch (s)
	{
		case MOE_ROUTER_BALANCED:
			return "balanced";
		case MOE_ROUTER_IMBALANCED:
			return "imbalanced";
		case MOE_ROUTER_DEAD_EXPERT:
			return "dead_expert";
		case MOE_ROUTER_COLLAPSED:
			return "collapsed";
	}
	return "unknown";
}

double
moe_dominance_share(int E)
{
	double		relative = E > 0 ? MOE_HEALTH_DOMINANCE_SHARE * 4.0 / E : 1.0;

	return relative > MOE_HEALTH_DOMINANCE_SHARE ? relative : MOE_HEALTH_DOMINANCE_SHARE;
}

moe_router_status
moe_router_status_worse(moe_router_status a, moe_router_status b)
{
	return a > b ? a : b;
}

/* How one view spreads over the experts: fractions summing to 1. */
typedef struct spread
{
	double		cv;
	double		max_min_ratio;	/* INFINITY when an expert has 0 */
	double		max_fraction;
	int			argmax;			/* ties to the lower index */
	int			zeros;
} spread;

static spread
spread_of(const double *fraction, int E)
{
	spread		s = {0, 0, fraction[0], 0, 0};
	double		mean = 1.0 / E,
				var = 0,
				min = fraction[0];

	for (int i = 0; i < E; i++)
	{
		double		f = fraction[i];

		var += (f - mean) * (f - mean);
		if (f > s.max_fraction)
		{
			s.max_fraction = f;
			s.argmax = i;
		}
		if (f < min)
			min = f;
		s.zeros += f == 0.0;
	}
	s.cv = sqrt(var / E) / mean;
	s.max_min_ratio = min > 0 ? s.max_fraction / min : INFINITY;
	return s;
}

/* The first rule that matches: collapse, a dead expert (if zeros count
 * as dead in this view), imbalance. */
static moe_router_status
classify(const spread *s, int E, bool zeros_are_dead)
{
	if (E < 2)
		return MOE_ROUTER_BALANCED;
	if (s->max_fraction >= MOE_HEALTH_COLLAPSE_SHARE)
		return MOE_ROUTER_COLLAPSED;
	if (zeros_are_dead && s->zeros > 0)
		return MOE_ROUTER_DEAD_EXPERT;
	if (s->cv > MOE_HEALTH_CV || s->max_min_ratio > MOE_HEALTH_MAX_MIN ||
		s->max_fraction > moe_dominance_share(E))
		return MOE_ROUTER_IMBALANCED;
	return MOE_ROUTER_BALANCED;
}

/* counts[E] as fractions of their sum (all 0 when it is 0). */
static void
fractions_of(const int64_t *counts, int E, double *out)
{
	int64_t		total = 0;

	for (int i = 0; i < E; i++)
		total += counts[i];
	for (int i = 0; i < E; i++)
		out[i] = total > 0 ? (double) counts[i] / total : 0.0;
}

void
moe_router_stats_compute(const double *mean_prob, const int64_t *selections, const int64_t *leads,
						 int E, double row_entropy, moe_router_stats *out)
{
	double		total = 0,
				mean,
				abs_diff = 0;
	spread		p,
				sel;

	memset(out, 0, sizeof(*out));
	if (E < 1 || E > MOE_ROUTER_MAX_EXPERTS)
		return;
	out->n_experts = E;
	out->row_entropy = row_entropy;

	/* probability view: a share of exactly 0 is improbable under softmax,
	 * so it counts as imbalance (max/min is infinite), not as death */
	for (int i = 0; i < E; i++)
		total += mean_prob[i];
	for (int i = 0; i < E; i++)
		/* all zero is the caller's error; shares stay defined anyway */
		out->share[i] = total > 0 ? mean_prob[i] / total : 1.0 / E;
	mean = 1.0 / E;
	p = spread_of(out->share, E);
	for (int i = 0; i < E; i++)
	{
		double		s = out->share[i];

		if (s > 0)
			out->balance_entropy -= s * log(s);
		for (int j = 0; j < E; j++)
			abs_diff += fabs(s - out->share[j]);
	}
	out->cv = p.cv;
	out->max_min_ratio = p.max_min_ratio;
	out->dominant_expert = p.argmax;
	out->gini = abs_diff / (2.0 * E * E * mean);
	out->normalized_entropy = E > 1 ? out->balance_entropy / log((double) E) : 1.0;
	out->max_violation = (p.max_fraction - mean) / mean;
	out->probability_status = classify(&p, E, false);

	/* selection view */
	fractions_of(selections, E, out->selection_fraction);
	for (int i = 0; i < E; i++)
		out->dead_experts += selections[i] == 0;
	sel = spread_of(out->selection_fraction, E);
	out->selection_cv = sel.cv;
	out->selection_max_min_ratio = sel.max_min_ratio;
	out->selection_status = classify(&sel, E, true);

	/* lead view */
	if (leads != NULL)
	{
		spread		l;

		out->has_leads = true;
		fractions_of(leads, E, out->lead_fraction);
		l = spread_of(out->lead_fraction, E);
		out->lead_cv = l.cv;
		out->lead_max_min_ratio = l.max_min_ratio;
		out->leaderless_experts = l.zeros;
		out->lead_status = classify(&l, E, true);
	}
	out->status = moe_router_status_worse(out->probability_status, out->selection_status);
}

/* ---- the accumulator ------------------------------------------------- */

void
moe_usage_init(moe_usage_acc *acc)
{
	memset(acc, 0, sizeof(*acc));
}

moe_status
moe_usage_add(moe_usage_acc *acc, const float *probs, int E, const int32_t *selected, int k,
			  moe_error *err)
{
	double		h = 0,
				total = 0;
	uint64_t	seen = 0;

	if (E < 1 || E > MOE_ROUTER_MAX_EXPERTS)
		return moe_fail(err, MOE_ERR_INVALID, "probs must have 1 to %d elements, not %d",
						MOE_ROUTER_MAX_EXPERTS, E);
	if (acc->E > 0 && E != acc->E)
		return moe_fail(err, MOE_ERR_DATA,
						"probs has %d elements in this row and %d in earlier ones", E, acc->E);
	for (int i = 0; i < E; i++)
	{
		if (!isfinite(probs[i]) || probs[i] < 0)
			return moe_fail(err, MOE_ERR_INVALID,
							"probs element %d is %g; probabilities must be finite and non-negative",
							i + 1, (double) probs[i]);
		total += probs[i];
	}
	if (total <= 0)
		return moe_fail(err, MOE_ERR_INVALID, "probs must not be all zero");
	for (int j = 0; j < k; j++)
	{
		int32_t		x = selected[j];

		if (x < 0 || x >= E)
			return moe_fail(err, MOE_ERR_INVALID, "selected expert %d is outside 0..%d",
							(int) x, E - 1);
		if (seen & ((uint64_t) 1 << x))
			return moe_fail(err, MOE_ERR_INVALID, "selected lists expert %d twice", (int) x);
		seen |= (uint64_t) 1 << x;
	}

	acc->E = E;
	acc->n++;
	for (int i = 0; i < E; i++)
	{
		double		p = probs[i];

		acc->prob[i] += p;
		if (p > 0)
			h -= p * log(p);
	}
	acc->row_entropy += E > 1 ? h / log((double) E) : 0.0;
	for (int j = 0; j < k; j++)
		acc->selections[selected[j]]++;
	if (k > 0)
		acc->leads[selected[0]]++;
	return MOE_OK;
}

moe_status
moe_usage_merge(moe_usage_acc *acc, const moe_usage_acc *other, moe_error *err)
{
	if (other->E == 0)
		return MOE_OK;
	if (acc->E == 0)
		acc->E = other->E;
	else if (acc->E != other->E)
		return moe_fail(err, MOE_ERR_DATA, "probs has %d elements in some rows and %d in others",
						acc->E, other->E);
	acc->n += other->n;
	acc->row_entropy += other->row_entropy;
	for (int i = 0; i < acc->E; i++)
	{
		acc->prob[i] += other->prob[i];
		acc->selections[i] += other->selections[i];
		acc->leads[i] += other->leads[i];
	}
	return MOE_OK;
}

/* Little-endian whatever the machine, so a state can cross machines
 * (partial aggregation on Citus workers). */
static uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
	for (int b = 0; b < 4; b++)
		*p++ = (uint8_t) (v >> (8 * b));
	return p;
}

static uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
	for (int b = 0; b < 8; b++)
		*p++ = (uint8_t) (v >> (8 * b));
	return p;
}

static uint8_t *
put_f64(uint8_t *p, double d)
{
	uint64_t	v;

	memcpy(&v, &d, sizeof(v));
	return put_u64(p, v);
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t	v = 0;

	for (int b = 0; b < 4; b++)
		v |= (uint32_t) p[b] << (8 * b);
	return v;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int b = 0; b < 8; b++)
		v |= (uint64_t) p[b] << (8 * b);
	return v;
}

static double
get_f64(const uint8_t *p)
{
	uint64_t	v = get_u64(p);
	double		d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

size_t
moe_usage_serial_size(const moe_usage_acc *acc)
{
	return MOE_USAGE_STATE_HEADER + (size_t) acc->E * MOE_USAGE_STATE_PER_EXPERT;
}

void
moe_usage_serialize(const moe_usage_acc *acc, uint8_t *buf)
{
	uint8_t    *p = buf;

	*p++ = MOE_USAGE_STATE_VERSION;
	p = put_u32(p, (uint32_t) acc->E);
	p = put_u64(p, (uint64_t) acc->n);
	p = put_f64(p, acc->row_entropy);
	for (int i = 0; i < acc->E; i++)
	{
		p = put_f64(p, acc->prob[i]);
		p = put_u64(p, (uint64_t) acc->selections[i]);
		p = put_u64(p, (uint64_t) acc->leads[i]);
	}
}

moe_status
moe_usage_deserialize(const uint8_t *buf, size_t len, moe_usage_acc *acc, moe_error *err)
{
	moe_usage_acc a;
	int32_t		E;
	double		total = 0;
	int64_t		led = 0;
	const uint8_t *p;

	if (len < 1)
		return moe_fail(err, MOE_ERR_CORRUPT, "invalid moe_usage state: empty");
	if (buf[0] != MOE_USAGE_STATE_VERSION)
		return moe_fail(err, MOE_ERR_VERSION,
						"invalid moe_usage state: version %d, this build reads version %d",
						(int) buf[0], MOE_USAGE_STATE_VERSION);
	if (len < MOE_USAGE_STATE_HEADER)
		return moe_fail(err, MOE_ERR_CORRUPT, "invalid moe_usage state: %zu bytes, truncated", len);
	E = (int32_t) get_u32(buf + 1);
	if (E < 0 || E > MOE_ROUTER_MAX_EXPERTS)
		return moe_fail(err, MOE_ERR_CORRUPT, "invalid moe_usage state: %d experts", (int) E);
	if (len != MOE_USAGE_STATE_HEADER + (size_t) E * MOE_USAGE_STATE_PER_EXPERT)
		return moe_fail(err, MOE_ERR_CORRUPT,
						"invalid moe_usage state: %zu bytes for %d experts, expected %zu", len,
						(int) E, MOE_USAGE_STATE_HEADER + (size_t) E * MOE_USAGE_STATE_PER_EXPERT);
	moe_usage_init(&a);
	a.E = E;
	a.n = (int64_t) get_u64(buf + 5);
	a.row_entropy = get_f64(buf + 13);
	p = buf + MOE_USAGE_STATE_HEADER;
	for (int i = 0; i < E; i++, p += MOE_USAGE_STATE_PER_EXPERT)
	{
		a.prob[i] = get_f64(p);
		a.selections[i] = (int64_t) get_u64(p + 8);
		a.leads[i] = (int64_t) get_u64(p + 16);
		if (!isfinite(a.prob[i]) || a.prob[i] < 0 || a.selections[i] < 0 || a.leads[i] < 0 ||
			a.leads[i] > a.selections[i])
			return moe_fail(err, MOE_ERR_CORRUPT, "invalid moe_usage state: expert %d", i);
		total += a.prob[i];
		led += a.leads[i];
	}
	if (a.n < 0 || (E == 0) != (a.n == 0) || (a.n > 0 && !(total > 0)) || led > a.n ||
		!isfinite(a.row_entropy) || a.row_entropy < 0)
		return moe_fail(err, MOE_ERR_CORRUPT, "invalid moe_usage state: inconsistent counts");
	*acc = a;
	return MOE_OK;
}

int
moe_usage_finish(const moe_usage_acc *acc, double *mean_prob, moe_router_stats *out)
{
	if (acc->n <= 0 || acc->E < 1)
		return 0;
	for (int i = 0; i < acc->E; i++)
		mean_prob[i] = acc->prob[i] / (double) acc->n;
	moe_router_stats_compute(mean_prob, acc->selections, acc->leads, acc->E,
							 acc->row_entropy / (double) acc->n, out);
	return 1;
}
