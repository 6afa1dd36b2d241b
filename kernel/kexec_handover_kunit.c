// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the KHO preservation tracker: what is preserved comes
 * back from the serialised form exactly, at every order and size that
 * matters (order 0 pages, 2 MiB and 1 GiB blocks, terabytes of them), the
 * tracker refuses overlaps and rolls back on failure, and the reader of a
 * handed-over chunk list rejects every kind of corruption before applying
 * anything. Beside the tracker: a subtree's node is added to the handover
 * whole or not at all, and a kexec image that carries the handover is
 * placed in the scratch areas, or refused, with a reason.
 *
 * The tracker only records page frame numbers, so none of this needs the
 * memory it describes: 64 GiB of 1 GiB blocks can be tracked on a machine
 * with 1 GiB of RAM.
 */

#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/io.h>
#include <linux/kexec.h>
#include <linux/libfdt.h>
#include <linux/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "kexec_handover_internal.h"

#define GiB_PAGES	(SZ_1G >> PAGE_SHIFT)
#define ORDER_2M	(21 - PAGE_SHIFT)
#define ORDER_1G	(30 - PAGE_SHIFT)

/* Fake physical memory of the tests: what range_ok() accepts. */
#define FAKE_MEM_END	BIT_ULL(46)

struct walk_result {
	struct kunit *test;
	unsigned long *pages;	/* bitmap of pages reported, or NULL */
	unsigned long nr_pages;	/* size of that bitmap */
	unsigned long calls;
	unsigned long blocks;
	unsigned long orders;	/* bitmask of orders reported */
	/* The last bad part reported, and how many */
	const char *bad_why;
	phys_addr_t bad_phys;
	unsigned long bad;
};

/* Direct-mapped RAM is what a test walk may read. */
static bool test_meta_ok(struct kho_chunk_walk *walk, phys_addr_t phys,
			 size_t size)
{
	return phys < PFN_PHYS(max_pfn) && phys + size <= PFN_PHYS(max_pfn) &&
	       virt_addr_valid(phys_to_virt(phys)) &&
	       virt_addr_valid(phys_to_virt(phys + size - 1));
}

static bool test_range_ok(struct kho_chunk_walk *walk, phys_addr_t phys,
			  phys_addr_t size)
{
	return phys + size >= phys && phys + size <= FAKE_MEM_END;
}

static void test_preserved(struct kho_chunk_walk *walk, phys_addr_t phys,
			   unsigned int order, unsigned long nr)
{
	struct walk_result *r = walk->data;
	unsigned long pfn = PHYS_PFN(phys), n = nr << order;

	r->calls++;
	r->blocks += nr;
	r->orders |= BIT(order);
	if (!r->pages)
		return;
	KUNIT_ASSERT_LE(r->test, pfn + n, r->nr_pages);
	/* Every page is reported once. */
	KUNIT_EXPECT_EQ(r->test, find_next_bit(r->pages, pfn + n, pfn), pfn + n);
	bitmap_set(r->pages, pfn, n);
}

static void test_bad(struct kho_chunk_walk *walk, const char *why,
		     phys_addr_t phys, phys_addr_t size)
{
	struct walk_result *r = walk->data;

	r->bad_why = why;
	r->bad_phys = phys;
	r->bad++;
}

static void walk_init(struct kho_chunk_walk *walk, struct walk_result *r)
{
	memset(walk, 0, sizeof(*walk));
	walk->meta_ok = test_meta_ok;
	walk->range_ok = test_range_ok;
	walk->preserved = test_preserved;
	walk->bad = test_bad;
	walk->data = r;
}

static struct kho_mem_track *new_track(struct kunit *test)
{
	struct kho_mem_track *track = kunit_kzalloc(test, sizeof(*track),
						    GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, track);
	kho_track_init(track);
	return track;
}

/* Freeze, check, apply: the pages the next kernel would see. */
static void roundtrip(struct kunit *test, struct kho_mem_track *track,
		      struct walk_result *r, struct kho_chunk_walk *walk)
{
	phys_addr_t first;

	KUNIT_ASSERT_EQ(test, kho_track_freeze(track, &first), 0);
	walk_init(walk, r);
	KUNIT_ASSERT_EQ_MSG(test, kho_chunks_check(first, walk), 0,
			    "%s at %pa", walk->error, &walk->error_phys);
	/* Checking has no side effects. */
	KUNIT_EXPECT_EQ(test, r->calls, 0);
	kho_chunks_apply(first, walk);
}

static unsigned long *page_bitmap(struct kunit *test, unsigned long nr)
{
	unsigned long *map = kunit_kcalloc(test, BITS_TO_LONGS(nr),
					   sizeof(long), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, map);
	return map;
}

struct order_case {
	const char *name;
	unsigned int order;
	unsigned long nr_blocks;
	unsigned long stride;	/* in blocks: 1 for contiguous */
	unsigned long bitmaps, chunks;	/* expected metadata */
};

/*
 * The metadata the tracker needs for the cases the design targets; the
 * figures are printed, and checked against the arithmetic of the format.
 */
static const struct order_case order_cases[] = {
	{ "1 GiB of order-0 pages", 0, GiB_PAGES, 1, GiB_PAGES / KHO_BITMAP_BITS, 1 },
	{ "1 GiB of order-0 pages, one in 64 over 64 GiB", 0, GiB_PAGES, 64,
	  64 * GiB_PAGES / KHO_BITMAP_BITS,
	  DIV_ROUND_UP(64 * GiB_PAGES / KHO_BITMAP_BITS, KHOSER_BITMAPS_PER_CHUNK) },
	{ "1 GiB of 2 MiB blocks (order 9)", ORDER_2M, 512, 1, 1, 1 },
	{ "64 GiB of 1 GiB blocks (order 18)", ORDER_1G, 64, 1, 1, 1 },
	{ "4 TiB of 1 GiB blocks (order 18)", ORDER_1G, 4096, 1, 1, 1 },
};

static void order_case_desc(const struct order_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(order, order_cases, order_case_desc);

static void kho_test_roundtrip_orders(struct kunit *test)
{
	const struct order_case *c = test->param_value;
	struct kho_mem_track *track = new_track(test);
	unsigned long span = c->nr_blocks * c->stride << c->order;
	struct walk_result r = { .test = test };
	struct kho_track_stats stats;
	struct kho_chunk_walk walk;
	unsigned long i, bytes;

	/* Check every page where that is affordable. */
	if (span <= 64 * GiB_PAGES && c->order == 0) {
		r.pages = page_bitmap(test, span);
		r.nr_pages = span;
	}
	for (i = 0; i < c->nr_blocks; i++) {
		unsigned long pfn = i * c->stride << c->order;

		KUNIT_ASSERT_EQ(test, kho_track_preserve(track, pfn, c->order), 0);
	}

	kho_track_stats(track, &stats);
	KUNIT_EXPECT_EQ(test, stats.blocks, c->nr_blocks);
	KUNIT_EXPECT_EQ(test, stats.bitmaps, c->bitmaps);
	KUNIT_EXPECT_EQ(test, stats.chunks, c->chunks);
	bytes = stats.bitmaps * KHO_BITMAP_SIZE + stats.chunks * PAGE_SIZE;
	kunit_info(test, "%s: %lu bitmaps (%lu B) + %lu chunks (%lu B) = %lu B of metadata\n",
		   c->name, stats.bitmaps, stats.bitmaps * KHO_BITMAP_SIZE,
		   stats.chunks, stats.chunks * PAGE_SIZE, bytes);

	roundtrip(test, track, &r, &walk);
	KUNIT_EXPECT_EQ(test, walk.blocks, c->nr_blocks);
	KUNIT_EXPECT_EQ(test, walk.bitmaps, c->bitmaps);
	KUNIT_EXPECT_EQ(test, walk.chunks, c->chunks);
	KUNIT_EXPECT_EQ(test, r.blocks, c->nr_blocks);
	KUNIT_EXPECT_EQ(test, r.orders, BIT(c->order));
	KUNIT_EXPECT_EQ(test, (u64)walk.bytes,
			(u64)c->nr_blocks << (c->order + PAGE_SHIFT));
	/* Contiguous blocks come back as one run per bitmap. */
	if (c->stride == 1)
		KUNIT_EXPECT_EQ(test, r.calls, c->bitmaps);
	if (r.pages) {
		for (i = 0; i < span; i++)
			if (test_bit(i, r.pages) != !(i % c->stride))
				break;
		KUNIT_EXPECT_EQ_MSG(test, i, span, "page %lu differs", i);
	}
	kho_track_destroy(track);
}

/* Blocks of any order, anywhere: exactly these pages come back. */
static void kho_test_roundtrip_mixed(struct kunit *test)
{
	static const struct { unsigned long pfn; unsigned int order; } blk[] = {
		{ 0, 0 }, { 1, 0 }, { 2, 1 }, { 512, ORDER_2M }, { 4096, 3 },
		{ 4104, 2 }, { GiB_PAGES, ORDER_1G }, { 3 * GiB_PAGES + 7, 0 },
		{ 3 * GiB_PAGES + 1024, 10 },
	};
	const unsigned long nr = 4 * GiB_PAGES;
	struct kho_mem_track *track = new_track(test);
	struct walk_result r = { .test = test, .nr_pages = nr };
	unsigned long *want = page_bitmap(test, nr);
	struct kho_chunk_walk walk;
	unsigned int i;

	r.pages = page_bitmap(test, nr);
	for (i = 0; i < ARRAY_SIZE(blk); i++) {
		KUNIT_ASSERT_EQ(test, kho_track_preserve(track, blk[i].pfn,
							 blk[i].order), 0);
		bitmap_set(want, blk[i].pfn, 1UL << blk[i].order);
	}
	roundtrip(test, track, &r, &walk);
	KUNIT_EXPECT_TRUE(test, bitmap_equal(r.pages, want, nr));
	KUNIT_EXPECT_EQ(test, walk.blocks, ARRAY_SIZE(blk));
	kho_track_destroy(track);
}

/* A range comes back whole, as the fewest naturally aligned blocks. */
static void kho_test_range_split(struct kunit *test)
{
	const unsigned long pfn = 3, nr = (2 * GiB_PAGES) + 1000;
	struct kho_mem_track *track = new_track(test);
	struct walk_result r = { .test = test, .nr_pages = pfn + nr + 1 };
	struct kho_track_stats stats;
	struct kho_chunk_walk walk;
	unsigned long cur, blocks = 0;

	r.pages = page_bitmap(test, r.nr_pages);
	KUNIT_ASSERT_EQ(test, kho_track_preserve_range(track, pfn, nr), 0);
	/* The greedy split, computed independently. */
	for (cur = pfn; cur < pfn + nr; blocks++) {
		unsigned int o = 0;

		while (o < KHO_MAX_ORDER && !(cur & (1UL << o)) &&
		       cur + (2UL << o) <= pfn + nr)
			o++;
		cur += 1UL << o;
	}
	kho_track_stats(track, &stats);
	KUNIT_EXPECT_EQ(test, stats.blocks, blocks);

	roundtrip(test, track, &r, &walk);
	KUNIT_EXPECT_EQ(test, find_first_bit(r.pages, r.nr_pages), pfn);
	KUNIT_EXPECT_EQ(test, find_next_zero_bit(r.pages, r.nr_pages, pfn),
			pfn + nr);
	kho_track_destroy(track);
}

/* Overlaps are refused at any order and change nothing; adjacency is fine. */
static void kho_test_overlap(struct kunit *test)
{
	struct kho_mem_track *track = new_track(test);
	struct kho_track_stats stats;

	KUNIT_ASSERT_EQ(test, kho_track_preserve(track, 512, ORDER_2M), 0);
	/* inside, same start, containing, straddling */
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 600, 0), -EEXIST);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 512, ORDER_2M), -EEXIST);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 0, ORDER_2M + 1), -EEXIST);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 0, ORDER_1G), -EEXIST);
	KUNIT_EXPECT_EQ(test, kho_track_preserve_range(track, 510, 4), -EEXIST);
	KUNIT_EXPECT_FALSE(test, kho_track_is_preserved(track, 510));
	KUNIT_EXPECT_FALSE(test, kho_track_is_preserved(track, 511));
	/* adjacent on both sides */
	KUNIT_EXPECT_EQ(test, kho_track_preserve_range(track, 0, 512), 0);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 1024, 0), 0);
	KUNIT_EXPECT_TRUE(test, kho_track_is_preserved(track, 1023));
	KUNIT_EXPECT_TRUE(test, kho_track_is_preserved(track, 1024));
	KUNIT_EXPECT_FALSE(test, kho_track_is_preserved(track, 1025));
	kho_track_stats(track, &stats);
	KUNIT_EXPECT_EQ(test, stats.blocks, 3);
	/* misaligned and oversized */
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 4097, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 0, KHO_MAX_ORDER + 1),
			-EINVAL);
	kho_track_destroy(track);
}

/*
 * Unpreserving frees what the tracker no longer needs. A range must split
 * into blocks that are all preserved: [100, 177) was preserved as blocks
 * of orders 2, 3, 4, 5, 4 and 0, so [100, 175) (..., 3, 2, 1, 0 at the end)
 * and [100, 178) are refused and change nothing.
 */
static void kho_test_unpreserve(struct kunit *test)
{
	struct kho_mem_track *track = new_track(test);
	struct kho_track_stats stats;

	KUNIT_ASSERT_EQ(test, kho_track_preserve(track, 7, 0), 0);
	KUNIT_ASSERT_EQ(test, kho_track_preserve_range(track, 100, 77), 0);
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve(track, 7, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve(track, 8, 0), -ENOENT);
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve_range(track, 100, 75), -ENOENT);
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve_range(track, 100, 78), -ENOENT);
	KUNIT_EXPECT_TRUE(test, kho_track_is_preserved(track, 100));
	KUNIT_EXPECT_TRUE(test, kho_track_is_preserved(track, 176));
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve(track, 7, 0), 0);
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve_range(track, 100, 77), 0);
	kho_track_stats(track, &stats);
	KUNIT_EXPECT_EQ(test, stats.blocks, 0);
	KUNIT_EXPECT_EQ(test, stats.bitmaps, 0);
	KUNIT_EXPECT_EQ(test, stats.chunks, 0);
	kho_track_destroy(track);
}

/* Frozen means frozen, and thawing gives the tracker back intact. */
static void kho_test_freeze(struct kunit *test)
{
	struct kho_mem_track *track = new_track(test);
	struct walk_result r = { .test = test };
	struct kho_chunk_walk walk;
	phys_addr_t first;

	KUNIT_ASSERT_EQ(test, kho_track_preserve(track, 0, 0), 0);
	KUNIT_ASSERT_EQ(test, kho_track_freeze(track, &first), 0);
	KUNIT_EXPECT_NE(test, first, 0);
	KUNIT_EXPECT_EQ(test, kho_track_freeze(track, &first), -EBUSY);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 1, 0), -EBUSY);
	KUNIT_EXPECT_EQ(test, kho_track_preserve_range(track, 1, 1), -EBUSY);
	KUNIT_EXPECT_EQ(test, kho_track_unpreserve(track, 0, 0), -EBUSY);
	kho_track_thaw(track);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 1, 0), 0);
	roundtrip(test, track, &r, &walk);
	KUNIT_EXPECT_EQ(test, r.blocks, 2);
	kho_track_destroy(track);

	/* An empty tracker serialises to an empty list. */
	track = new_track(test);
	KUNIT_ASSERT_EQ(test, kho_track_freeze(track, &first), 0);
	KUNIT_EXPECT_EQ(test, first, 0);
	walk_init(&walk, &r);
	KUNIT_EXPECT_EQ(test, kho_chunks_check(0, &walk), 0);
	KUNIT_EXPECT_EQ(test, walk.chunks, 0);
	kho_track_destroy(track);
}

/* Allocation failure injection */
static int allocs_left;

static void *failing_zalloc(size_t size)
{
	if (allocs_left-- <= 0)
		return NULL;
	/* The tracker frees it as it allocates it: by size. */
	return __kho_track_zalloc(size);
}

/*
 * A range that needs bitmaps of several orders fails half way, at every
 * allocation in turn: nothing of it stays preserved, the tracker keeps no
 * metadata for it, and what was there before is intact.
 */
static void kho_test_rollback(struct kunit *test)
{
	/* unaligned at both ends: blocks of orders 0, 2, 12 and 14 */
	const unsigned long pfn = 3 * KHO_BITMAP_BITS - 5;
	const unsigned long nr = 5 * KHO_BITMAP_BITS + 9;
	struct kho_mem_track *track = new_track(test);
	struct kho_track_stats before, after;
	phys_addr_t first;
	unsigned long i;
	int budget;

	KUNIT_ASSERT_EQ(test, kho_track_preserve(track, 0, 0), 0);
	kho_track_stats(track, &before);

	kunit_activate_static_stub(test, kho_track_zalloc, failing_zalloc);
	for (budget = 0; budget < 16; budget++) {
		int err;

		allocs_left = budget;
		err = kho_track_preserve_range(track, pfn, nr);
		if (!err)
			break;
		KUNIT_EXPECT_EQ(test, err, -ENOMEM);
		kho_track_stats(track, &after);
		KUNIT_EXPECT_EQ(test, after.blocks, before.blocks);
		KUNIT_EXPECT_EQ(test, after.bitmaps, before.bitmaps);
		KUNIT_EXPECT_EQ(test, after.chunks, before.chunks);
		for (i = pfn; i < pfn + nr; i += 97)
			KUNIT_EXPECT_FALSE(test, kho_track_is_preserved(track, i));
		KUNIT_EXPECT_TRUE(test, kho_track_is_preserved(track, 0));
	}
	/* It did fail at least once before the budget was enough. */
	KUNIT_EXPECT_GT(test, budget, 2);
	KUNIT_EXPECT_LT(test, budget, 16);
	kho_track_stats(track, &after);
	KUNIT_EXPECT_GT(test, after.blocks, before.blocks);

	/* Serialising fails cleanly too, and the tracker stays usable. */
	allocs_left = 0;
	KUNIT_EXPECT_EQ(test, kho_track_freeze(track, &first), -ENOMEM);
	kunit_deactivate_static_stub(test, kho_track_zalloc);
	KUNIT_EXPECT_EQ(test, kho_track_preserve(track, 1, 0), 0);
	KUNIT_EXPECT_EQ(test, kho_track_freeze(track, &first), 0);
	kho_track_destroy(track);
}

/* Corrupt handovers: built by hand, each rejected by the check. */

static struct khoser_mem_chunk *test_chunk(struct kunit *test)
{
	struct khoser_mem_chunk *c = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, c);
	KUNIT_ASSERT_TRUE(test, PAGE_ALIGNED(c));
	return c;
}

static void *test_bitmap(struct kunit *test)
{
	void *b = kunit_kzalloc(test, KHO_BITMAP_SIZE, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, b);
	return b;
}

static void expect_rejected(struct kunit *test, phys_addr_t first,
			    const char *error)
{
	struct walk_result r = { .test = test };
	struct kho_chunk_walk walk;

	walk_init(&walk, &r);
	KUNIT_EXPECT_EQ(test, kho_chunks_check(first, &walk), -EINVAL);
	KUNIT_EXPECT_STREQ(test, walk.error ?: "(none)", error);
	KUNIT_EXPECT_EQ(test, r.calls, 0);
}

/*
 * A sound list with one bad part: it is reported and counted by the check,
 * and the apply reports everything else.
 */
static void expect_dropped(struct kunit *test, phys_addr_t first,
			   const char *why, unsigned long bad_bitmaps,
			   unsigned long bad_runs, unsigned long blocks)
{
	struct walk_result r = { .test = test };
	struct kho_chunk_walk walk;

	walk_init(&walk, &r);
	KUNIT_EXPECT_EQ(test, kho_chunks_check(first, &walk), 0);
	KUNIT_EXPECT_STREQ(test, r.bad_why ?: "(none)", why);
	KUNIT_EXPECT_EQ(test, r.bad, bad_bitmaps + bad_runs);
	KUNIT_EXPECT_EQ(test, walk.bad_bitmaps, bad_bitmaps);
	KUNIT_EXPECT_EQ(test, walk.bad_runs, bad_runs);
	KUNIT_EXPECT_EQ(test, walk.blocks, blocks);
	kho_chunks_apply(first, &walk);
	KUNIT_EXPECT_EQ(test, r.blocks, blocks);
}

static void kho_test_corrupt_chunks(struct kunit *test)
{
	struct khoser_mem_chunk *a = test_chunk(test), *b = test_chunk(test);
	unsigned long *bits = test_bitmap(test), *more = test_bitmap(test);
	phys_addr_t pa = virt_to_phys(a), pb = virt_to_phys(b);
	phys_addr_t beyond = PFN_PHYS(max_pfn) + SZ_1G;

	/*
	 * A well-formed two-chunk list to break in turn: a page at 20 KiB,
	 * and 2 MiB blocks at 2 and 6 MiB
	 */
	a->hdr.order = 0;
	a->hdr.num_elms = 1;
	a->bitmaps[0].phys_start = 0;
	a->bitmaps[0].bitmap = virt_to_phys(bits);
	a->hdr.next = pb;
	b->hdr.order = ORDER_2M;
	b->hdr.num_elms = 1;
	b->bitmaps[0].phys_start = 0;
	b->bitmaps[0].bitmap = virt_to_phys(more);
	__set_bit(5, bits);
	__set_bit(1, more);
	__set_bit(3, more);
	{
		struct walk_result r = { .test = test };
		struct kho_chunk_walk walk;

		walk_init(&walk, &r);
		KUNIT_ASSERT_EQ(test, kho_chunks_check(pa, &walk), 0);
		KUNIT_EXPECT_EQ(test, walk.chunks, 2);
		KUNIT_EXPECT_EQ(test, walk.blocks, 3);
		KUNIT_EXPECT_EQ(test, r.bad, 0);
	}

	/* Broken: the list cannot be walked, nothing of it is used */
	b->hdr.next = pa;
	expect_rejected(test, pa, "loop in the chunk list");
	b->hdr.next = pb;
	expect_rejected(test, pa, "loop in the chunk list");
	b->hdr.next = beyond;
	expect_rejected(test, pa, "chunk outside usable memory");
	b->hdr.next = pb + 8;
	expect_rejected(test, pa, "misaligned chunk");
	b->hdr.next = 0;

	b->hdr.order = KHO_MAX_ORDER + 1;
	expect_rejected(test, pa, "chunk with an impossible order");
	b->hdr.order = ORDER_2M;
	b->hdr.num_elms = KHOSER_BITMAPS_PER_CHUNK + 1;
	expect_rejected(test, pa, "chunk with too many bitmaps");
	b->hdr.num_elms = 1;

	/* Bad parts of a sound list: dropped, the rest kept */
	a->bitmaps[0].bitmap = beyond;
	expect_dropped(test, pa, "bitmap outside usable memory", 1, 0, 2);
	a->bitmaps[0].bitmap = virt_to_phys(bits) + 4;
	expect_dropped(test, pa, "misaligned bitmap", 1, 0, 2);
	a->bitmaps[0].bitmap = virt_to_phys(bits);
	a->bitmaps[0].phys_start = PAGE_SIZE;
	expect_dropped(test, pa, "misaligned bitmap start", 1, 0, 2);
	a->bitmaps[0].phys_start = FAKE_MEM_END;
	expect_dropped(test, pa, "preserved memory outside usable memory", 0, 1,
		       2);
	a->bitmaps[0].phys_start = FAKE_MEM_END - (PAGE_SIZE * KHO_BITMAP_BITS);
	__set_bit(KHO_BITMAP_BITS - 1, bits);
	{
		struct walk_result r = { .test = test };
		struct kho_chunk_walk walk;

		/* the last page of the fake memory is still inside it */
		walk_init(&walk, &r);
		KUNIT_EXPECT_EQ(test, kho_chunks_check(pa, &walk), 0);
		KUNIT_EXPECT_EQ(test, walk.blocks, 4);
		KUNIT_EXPECT_EQ(test, r.bad, 0);
	}
}

/*
 * Check, collect and sort the runs of a list, as the next kernel does:
 * returns how many overlap, with @runs sorted.
 */
static unsigned long sort_runs(struct kunit *test, phys_addr_t first,
			       struct walk_result *r, struct kho_runs *runs)
{
	struct kho_chunk_walk walk;

	walk_init(&walk, r);
	KUNIT_ASSERT_EQ_MSG(test, kho_chunks_check(first, &walk), 0,
			    "%s at %pa", walk.error, &walk.error_phys);
	runs->nr = 0;
	runs->max = walk.runs;
	runs->run = kunit_kcalloc(test, runs->max, sizeof(*runs->run),
				  GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, runs->run);
	walk.preserved = kho_runs_add;
	walk.data = runs;
	kho_chunks_apply(first, &walk);
	KUNIT_EXPECT_EQ(test, runs->nr, runs->max);
	/* The bad callback reports to @r again */
	walk.data = r;
	return kho_runs_sort(runs, &walk);
}

/*
 * Each bitmap is valid alone, but blocks of different bitmaps overlap: a
 * 2 MiB block and a page inside it, or a bitmap listed twice. Restoring
 * both would hand the same memory out twice: both are marked, to be kept
 * reserved and restored to nobody, and the other runs are untouched.
 */
static void kho_test_corrupt_overlap(struct kunit *test)
{
	struct khoser_mem_chunk *a = test_chunk(test), *b = test_chunk(test);
	unsigned long *big = test_bitmap(test), *small = test_bitmap(test);
	phys_addr_t pa = virt_to_phys(a);
	struct walk_result r = { .test = test };
	struct kho_runs runs;

	a->hdr.order = ORDER_2M;
	a->hdr.num_elms = 1;
	a->bitmaps[0].bitmap = virt_to_phys(big);
	a->hdr.next = virt_to_phys(b);
	b->hdr.order = 0;
	b->hdr.num_elms = 1;
	b->bitmaps[0].bitmap = virt_to_phys(small);
	/* 2 MiB at 2 MiB, the page at 2 MiB + 4 KiB, and one at 8 MiB */
	__set_bit(1, big);
	__set_bit(BIT(ORDER_2M) + 1, small);
	__set_bit(4 * BIT(ORDER_2M), small);

	KUNIT_EXPECT_EQ(test, sort_runs(test, pa, &r, &runs), 2);
	KUNIT_EXPECT_STREQ(test, r.bad_why ?: "(none)",
			   "overlapping preserved blocks");
	KUNIT_EXPECT_EQ(test, r.bad_phys, SZ_2M + PAGE_SIZE);
	KUNIT_ASSERT_EQ(test, runs.nr, 3);
	KUNIT_EXPECT_TRUE(test, runs.run[0].overlaps);
	KUNIT_EXPECT_TRUE(test, runs.run[1].overlaps);
	KUNIT_EXPECT_FALSE(test, runs.run[2].overlaps);

	/* the pages on either side of the 2 MiB block are fine */
	r.bad = 0;
	__clear_bit(BIT(ORDER_2M) + 1, small);
	__set_bit(BIT(ORDER_2M) - 1, small);
	__set_bit(2 * BIT(ORDER_2M), small);
	KUNIT_EXPECT_EQ(test, sort_runs(test, pa, &r, &runs), 0);
	KUNIT_EXPECT_EQ(test, r.bad, 0);

	/* the 2 MiB bitmap twice: the two runs of it overlap */
	b->hdr.order = ORDER_2M;
	b->bitmaps[0].bitmap = virt_to_phys(big);
	KUNIT_EXPECT_EQ(test, sort_runs(test, pa, &r, &runs), 2);
	KUNIT_EXPECT_EQ(test, r.bad_phys, SZ_2M);

	/* a large block over several small ones: all of them overlap */
	b->hdr.order = 0;
	b->bitmaps[0].bitmap = virt_to_phys(small);
	bitmap_zero(small, KHO_BITMAP_BITS);
	__set_bit(BIT(ORDER_2M) + 1, small);
	__set_bit(BIT(ORDER_2M) + 3, small);
	__set_bit(BIT(ORDER_2M) + 5, small);
	KUNIT_EXPECT_EQ(test, sort_runs(test, pa, &r, &runs), 4);
}

/*
 * A subtree's node is added to the root FDT whole or not at all, at every
 * size of the buffer: where the node could be begun but not finished, the
 * blob must still be finished without it, not with an open node that
 * holds the rest.
 */
static void kho_test_subtree_node(struct kunit *test)
{
	unsigned int size, added = 0, refused = 0;
	char *buf = kunit_kzalloc(test, 512, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	for (size = 64; size <= 512; size += 4) {
		int add, end, off;

		if (fdt_create(buf, size) || fdt_finish_reservemap(buf) ||
		    fdt_begin_node(buf, "") ||
		    fdt_property_string(buf, "compatible", "kho-test"))
			continue;
		add = kho_fdt_add_subtree(buf, "a-subtree", 0x1234000);
		end = fdt_end_node(buf) ?: fdt_finish(buf);
		if (end)
			continue;
		KUNIT_ASSERT_EQ_MSG(test, fdt_check_header(buf), 0,
				    "buffer of %u bytes", size);
		off = fdt_subnode_offset(buf, 0, "a-subtree");
		KUNIT_EXPECT_EQ_MSG(test, off >= 0, !add,
				    "buffer of %u bytes: add %d, node at %d",
				    size, add, off);
		/* The root's own property is still the root's */
		KUNIT_EXPECT_NOT_NULL(test,
				      fdt_getprop(buf, 0, "compatible", NULL));
		if (add)
			refused++;
		else
			added++;
	}
	/* Both cases were met: a node refused and the blob still finished */
	KUNIT_EXPECT_GT(test, added, 0);
	KUNIT_EXPECT_GT(test, refused, 0);
}

/*
 * A segment of an image that carries the handover goes into a scratch area
 * of this kernel, or nowhere: -EADDRNOTAVAIL, with a line that says why.
 */
static void kho_test_kexec_placement(struct kunit *test)
{
	struct kexec_buf kbuf = {
		.memsz = PAGE_SIZE,
		.buf_align = PAGE_SIZE,
		.buf_max = ULONG_MAX,
		.top_down = true,
		.mem = KEXEC_BUF_MEM_UNKNOWN,
	};
	const struct kho_scratch *s;
	phys_addr_t total = 0;
	unsigned int i, cnt;
	bool inside = false;

	s = kho_scratch_areas(&cnt);
	if (!cnt)
		kunit_skip(test, "no scratch areas: boot with kho=on");
	kbuf.image = kunit_kzalloc(test, sizeof(*kbuf.image), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, kbuf.image);
	/* An image that carries a handover (the FDT is never read here) */
	kbuf.image->kho.fdt = PAGE_SIZE;

	KUNIT_ASSERT_EQ(test, kexec_locate_mem_hole(&kbuf), 0);
	for (i = 0; i < cnt; i++) {
		total += s[i].size;
		if (kbuf.mem >= s[i].addr &&
		    kbuf.mem + kbuf.memsz <= s[i].addr + s[i].size)
			inside = true;
	}
	KUNIT_EXPECT_TRUE_MSG(test, inside, "segment placed at %#lx", kbuf.mem);

	kbuf.mem = KEXEC_BUF_MEM_UNKNOWN;
	kbuf.memsz = total + PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, kexec_locate_mem_hole(&kbuf), -EADDRNOTAVAIL);
}

/*
 * An image that carries the handover is refused when its segments leave
 * the next kernel less of the scratch areas than it needs early, and only
 * then: none leaves all of them, which the default sizing (200%) makes
 * enough.
 */
static void kho_test_kexec_refused(struct kunit *test)
{
	const struct kho_scratch *s;
	struct kimage *image;
	phys_addr_t total = 0;
	unsigned int i, cnt;

	s = kho_scratch_areas(&cnt);
	if (!cnt)
		kunit_skip(test, "no scratch areas: boot with kho=on");
	for (i = 0; i < cnt; i++)
		total += s[i].size;
	image = kunit_kzalloc(test, sizeof(*image), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, image);

	/* Without the handover there is nothing to check */
	image->nr_segments = 1;
	image->segment[0].mem = s[0].addr;
	image->segment[0].memsz = total;
	KUNIT_EXPECT_EQ(test, kho_check_kimage(image), 0);

	image->kho.fdt = PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, kho_check_kimage(image), -ENOSPC);
	image->nr_segments = 0;
	KUNIT_EXPECT_EQ(test, kho_check_kimage(image), 0);
}

static struct kunit_case kho_track_cases[] = {
	KUNIT_CASE_PARAM_ATTR(kho_test_roundtrip_orders, order_gen_params,
			      { .speed = KUNIT_SPEED_SLOW }),
	KUNIT_CASE(kho_test_roundtrip_mixed),
	KUNIT_CASE(kho_test_range_split),
	KUNIT_CASE(kho_test_overlap),
	KUNIT_CASE(kho_test_unpreserve),
	KUNIT_CASE(kho_test_freeze),
	KUNIT_CASE(kho_test_rollback),
	KUNIT_CASE(kho_test_corrupt_chunks),
	KUNIT_CASE(kho_test_corrupt_overlap),
	KUNIT_CASE(kho_test_subtree_node),
	KUNIT_CASE(kho_test_kexec_placement),
	KUNIT_CASE(kho_test_kexec_refused),
	{}
};

static struct kunit_suite kho_track_suite = {
	.name = "kexec_handover_tracker",
	.test_cases = kho_track_cases,
};

kunit_test_suite(kho_track_suite);
