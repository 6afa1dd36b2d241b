/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kexec handover (KHO) internals shared by the KHO core, its debugfs
 * interface and its tests. Not an interface for the rest of the kernel:
 * that is include/linux/kexec_handover.h.
 */
#ifndef _KEXEC_HANDOVER_INTERNAL_H
#define _KEXEC_HANDOVER_INTERNAL_H

#include <linux/kexec_handover.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/xarray.h>

struct kimage;

/* The handover state machine, for debugfs and kexec_file. */
int kho_set_finalized(bool finalize);
bool kho_is_finalized(void);
const void *kho_in_fdt(void);
const struct kho_scratch *kho_scratch_areas(unsigned int *cnt);
int kho_fdt_add_subtree(void *fdt, const char *name, u64 phys);

/* kexec_file */
#ifdef CONFIG_KEXEC_HANDOVER
int kho_fill_kimage(struct kimage *image);
int kho_check_kimage(struct kimage *image);
#else
static inline int kho_fill_kimage(struct kimage *image)
{
	return 0;
}

static inline int kho_check_kimage(struct kimage *image)
{
	return 0;
}
#endif

/* debugfs */
void kho_debugfs_init(void);
int kho_debugfs_out_add(const char *name, const void *fdt);
void kho_debugfs_out_clear(void);

/*
 * The preservation tracker.
 *
 * Preserved memory is recorded as blocks of 2^order pages, naturally
 * aligned. Each order has a sparse array of 512-byte bitmaps, one bit per
 * block: a bitmap covers 4096 blocks, so 16 MiB of order-0 pages, 8 GiB of
 * 2 MiB blocks, or 4 TiB of 1 GiB blocks. Bitmaps are only allocated where
 * something is preserved, which keeps the tracker small when a few
 * gigabytes of scattered hypervisor memory and terabytes of 1 GiB guest
 * memory folios are preserved together.
 */
#define KHO_BITMAP_SIZE		512
#define KHO_BITMAP_BITS		(KHO_BITMAP_SIZE * BITS_PER_BYTE)

/*
 * The largest order of a block: 4 TiB with 4 KiB pages. A bitmap of the
 * largest order covers 2^54 bytes, so no address computed from the tracker
 * or from its serialised form can overflow 64 bits.
 */
#define KHO_MAX_ORDER		30

struct kho_mem_track {
	/* Serialises changes and freezing: preserve calls may sleep. */
	struct mutex lock;
	/* order -> struct kho_mem_phys */
	struct xarray orders;
	/* Serialised for kexec: changes fail with -EBUSY until thawed. */
	bool frozen;
	/* First page of the serialised form, when frozen. */
	struct khoser_mem_chunk *chunks;
};

void kho_track_init(struct kho_mem_track *track);
void kho_track_destroy(struct kho_mem_track *track);
int kho_track_preserve(struct kho_mem_track *track, unsigned long pfn,
		       unsigned int order);
int kho_track_unpreserve(struct kho_mem_track *track, unsigned long pfn,
			 unsigned int order);
int kho_track_preserve_range(struct kho_mem_track *track, unsigned long pfn,
			     unsigned long nr_pages);
int kho_track_unpreserve_range(struct kho_mem_track *track,
			       unsigned long pfn, unsigned long nr_pages);
bool kho_track_is_preserved(struct kho_mem_track *track, unsigned long pfn);
int kho_track_freeze(struct kho_mem_track *track, phys_addr_t *first);
void kho_track_thaw(struct kho_mem_track *track);

#if IS_ENABLED(CONFIG_KUNIT)
void *kho_track_zalloc(size_t size);
void *__kho_track_zalloc(size_t size);
#endif

struct kho_track_stats {
	unsigned long blocks;	/* preserved blocks, all orders */
	unsigned long bitmaps;	/* 512-byte bitmaps */
	unsigned long chunks;	/* pages of the serialised form */
};

void kho_track_stats(struct kho_mem_track *track,
		     struct kho_track_stats *stats);

/*
 * The serialised form, read by the next kernel: a linked list of
 * page-sized chunks, each holding bitmap descriptors of a single order.
 * This is ABI between the kernel that kexecs and the one it boots.
 */
struct khoser_mem_bitmap_ptr {
	__u64 phys_start;	/* address of the first block of the bitmap */
	__u64 bitmap;		/* physical address of KHO_BITMAP_SIZE bytes */
};

struct khoser_mem_chunk_hdr {
	__u64 next;		/* physical address of the next chunk, or 0 */
	__u32 order;
	__u32 num_elms;
};

#define KHOSER_BITMAPS_PER_CHUNK					\
	((PAGE_SIZE - sizeof(struct khoser_mem_chunk_hdr)) /		\
	 sizeof(struct khoser_mem_bitmap_ptr))

struct khoser_mem_chunk {
	struct khoser_mem_chunk_hdr hdr;
	struct khoser_mem_bitmap_ptr bitmaps[KHOSER_BITMAPS_PER_CHUNK];
};

/*
 * Reading a chunk list handed over by the previous kernel. Nothing in it
 * is trusted: kho_chunks_check() walks the whole list, through the
 * caller's checks, and only if the list itself is sound does
 * kho_chunks_apply() hand the preserved ranges to the caller.
 *
 * A list that cannot be walked (a chunk outside memory, a loop, an
 * impossible order or count) is broken, and nothing of it can be used.
 * Inside a sound list, a bitmap that cannot be read, or a run of blocks
 * that cannot be preserved memory, is bad: it is reported through @bad,
 * counted, and skipped by kho_chunks_apply(), and the rest is used.
 */
struct kho_chunk_walk {
	/* May [phys, phys + size) be read as handover metadata? */
	bool (*meta_ok)(struct kho_chunk_walk *walk, phys_addr_t phys,
			size_t size);
	/* May [phys, phys + size) be memory the previous kernel preserved? */
	bool (*range_ok)(struct kho_chunk_walk *walk, phys_addr_t phys,
			 phys_addr_t size);
	/* kho_chunks_apply(): @nr preserved blocks of @order from @phys */
	void (*preserved)(struct kho_chunk_walk *walk, phys_addr_t phys,
			  unsigned int order, unsigned long nr);
	/* kho_chunks_check(): a bad bitmap or run, skipped; may be NULL */
	void (*bad)(struct kho_chunk_walk *walk, const char *why,
		    phys_addr_t phys, phys_addr_t size);
	void *data;

	/* Filled in by kho_chunks_check() */
	const char *error;	/* why the list is broken */
	phys_addr_t error_phys;	/* where */
	unsigned long chunks, bitmaps, blocks;
	unsigned long runs;	/* calls kho_chunks_apply() will make */
	phys_addr_t bytes;	/* total preserved */
	unsigned long bad_bitmaps, bad_runs;	/* skipped */
};

int kho_chunks_check(phys_addr_t first, struct kho_chunk_walk *walk);
void kho_chunks_apply(phys_addr_t first, struct kho_chunk_walk *walk);

/* A run of preserved blocks of one order, as kho_chunks_apply() reports */
struct kho_run {
	phys_addr_t base, size;
	unsigned int order;
	/* Overlaps another run: kept reserved, but nobody's to restore */
	bool overlaps;
};

/* Collected by kho_runs_add(), as @walk->preserved with @walk->data */
struct kho_runs {
	struct kho_run *run;
	unsigned long nr, max;	/* max: @walk->runs from kho_chunks_check() */
};

void kho_runs_add(struct kho_chunk_walk *walk, phys_addr_t phys,
		  unsigned int order, unsigned long nr);
unsigned long kho_runs_sort(struct kho_runs *runs, struct kho_chunk_walk *walk);

#endif /* _KEXEC_HANDOVER_INTERNAL_H */
