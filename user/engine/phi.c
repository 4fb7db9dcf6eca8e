/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Phi accrual estimate (see phi.h). */
#include <math.h>

#include "phi.h"

/* 1/(n+1): a table, because a division costs more than the rest of a renewal's arithmetic. */
#define W(n) [n] = 1.0 / ((n) + 1)
static const double weight[PHI_WINDOW] = {
	W(0),  W(1),  W(2),  W(3),  W(4),  W(5),  W(6),  W(7),  W(8),  W(9),  W(10),
	W(11), W(12), W(13), W(14), W(15), W(16), W(17), W(18), W(19), W(20), W(21),
	W(22), W(23), W(24), W(25), W(26), W(27), W(28), W(29), W(30), W(31),
};
#undef W
_Static_assert(PHI_WINDOW == 32, "weight table size");

void phi_update(struct phi_stats *st, uint8_t *n, double interval_s)
{
	double w, diff, incr, mean = st->mean, var = st->var;

	if (*n == 0) {
		st->mean = (float)interval_s;
		st->var = 0;
		*n = 1;
		return;
	}
	/* Welford's update with weight 1/(n+1), turning into an EWMA after PHI_WINDOW samples. */
	w = *n < PHI_WINDOW ? weight[*n] : 1.0 / PHI_WINDOW;
	diff = interval_s - mean;
	incr = w * diff;
	mean += incr;
	var = (1 - w) * (var + diff * incr);
	st->mean = (float)mean;
	st->var = (float)var;
	if (*n < UINT8_MAX)
		(*n)++;
}

double phi_sd(const struct phi_stats *st, double min_sd)
{
	double sd = sqrt(st->var > 0 ? st->var : 0);

	return sd > min_sd ? sd : min_sd;
}

double phi_value(double mean, double sd, double t)
{
	double z = (t - mean) / sd, p;

	if (!(sd > 0))
		return t > mean ? HUGE_VAL : 0;
	p = 0.5 * erfc(z / M_SQRT2);
	if (p > 1e-300)
		return -log10(p);
	/* Far tail, where erfc underflows: Q(z) ~ exp(-z^2/2) / (z sqrt(2 pi)). */
	return (z * z / 2 + log(z * sqrt(2 * M_PI))) / M_LN10;
}

double phi_z_for(double threshold)
{
	double lo = -10, hi = 60;
	int i;

	/* phi_value is increasing in t: bisect on the standard normal. */
	for (i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;

		if (phi_value(0, 1, mid) < threshold)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}
