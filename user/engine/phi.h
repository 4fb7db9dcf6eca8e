/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Phi accrual failure detector (Hayashibara et al., SRDS 2004): from the distribution of past
 * inter-arrival times, phi(t) = -log10(P(next arrival later than t)), with the intervals modelled
 * as a normal distribution whose mean and variance are running estimates. phi >= 8 means "this
 * silence would happen by chance once in 10^8". Plain math, no clock: times are in seconds.
 *
 * The estimate is cumulative for the first PHI_WINDOW samples, then exponentially weighted with
 * weight 1/PHI_WINDOW, so it follows a peer that changes its rhythm. Two floats a connection.
 */
#ifndef SP_PHI_H
#define SP_PHI_H

#include <stdint.h>

#define PHI_WINDOW 32

struct phi_stats {
	float mean; /* seconds */
	float var;  /* seconds^2 */
};

/* Adds one interval; *n counts samples (saturating at 255), 0 on a fresh estimate. */
void phi_update(struct phi_stats *st, uint8_t *n, double interval_s);

/* phi for a silence of t seconds given mean and standard deviation (sd > 0). Never NaN. */
double phi_value(double mean, double sd, double t);

/* Standard deviation to use: the estimate's, but never below min_sd. */
double phi_sd(const struct phi_stats *st, double min_sd);

/* z such that P(N(0,1) > z) = 10^-threshold: phi crosses threshold at t = mean + z * sd. */
double phi_z_for(double threshold);

#endif
