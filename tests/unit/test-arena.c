/* test-arena.c - unit tests of lib/arena.c: alignment, chunk growth, large allocations,
 * string helpers, cleanups in reverse order at reset and at free, reuse after reset. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

START_TEST(test_alloc_alignment)
{
	struct arena *a = arena_new(1024);
	ck_assert_ptr_nonnull(a);
	/* odd sizes must not misalign the next allocation: every pointer fits any type */
	static const size_t sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 100, 1, 0, 5};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *p = arena_alloc(a, sizes[i]);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg(((uintptr_t)p % _Alignof(max_align_t)) == 0,
			      "allocation %zu (%zu bytes) at %p is not aligned", i, sizes[i], p);
	}
	arena_free(a);
}
END_TEST

START_TEST(test_allocations_do_not_overlap)
{
	struct arena *a = arena_new(1024);
	enum { N = 500 };
	unsigned char *p[N];
	/* enough to span many chunks; each block is filled with its own byte */
	for (int i = 0; i < N; i++) {
		p[i] = arena_alloc(a, (size_t)(i % 37) + 1);
		memset(p[i], i & 0xff, (size_t)(i % 37) + 1);
	}
	for (int i = 0; i < N; i++)
		for (int j = 0; j < (i % 37) + 1; j++)
			ck_assert_int_eq(p[i][j], i & 0xff);
	ck_assert_uint_ge(arena_used(a), 500);
	arena_free(a);
}
END_TEST

START_TEST(test_large_allocation)
{
	struct arena *a = arena_new(1024);
	/* far larger than a chunk: gets a chunk of its own and is fully usable */
	size_t big = 5u * 1024 * 1024;
	unsigned char *p = arena_alloc(a, big);
	ck_assert_ptr_nonnull(p);
	memset(p, 0xab, big);
	ck_assert_int_eq(p[0], 0xab);
	ck_assert_int_eq(p[big - 1], 0xab);
	ck_assert_uint_ge(arena_used(a), big);
	/* small allocations still work after it */
	char *s = arena_strdup(a, "after");
	ck_assert_str_eq(s, "after");
	ck_assert_int_eq(p[big - 1], 0xab);
	arena_reset(a);
	ck_assert_uint_eq(arena_used(a), 0);
	/* and again after the reset released the big chunk */
	p = arena_alloc(a, big);
	memset(p, 1, big);
	arena_free(a);
}
END_TEST

START_TEST(test_calloc_zeroes)
{
	struct arena *a = arena_new(1024);
	unsigned char *p = arena_alloc(a, 64);
	memset(p, 0xff, 64);
	arena_reset(a);
	/* the same memory comes back after a reset: calloc must clear it */
	unsigned char *q = arena_calloc(a, 64);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(q[i], 0);
	arena_free(a);
}
END_TEST

START_TEST(test_strdup_strndup)
{
	struct arena *a = arena_new(1024);
	const char *src = "hello world";
	char *s = arena_strdup(a, src);
	ck_assert_str_eq(s, src);
	ck_assert_ptr_ne(s, src);
	ck_assert_ptr_null(arena_strdup(a, NULL));
	char *n = arena_strndup(a, "abcdef", 3);
	ck_assert_str_eq(n, "abc");
	char *z = arena_strndup(a, "abc", 0);
	ck_assert_str_eq(z, "");
	/* strndup copies exactly n bytes, even across an embedded NUL: always terminated */
	char *e = arena_strndup(a, "ab\0cd", 5);
	ck_assert_int_eq(e[5], '\0');
	ck_assert_int_eq(e[3], 'c');
	arena_free(a);
}
END_TEST

START_TEST(test_printf)
{
	struct arena *a = arena_new(1024);
	char *s = arena_printf(a, "%s-%d-%05.1f", "x", 42, 3.14159);
	ck_assert_str_eq(s, "x-42-003.1");
	ck_assert_str_eq(arena_printf(a, "%s", ""), "");
	/* longer than a chunk */
	char *big = malloc(5000);
	memset(big, 'q', 4999);
	big[4999] = '\0';
	char *t = arena_printf(a, "<%s>", big);
	ck_assert_uint_eq(strlen(t), 5001);
	ck_assert_int_eq(t[0], '<');
	ck_assert_int_eq(t[5000], '>');
	ck_assert_int_eq(t[2500], 'q');
	free(big);
	arena_free(a);
}
END_TEST

/* Cleanup log: each cleanup appends its tag, so the order is observable. */
static char order[64];

static void tag(void *p)
{
	size_t n = strlen(order);
	order[n] = *(const char *)p;
	order[n + 1] = '\0';
}

START_TEST(test_cleanups_reverse_order_at_reset)
{
	struct arena *a = arena_new(1024);
	static const char t1 = '1', t2 = '2', t3 = '3';
	order[0] = '\0';
	arena_defer(a, tag, (void *)&t1);
	arena_defer(a, tag, (void *)&t2);
	arena_alloc(a, 3000); /* cleanups survive chunk changes */
	arena_defer(a, tag, (void *)&t3);
	arena_defer(a, tag, NULL); /* NULL: nothing registered */
	ck_assert_str_eq(order, "");
	arena_reset(a);
	ck_assert_str_eq(order, "321");
	/* a second reset does not run them again */
	arena_reset(a);
	ck_assert_str_eq(order, "321");
	/* registrations after the reset run at the next one */
	arena_defer(a, tag, (void *)&t1);
	arena_reset(a);
	ck_assert_str_eq(order, "3211");
	arena_free(a);
}
END_TEST

START_TEST(test_cleanups_run_at_free)
{
	struct arena *a = arena_new(1024);
	static const char ta = 'a', tb = 'b';
	order[0] = '\0';
	arena_defer(a, tag, (void *)&ta);
	arena_defer(a, tag, (void *)&tb);
	arena_free(a);
	ck_assert_str_eq(order, "ba");
	arena_free(NULL); /* accepted */
}
END_TEST

START_TEST(test_cleanup_frees_foreign_memory)
{
	/* the real use: malloc'd objects handed to the arena (run under ASan/leak check) */
	struct arena *a = arena_new(1024);
	for (int i = 0; i < 100; i++)
		arena_defer(a, free, malloc(100));
	arena_reset(a);
	for (int i = 0; i < 10; i++)
		arena_defer(a, free, malloc(10));
	arena_free(a);
}
END_TEST

START_TEST(test_reset_reuses_memory)
{
	struct arena *a = arena_new(4096);
	void *first = arena_alloc(a, 100);
	arena_alloc(a, 8000); /* second chunk */
	ck_assert_uint_ge(arena_used(a), 8100);
	arena_reset(a);
	ck_assert_uint_eq(arena_used(a), 0);
	/* the first chunk is kept: the next request starts at the same address */
	void *again = arena_alloc(a, 100);
	ck_assert_ptr_eq(first, again);
	arena_free(a);
}
END_TEST

START_TEST(test_strtrim)
{
	struct arena *a = arena_new(1024);
	ck_assert_str_eq(arena_strtrim(a, "  key \t\n"), "key");
	ck_assert_str_eq(arena_strtrim(a, "a b"), "a b");
	ck_assert_ptr_null(arena_strtrim(a, " \t\r\n "));
	ck_assert_ptr_null(arena_strtrim(a, ""));
	ck_assert_ptr_null(arena_strtrim(a, NULL));
	arena_free(a);
}
END_TEST

static Suite *arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_alloc_alignment);
	tcase_add_test(tc, test_allocations_do_not_overlap);
	tcase_add_test(tc, test_large_allocation);
	tcase_add_test(tc, test_calloc_zeroes);
	tcase_add_test(tc, test_strdup_strndup);
	tcase_add_test(tc, test_strtrim);
	tcase_add_test(tc, test_printf);
	tcase_add_test(tc, test_cleanups_reverse_order_at_reset);
	tcase_add_test(tc, test_cleanups_run_at_free);
	tcase_add_test(tc, test_cleanup_frees_foreign_memory);
	tcase_add_test(tc, test_reset_reuses_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(arena_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
