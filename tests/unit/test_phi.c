/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Phi accrual: values against hand-computed normal tail probabilities, and the running estimate. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "phi.h"

#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

/*
 * References: Q(z) = P(N(0,1) > z) from standard tables, phi = -log10(Q).
 * Q(0) = 0.5 -> 0.30103; Q(1) = 0.158655 -> 0.79955; Q(2) = 0.0227501 -> 1.64302;
 * Q(3) = 0.00134990 -> 2.86970; Q(5) = 2.866516e-7 -> 6.54264.
 */
static void test_values(void **state)
{
	assert_near(phi_value(1.0, 0.5, 1.0), 0.30103, 1e-5);
	assert_near(phi_value(1.0, 0.5, 1.5), 0.79955, 1e-5);
	assert_near(phi_value(1.0, 0.5, 2.0), 1.64302, 1e-5);
	assert_near(phi_value(10.0, 2.0, 16.0), 2.86970, 1e-5);
	assert_near(phi_value(1.0, 0.5, 3.5), 6.54264, 1e-5);
	/* Earlier than the mean: small phi, never negative. */
	assert_true(phi_value(1.0, 0.5, 0.0) >= 0);
	assert_true(phi_value(1.0, 0.5, 0.0) < 0.01);
	/* Monotonic, finite in the far tail (erfc underflows at z ~ 38). */
	assert_true(phi_value(1, 0.1, 5) > phi_value(1, 0.1, 4));
	assert_true(isfinite(phi_value(1, 0.01, 100)));
	assert_true(phi_value(1, 0.01, 100) > phi_value(1, 0.01, 50));
	/* Asymptotic branch agrees with the exact one where both are valid (z = 37). */
	assert_near(phi_value(0, 1, 37), (37.0 * 37 / 2 + log(37 * sqrt(2 * M_PI))) / M_LN10, 0.01);
}

/* Q(5.612) ~ 1.0e-8: the silence at which phi reaches Akka's/Cassandra's threshold 8. */
static void test_z_for(void **state)
{
	assert_near(phi_z_for(8), 5.6120, 1e-3);
	assert_near(phi_z_for(0.30103), 0.0, 1e-4);
	assert_near(phi_z_for(1.64302), 2.0, 1e-4);
	assert_near(phi_value(0, 1, phi_z_for(8)), 8.0, 1e-9);
}

/* Samples 1, 2, 3: mean 2, population variance 2/3 (Welford). */
static void test_update(void **state)
{
	struct phi_stats st = { 0 };
	uint8_t n = 0;

	phi_update(&st, &n, 1.0);
	assert_int_equal(n, 1);
	assert_near(st.mean, 1.0, 1e-6);
	assert_near(st.var, 0.0, 1e-6);
	phi_update(&st, &n, 2.0);
	assert_near(st.mean, 1.5, 1e-6);
	assert_near(st.var, 0.25, 1e-6);
	phi_update(&st, &n, 3.0);
	assert_int_equal(n, 3);
	assert_near(st.mean, 2.0, 1e-6);
	assert_near(st.var, 2.0 / 3, 1e-6);
	assert_near(phi_sd(&st, 0.1), sqrt(2.0 / 3), 1e-6);
	assert_near(phi_sd(&st, 1.0), 1.0, 1e-9); /* floor */
}

/* After the window, the estimate follows a new rhythm; the count saturates. */
static void test_ewma(void **state)
{
	struct phi_stats st = { 0 };
	uint8_t n = 0;
	int i;

	for (i = 0; i < 300; i++)
		phi_update(&st, &n, 1.0);
	assert_int_equal(n, 255);
	assert_near(st.mean, 1.0, 1e-5);
	for (i = 0; i < 300; i++)
		phi_update(&st, &n, 5.0);
	assert_near(st.mean, 5.0, 1e-3);
	assert_true(st.var < 0.01);
	assert_int_equal(n, 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_z_for),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_ewma),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
