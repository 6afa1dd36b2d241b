// SPDX-License-Identifier: GPL-2.0-only
/*
 * kexec_handover_track.c - the KHO preservation tracker
 *
 * Records which memory is to be preserved across kexec, as per-order sparse
 * bitmaps, and turns that record into a list of page-sized chunks that the
 * next kernel walks once (kho_track_freeze()). The next kernel reads such a
 * list with kho_chunks_check() and kho_chunks_apply(), which trust nothing
 * they read.
 *
 * The design follows Jason Gunthorpe's proposal for a scalable KHO memory
 * map: a few bytes in the handover FDT point at this in-memory structure.
 */

#define pr_fmt(fmt) "KHO: " fmt

#include <linux/bitmap.h>
#include <linux/count_zeros.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <kunit/static_stub.h>
#include <kunit/visibility.h>

#include "kexec_handover_internal.h"

/* Per-order sparse bitmap: index -> struct kho_mem_phys_bits */
struct kho_mem_phys {
	struct xarray bits;
};

struct kho_mem_phys_bits {
	DECLARE_BITMAP(preserve, KHO_BITMAP_BITS);
};

static_assert(sizeof(struct kho_mem_phys_bits) == KHO_BITMAP_SIZE);
static_assert(sizeof(struct khoser_mem_chunk) == PAGE_SIZE);
/* The allocator tells the three kinds of allocation apart by size. */
static_assert(sizeof(struct kho_mem_phys) < KHO_BITMAP_SIZE);

/*
 * The chunks and bitmaps are read by the next kernel, which allocates from
 * the scratch areas before reading them: they must not be in scratch.
 * Unmovable allocations never come from scratch, which is given to the
 * page allocator as CMA pageblocks, with one exception: KFENCE, whose pool
 * memblock allocated from scratch if this kernel was booted by KHO. So
 * chunks are whole pages from the page allocator, which KFENCE does not
 * sample, and bitmaps come from a cache that KFENCE skips and that must
 * not be merged into one it does not skip.
 */
static struct kmem_cache *kho_bitmap_cache;

static int __init kho_track_cache_init(void)
{
	kho_bitmap_cache = KMEM_CACHE(kho_mem_phys_bits,
				      SLAB_SKIP_KFENCE | SLAB_NO_MERGE);
	return kho_bitmap_cache ? 0 : -ENOMEM;
}
core_initcall(kho_track_cache_init);

VISIBLE_IF_KUNIT void *__kho_track_zalloc(size_t size)
{
	if (size == PAGE_SIZE)
		return (void *)get_zeroed_page(GFP_KERNEL);
	if (size == KHO_BITMAP_SIZE)
		return kho_bitmap_cache ?
		       kmem_cache_zalloc(kho_bitmap_cache, GFP_KERNEL) : NULL;
	return kzalloc(size, GFP_KERNEL);
}

/*
 * The tracker's only allocations, redirected by the KUnit tests to inject
 * failures.
 */
VISIBLE_IF_KUNIT void *kho_track_zalloc(size_t size)
{
	KUNIT_STATIC_STUB_REDIRECT(kho_track_zalloc, size);
	return __kho_track_zalloc(size);
}

static void kho_track_free(void *p, size_t size)
{
	if (size == PAGE_SIZE)
		free_page((unsigned long)p);
	else if (size == KHO_BITMAP_SIZE)
		kmem_cache_free(kho_bitmap_cache, p);
	else
		kfree(p);
}

/**
 * kho_track_init - initialise an empty tracker
 * @track: the tracker
 */
void kho_track_init(struct kho_mem_track *track)
{
	mutex_init(&track->lock);
	xa_init(&track->orders);
	track->frozen = false;
	track->chunks = NULL;
}

static void *xa_load_or_alloc(struct xarray *xa, unsigned long index,
			      size_t size)
{
	void *elm, *old;

	elm = xa_load(xa, index);
	if (elm)
		return elm;

	elm = kho_track_zalloc(size);
	if (!elm)
		return ERR_PTR(-ENOMEM);

	old = xa_store(xa, index, elm, GFP_KERNEL);
	if (xa_is_err(old)) {
		kho_track_free(elm, size);
		return ERR_PTR(xa_err(old));
	}
	/* Only one updater at a time: the slot was empty. */
	WARN_ON_ONCE(old);
	return elm;
}

static struct kho_mem_phys_bits *bits_of(struct kho_mem_track *track,
					 unsigned int order, unsigned long idx)
{
	struct kho_mem_phys *physxa = xa_load(&track->orders, order);

	return physxa ? xa_load(&physxa->bits, idx / KHO_BITMAP_BITS) : NULL;
}

/* Is any block of @order in [@first, @last] (block indices) preserved? */
static bool any_preserved(struct kho_mem_track *track, unsigned int order,
			  unsigned long first, unsigned long last)
{
	struct kho_mem_phys *physxa = xa_load(&track->orders, order);
	struct kho_mem_phys_bits *bits;
	unsigned long i;

	if (!physxa)
		return false;

	xa_for_each_range(&physxa->bits, i, bits, first / KHO_BITMAP_BITS,
			  last / KHO_BITMAP_BITS) {
		unsigned long base = i * KHO_BITMAP_BITS;
		unsigned long lo = max(first, base) - base;
		unsigned long hi = min(last, base + KHO_BITMAP_BITS - 1) - base;

		if (find_next_bit(bits->preserve, hi + 1, lo) <= hi)
			return true;
	}
	return false;
}

/*
 * Does the block of 2^@order pages at @pfn overlap anything preserved, at
 * any order? Blocks of this order or larger can only contain it: one bit
 * each to test. Smaller ones it may contain: a range of bits each.
 */
static bool overlaps_preserved(struct kho_mem_track *track, unsigned long pfn,
			       unsigned int order)
{
	unsigned long end = pfn + (1UL << order) - 1;
	struct kho_mem_phys *physxa;
	unsigned long o;

	xa_for_each(&track->orders, o, physxa) {
		if (o >= order) {
			struct kho_mem_phys_bits *bits;
			unsigned long idx = pfn >> o;

			bits = xa_load(&physxa->bits, idx / KHO_BITMAP_BITS);
			if (bits && test_bit(idx % KHO_BITMAP_BITS, bits->preserve))
				return true;
		} else if (any_preserved(track, o, pfn >> o, end >> o)) {
			return true;
		}
	}
	return false;
}

static int __preserve(struct kho_mem_track *track, unsigned long pfn,
		      unsigned int order)
{
	const unsigned long idx = pfn >> order;
	struct kho_mem_phys_bits *bits;
	struct kho_mem_phys *physxa;

	lockdep_assert_held(&track->lock);

	if (order > KHO_MAX_ORDER || !IS_ALIGNED(pfn, 1UL << order))
		return -EINVAL;
	if (overlaps_preserved(track, pfn, order))
		return -EEXIST;

	physxa = xa_load(&track->orders, order);
	if (!physxa) {
		physxa = xa_load_or_alloc(&track->orders, order,
					  sizeof(*physxa));
		if (IS_ERR(physxa))
			return PTR_ERR(physxa);
		xa_init(&physxa->bits);
	}

	bits = xa_load_or_alloc(&physxa->bits, idx / KHO_BITMAP_BITS,
				sizeof(*bits));
	if (IS_ERR(bits)) {
		/* Keep no order without bitmaps. */
		if (xa_empty(&physxa->bits)) {
			xa_erase(&track->orders, order);
			kho_track_free(physxa, sizeof(*physxa));
		}
		return PTR_ERR(bits);
	}

	__set_bit(idx % KHO_BITMAP_BITS, bits->preserve);
	return 0;
}

static int __unpreserve(struct kho_mem_track *track, unsigned long pfn,
			unsigned int order)
{
	const unsigned long idx = pfn >> order;
	struct kho_mem_phys_bits *bits;
	struct kho_mem_phys *physxa;

	lockdep_assert_held(&track->lock);

	if (order > KHO_MAX_ORDER || !IS_ALIGNED(pfn, 1UL << order))
		return -EINVAL;

	bits = bits_of(track, order, idx);
	if (!bits || !test_bit(idx % KHO_BITMAP_BITS, bits->preserve))
		return -ENOENT;

	__clear_bit(idx % KHO_BITMAP_BITS, bits->preserve);
	/* Keep the tracker as small as what it records. */
	if (bitmap_empty(bits->preserve, KHO_BITMAP_BITS)) {
		physxa = xa_load(&track->orders, order);
		xa_erase(&physxa->bits, idx / KHO_BITMAP_BITS);
		kho_track_free(bits, sizeof(*bits));
		if (xa_empty(&physxa->bits)) {
			xa_erase(&track->orders, order);
			kho_track_free(physxa, sizeof(*physxa));
		}
	}
	return 0;
}

/**
 * kho_track_preserve - record a block of memory as preserved
 * @track: the tracker
 * @pfn: first page of the block, aligned to 2^@order pages
 * @order: the block is 2^@order pages
 *
 * Return: 0 on success; -EINVAL for a misaligned block or an order above
 * %KHO_MAX_ORDER; -EEXIST if any of it is already preserved; -EBUSY once
 * the tracker is frozen; -ENOMEM.
 */
int kho_track_preserve(struct kho_mem_track *track, unsigned long pfn,
		       unsigned int order)
{
	int err;

	might_sleep();
	mutex_lock(&track->lock);
	err = track->frozen ? -EBUSY : __preserve(track, pfn, order);
	mutex_unlock(&track->lock);
	return err;
}

/**
 * kho_track_unpreserve - forget a block recorded by kho_track_preserve()
 * @track: the tracker
 * @pfn: first page of the block
 * @order: order the block was preserved with
 *
 * Return: 0 on success; -ENOENT if the block is not preserved with this
 * order; -EINVAL for a misaligned block; -EBUSY once the tracker is frozen.
 */
int kho_track_unpreserve(struct kho_mem_track *track, unsigned long pfn,
			 unsigned int order)
{
	int err;

	mutex_lock(&track->lock);
	err = track->frozen ? -EBUSY : __unpreserve(track, pfn, order);
	mutex_unlock(&track->lock);
	return err;
}

/* The largest naturally aligned block at @pfn that fits before @end. */
static unsigned int range_order(unsigned long pfn, unsigned long end)
{
	unsigned int order = ilog2(end - pfn);

	if (pfn)
		order = min_t(unsigned int, order, count_trailing_zeros(pfn));
	return min_t(unsigned int, order, KHO_MAX_ORDER);
}

/**
 * kho_track_preserve_range - record a range of pages as preserved
 * @track: the tracker
 * @pfn: first page
 * @nr_pages: number of pages
 *
 * The range is split into the fewest naturally aligned blocks. Either all
 * of it is recorded or, on failure, none of it.
 *
 * Return: 0 on success, or the error of kho_track_preserve() for the
 * block that failed.
 */
int kho_track_preserve_range(struct kho_mem_track *track, unsigned long pfn,
			     unsigned long nr_pages)
{
	const unsigned long end = pfn + nr_pages;
	unsigned long cur;
	int err = 0;

	might_sleep();
	if (!nr_pages || end < pfn)
		return -EINVAL;

	mutex_lock(&track->lock);
	if (track->frozen) {
		err = -EBUSY;
		goto out;
	}
	for (cur = pfn; cur < end; ) {
		unsigned int order = range_order(cur, end);

		err = __preserve(track, cur, order);
		if (err)
			break;
		cur += 1UL << order;
	}
	if (err) {
		/* Undo the blocks before the one that failed. */
		unsigned long undo;

		for (undo = pfn; undo < cur; ) {
			unsigned int order = range_order(undo, end);

			WARN_ON_ONCE(__unpreserve(track, undo, order));
			undo += 1UL << order;
		}
	}
out:
	mutex_unlock(&track->lock);
	return err;
}

/**
 * kho_track_unpreserve_range - forget a range recorded by
 *	kho_track_preserve_range()
 * @track: the tracker
 * @pfn: first page, as passed to kho_track_preserve_range()
 * @nr_pages: number of pages, as passed to kho_track_preserve_range()
 *
 * Return: 0 on success; -ENOENT, changing nothing, if the range was not
 * preserved as a whole; -EBUSY once the tracker is frozen.
 */
int kho_track_unpreserve_range(struct kho_mem_track *track,
			       unsigned long pfn, unsigned long nr_pages)
{
	const unsigned long end = pfn + nr_pages;
	unsigned long cur;
	int err = 0;

	if (!nr_pages || end < pfn)
		return -EINVAL;

	mutex_lock(&track->lock);
	if (track->frozen) {
		err = -EBUSY;
		goto out;
	}
	/* Check first, so that a wrong range changes nothing. */
	for (cur = pfn; cur < end; ) {
		unsigned int order = range_order(cur, end);
		struct kho_mem_phys_bits *bits;
		unsigned long idx = cur >> order;

		bits = bits_of(track, order, idx);
		if (!bits || !test_bit(idx % KHO_BITMAP_BITS, bits->preserve)) {
			err = -ENOENT;
			goto out;
		}
		cur += 1UL << order;
	}
	for (cur = pfn; cur < end; ) {
		unsigned int order = range_order(cur, end);

		WARN_ON_ONCE(__unpreserve(track, cur, order));
		cur += 1UL << order;
	}
out:
	mutex_unlock(&track->lock);
	return err;
}

/**
 * kho_track_is_preserved - is a page part of a preserved block?
 * @track: the tracker
 * @pfn: the page
 *
 * Return: true if a block of any order containing @pfn is recorded.
 */
bool kho_track_is_preserved(struct kho_mem_track *track, unsigned long pfn)
{
	bool ret;

	mutex_lock(&track->lock);
	ret = overlaps_preserved(track, pfn, 0);
	mutex_unlock(&track->lock);
	return ret;
}

static void free_chunks(struct khoser_mem_chunk *chunk)
{
	while (chunk) {
		struct khoser_mem_chunk *next = chunk->hdr.next ?
			phys_to_virt(chunk->hdr.next) : NULL;

		kho_track_free(chunk, PAGE_SIZE);
		chunk = next;
	}
}

static struct khoser_mem_chunk *new_chunk(struct khoser_mem_chunk *prev,
					  unsigned int order)
{
	struct khoser_mem_chunk *chunk;

	chunk = kho_track_zalloc(PAGE_SIZE);
	if (!chunk)
		return NULL;
	chunk->hdr.order = order;
	if (prev)
		prev->hdr.next = virt_to_phys(chunk);
	return chunk;
}

/**
 * kho_track_freeze - serialise the tracker for the next kernel
 * @track: the tracker
 * @first: returns the physical address of the first chunk, 0 if none
 *
 * Writes the tracker out as a linked list of page-sized chunks and freezes
 * it: until kho_track_thaw(), changes fail with -EBUSY. The chunks and
 * bitmaps are ordinary kernel memory that is not itself preserved: the
 * next kernel only allocates from scratch memory until it has read them.
 *
 * Return: 0 on success, -EBUSY if already frozen, -ENOMEM.
 */
int kho_track_freeze(struct kho_mem_track *track, phys_addr_t *first)
{
	struct khoser_mem_chunk *head = NULL, *chunk = NULL;
	struct kho_mem_phys *physxa;
	unsigned long order;
	int err = 0;

	mutex_lock(&track->lock);
	if (track->frozen) {
		err = -EBUSY;
		goto out;
	}

	xa_for_each(&track->orders, order, physxa) {
		struct kho_mem_phys_bits *bits;
		unsigned long idx;

		chunk = new_chunk(chunk, order);
		if (!chunk)
			goto nomem;
		if (!head)
			head = chunk;

		xa_for_each(&physxa->bits, idx, bits) {
			struct khoser_mem_bitmap_ptr *elm;

			if (chunk->hdr.num_elms == KHOSER_BITMAPS_PER_CHUNK) {
				chunk = new_chunk(chunk, order);
				if (!chunk)
					goto nomem;
			}
			elm = &chunk->bitmaps[chunk->hdr.num_elms++];
			elm->phys_start = PFN_PHYS((u64)idx * KHO_BITMAP_BITS << order);
			elm->bitmap = virt_to_phys(bits);
		}
	}

	track->chunks = head;
	track->frozen = true;
	*first = head ? virt_to_phys(head) : 0;
	goto out;
nomem:
	free_chunks(head);
	err = -ENOMEM;
out:
	mutex_unlock(&track->lock);
	return err;
}

/**
 * kho_track_thaw - undo kho_track_freeze()
 * @track: the tracker
 *
 * Frees the serialised form and allows changes again.
 */
void kho_track_thaw(struct kho_mem_track *track)
{
	mutex_lock(&track->lock);
	free_chunks(track->chunks);
	track->chunks = NULL;
	track->frozen = false;
	mutex_unlock(&track->lock);
}

/**
 * kho_track_destroy - free everything the tracker holds
 * @track: the tracker
 */
void kho_track_destroy(struct kho_mem_track *track)
{
	struct kho_mem_phys *physxa;
	unsigned long order;

	kho_track_thaw(track);
	mutex_lock(&track->lock);
	xa_for_each(&track->orders, order, physxa) {
		struct kho_mem_phys_bits *bits;
		unsigned long idx;

		xa_for_each(&physxa->bits, idx, bits)
			kho_track_free(bits, sizeof(*bits));
		xa_destroy(&physxa->bits);
		kho_track_free(physxa, sizeof(*physxa));
	}
	xa_destroy(&track->orders);
	mutex_unlock(&track->lock);
}

/**
 * kho_track_stats - what the tracker holds and what it costs
 * @track: the tracker
 * @stats: filled in
 *
 * @stats->chunks is the number of pages the serialised form takes, whether
 * or not the tracker is frozen.
 */
void kho_track_stats(struct kho_mem_track *track,
		     struct kho_track_stats *stats)
{
	struct kho_mem_phys *physxa;
	unsigned long order;

	memset(stats, 0, sizeof(*stats));
	mutex_lock(&track->lock);
	xa_for_each(&track->orders, order, physxa) {
		struct kho_mem_phys_bits *bits;
		unsigned long idx, n = 0;

		xa_for_each(&physxa->bits, idx, bits) {
			stats->blocks += bitmap_weight(bits->preserve,
						       KHO_BITMAP_BITS);
			n++;
		}
		stats->bitmaps += n;
		stats->chunks += max(1UL, DIV_ROUND_UP(n, KHOSER_BITMAPS_PER_CHUNK));
	}
	mutex_unlock(&track->lock);
}

/* Incoming: the chunk list of the previous kernel. */

static bool walk_fail(struct kho_chunk_walk *walk, const char *error,
		      phys_addr_t phys)
{
	walk->error = error;
	walk->error_phys = phys;
	return false;
}

static struct khoser_mem_chunk *chunk_at(struct kho_chunk_walk *walk,
					 phys_addr_t phys)
{
	if (!PAGE_ALIGNED(phys)) {
		walk_fail(walk, "misaligned chunk", phys);
		return NULL;
	}
	if (!walk->meta_ok(walk, phys, PAGE_SIZE)) {
		walk_fail(walk, "chunk outside usable memory", phys);
		return NULL;
	}
	return phys_to_virt(phys);
}

/*
 * Floyd's cycle detection on the chunk list, reading nothing but the next
 * pointers (each checked first), so the content checks that follow walk a
 * list known to end.
 */
static bool chunk_list_ends(struct kho_chunk_walk *walk, phys_addr_t first)
{
	phys_addr_t slow = first, fast = first;
	struct khoser_mem_chunk *chunk;

	while (fast) {
		int i;

		for (i = 0; i < 2 && fast; i++) {
			chunk = chunk_at(walk, fast);
			if (!chunk)
				return false;
			fast = READ_ONCE(chunk->hdr.next);
		}
		slow = ((struct khoser_mem_chunk *)phys_to_virt(slow))->hdr.next;
		if (fast && fast == slow)
			return walk_fail(walk, "loop in the chunk list", fast);
	}
	return true;
}

static phys_addr_t block_size(unsigned int order)
{
	return (phys_addr_t)PAGE_SIZE << order;
}

static void walk_bad(struct kho_chunk_walk *walk, const char *why,
		     phys_addr_t phys, phys_addr_t size)
{
	if (walk->bad)
		walk->bad(walk, why, phys, size);
}

/*
 * Can the bitmap be read? Checked the same way by kho_chunks_check() and
 * kho_chunks_apply(), so that the second skips what the first reported.
 */
static const char *bitmap_problem(struct kho_chunk_walk *walk,
				  unsigned int order,
				  const struct khoser_mem_bitmap_ptr *elm)
{
	const phys_addr_t span = block_size(order) * KHO_BITMAP_BITS;

	if (!IS_ALIGNED(elm->phys_start, span))
		return "misaligned bitmap start";
	if (!IS_ALIGNED(elm->bitmap, sizeof(unsigned long)))
		return "misaligned bitmap";
	if (!walk->meta_ok(walk, elm->bitmap, KHO_BITMAP_SIZE))
		return "bitmap outside usable memory";
	return NULL;
}

static void check_bitmap(struct kho_chunk_walk *walk, unsigned int order,
			 const struct khoser_mem_bitmap_ptr *elm)
{
	const char *why = bitmap_problem(walk, order, elm);
	const struct kho_mem_phys_bits *bits;
	unsigned long start, end;

	if (why) {
		walk->bad_bitmaps++;
		walk_bad(walk, why, elm->bitmap, KHO_BITMAP_SIZE);
		return;
	}
	bits = phys_to_virt(elm->bitmap);
	/* Runs of blocks, so that contiguous memory is checked at once. */
	for_each_set_bitrange(start, end, bits->preserve, KHO_BITMAP_BITS) {
		phys_addr_t phys = elm->phys_start + start * block_size(order);
		phys_addr_t size = (end - start) * block_size(order);

		if (!walk->range_ok(walk, phys, size)) {
			walk->bad_runs++;
			walk_bad(walk, "preserved memory outside usable memory",
				 phys, size);
			continue;
		}
		walk->blocks += end - start;
		walk->runs++;
		walk->bytes += size;
	}
	walk->bitmaps++;
}

/**
 * kho_chunks_check - validate a chunk list handed over by the previous kernel
 * @first: physical address of the first chunk, 0 for an empty list
 * @walk: the caller's checks; also receives the verdict and counts
 *
 * Checks, without changing anything, that every chunk is in memory
 * @walk->meta_ok accepts, that the list ends, and that orders and counts
 * are sane: otherwise the list is broken. Then checks every bitmap (its
 * alignment, and that it is in memory @walk->meta_ok accepts) and every
 * run of preserved blocks (memory @walk->range_ok accepts): those that
 * fail are bad, reported to @walk->bad and counted, and
 * kho_chunks_apply() skips them.
 *
 * Return: 0 if the list may be applied, -EINVAL if it is broken, with
 * @walk->error and @walk->error_phys saying why.
 */
int kho_chunks_check(phys_addr_t first, struct kho_chunk_walk *walk)
{
	phys_addr_t phys;

	walk->error = NULL;
	walk->chunks = 0;
	walk->bitmaps = 0;
	walk->blocks = 0;
	walk->runs = 0;
	walk->bytes = 0;
	walk->bad_bitmaps = 0;
	walk->bad_runs = 0;

	if (!chunk_list_ends(walk, first))
		return -EINVAL;

	for (phys = first; phys; ) {
		struct khoser_mem_chunk *chunk = phys_to_virt(phys);

		if (chunk->hdr.order > KHO_MAX_ORDER) {
			walk_fail(walk, "chunk with an impossible order", phys);
			return -EINVAL;
		}
		if (chunk->hdr.num_elms > KHOSER_BITMAPS_PER_CHUNK) {
			walk_fail(walk, "chunk with too many bitmaps", phys);
			return -EINVAL;
		}
		phys = chunk->hdr.next;
	}
	for (phys = first; phys; ) {
		struct khoser_mem_chunk *chunk = phys_to_virt(phys);
		unsigned int i;

		for (i = 0; i < chunk->hdr.num_elms; i++)
			check_bitmap(walk, chunk->hdr.order, &chunk->bitmaps[i]);
		walk->chunks++;
		phys = chunk->hdr.next;
	}
	return 0;
}

/**
 * kho_chunks_apply - report the preserved memory of a checked chunk list
 * @first: physical address of the first chunk, as passed to
 *	kho_chunks_check()
 * @walk: as passed to kho_chunks_check(), which must have returned 0
 *
 * Calls @walk->preserved for every run of consecutive preserved blocks of
 * one order, except in the bitmaps and runs kho_chunks_check() found bad.
 */
void kho_chunks_apply(phys_addr_t first, struct kho_chunk_walk *walk)
{
	phys_addr_t phys;

	for (phys = first; phys; ) {
		struct khoser_mem_chunk *chunk = phys_to_virt(phys);
		unsigned int order = chunk->hdr.order;
		unsigned int i;

		for (i = 0; i < chunk->hdr.num_elms; i++) {
			const struct khoser_mem_bitmap_ptr *elm = &chunk->bitmaps[i];
			const struct kho_mem_phys_bits *bits;
			unsigned long start, end;

			if (bitmap_problem(walk, order, elm))
				continue;
			bits = phys_to_virt(elm->bitmap);
			for_each_set_bitrange(start, end, bits->preserve,
					      KHO_BITMAP_BITS) {
				phys_addr_t base = elm->phys_start +
						   start * block_size(order);

				if (!walk->range_ok(walk, base, (end - start) *
						    block_size(order)))
					continue;
				walk->preserved(walk, base, order, end - start);
			}
		}
		phys = chunk->hdr.next;
	}
}

/**
 * kho_runs_add - collect a run reported by kho_chunks_apply()
 * @walk: the walk, whose @data is a &struct kho_runs with room for
 *	@walk->runs runs
 * @phys: physical address of the first block
 * @order: order of the blocks
 * @nr: number of blocks
 */
void kho_runs_add(struct kho_chunk_walk *walk, phys_addr_t phys,
		  unsigned int order, unsigned long nr)
{
	struct kho_runs *runs = walk->data;

	if (WARN_ON_ONCE(runs->nr == runs->max))
		return;
	runs->run[runs->nr++] = (struct kho_run) {
		.base = phys,
		.size = (phys_addr_t)nr * block_size(order),
		.order = order,
	};
}

static int kho_run_cmp(const void *a, const void *b)
{
	const struct kho_run *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/**
 * kho_runs_sort - sort the collected runs, and find those that overlap
 * @runs: the runs, collected by kho_runs_add()
 * @walk: as passed to kho_chunks_apply(); overlaps are reported to
 *	@walk->bad
 *
 * kho_chunks_check() checks each bitmap alone: blocks of different orders,
 * or of a bitmap listed twice, can still overlap, and a block restored
 * twice would corrupt memory. Once the runs are sorted by address, any
 * overlap is one between neighbours: both are marked, to be kept reserved
 * (each is memory the previous kernel may have used) but restored to
 * nobody.
 *
 * Return: the number of runs that overlap another.
 */
unsigned long kho_runs_sort(struct kho_runs *runs, struct kho_chunk_walk *walk)
{
	unsigned long i, n = 0;
	phys_addr_t end = 0;
	long last = -1;

	sort(runs->run, runs->nr, sizeof(*runs->run), kho_run_cmp, NULL);
	/* @last: the run reaching furthest so far, which may overlap many */
	for (i = 0; i < runs->nr; i++) {
		struct kho_run *run = &runs->run[i];

		if (last >= 0 && run->base < end) {
			if (!runs->run[last].overlaps) {
				runs->run[last].overlaps = true;
				n++;
			}
			run->overlaps = true;
			n++;
			walk_bad(walk, "overlapping preserved blocks",
				 run->base, run->size);
		}
		if (last < 0 || run->base + run->size > end) {
			end = run->base + run->size;
			last = i;
		}
	}
	return n;
}
