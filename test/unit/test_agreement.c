/*
 * test_agreement.c — NMI, ARI and purity on cases with known answers.
 */
#include "agreement.h"
#include "unit.h"

static void
test_identical_up_to_renaming(void)
{
	int			a[8] = {0, 0, 1, 1, 2, 2, 3, 3},
				b[8] = {7, 7, 5, 5, 9, 9, 1, 1};
	moe_agreement g;

	CHECK_INT(moe_label_agreement(a, b, 8, &g, NULL), MOE_OK);
	CHECK_NEAR(g.nmi, 1.0, 1e-12);
	CHECK_NEAR(g.ari, 1.0, 1e-12);
	CHECK_NEAR(g.purity, 1.0, 1e-12);
	CHECK_INT(g.n_a, 4);
	CHECK_INT(g.n_b, 4);
}

static void
test_independent(void)
{
	/* every a label meets every b label equally often */
	int			a[8] = {0, 0, 0, 0, 1, 1, 1, 1},
				b[8] = {0, 1, 0, 1, 0, 1, 0, 1};
	moe_agreement g;

	CHECK_INT(moe_label_agreement(a, b, 8, &g, NULL), MOE_OK);
	CHECK_NEAR(g.nmi, 0.0, 1e-12);
	CHECK(g.ari < 0.0);			/* below chance for this perfectly crossed table */
	CHECK_NEAR(g.purity, 0.5, 1e-12);
}

static void
test_hand_case(void)
{
	/*
	 * a = {0,0,0,1,1,1}, b = {0,0,1,1,2,2}: contingency rows (2,1,0), (0,1,2).
	 * sum C(n_ij,2) = 1 + 1 = 2; sum C(a_i,2) = 3 + 3 = 6; sum C(b_j,2) = 3;
	 * expected = 6 * 3 / 15 = 1.2; max = 4.5; ARI = 0.8 / 3.3 = 0.242424...
	 * MI = 4 * (1/3) ln 2 ... = (2/3) ln 2 (two cells of 2 at 2*6/(3*2)=2,
	 * two cells of 1 at 6/(3*2)=1): 2*(2/6) ln 2 + 2*(1/6) ln 1 = (2/3) ln 2.
	 * H(a) = ln 2, H(b) = ln 3; NMI = (2/3) ln 2 / ((ln 2 + ln 3) / 2).
	 */
	int			a[6] = {0, 0, 0, 1, 1, 1},
				b[6] = {0, 0, 1, 1, 2, 2};
	moe_agreement g;

	CHECK_INT(moe_label_agreement(a, b, 6, &g, NULL), MOE_OK);
	CHECK_NEAR(g.ari, 0.8 / 3.3, 1e-12);
	CHECK_NEAR(g.nmi, (2.0 / 3.0) * log(2.0) / ((log(2.0) + log(3.0)) / 2.0), 1e-12);
	CHECK_NEAR(g.purity, 4.0 / 6.0, 1e-12);
}

static void
test_errors(void)
{
	int			a[2] = {0, -1},
				b[2] = {0, 0};
	moe_agreement g;
	moe_error	err;

	CHECK_INT(moe_label_agreement(a, b, 2, &g, &err), MOE_ERR_DATA);
	CHECK_INT(moe_label_agreement(a, b, 0, &g, &err), MOE_ERR_DATA);
	CHECK_INT(moe_label_agreement(b, b, 2, &g, &err), MOE_OK);
	CHECK_NEAR(g.nmi, 1.0, 0);
	CHECK_NEAR(g.ari, 1.0, 0);
}

int
main(void)
{
	RUN(test_identical_up_to_renaming);
	RUN(test_independent);
	RUN(test_hand_case);
	RUN(test_errors);
	return unit_summary("test_agreement");
}
