/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Phi accrual estimate (see phi.h). */
#include <math.h>

#include "phi.h"

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
	w = *n < PHI_WINDOW ? 1.0 / (*n + 1) : 1.0 / PHI_WINDOW;
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
