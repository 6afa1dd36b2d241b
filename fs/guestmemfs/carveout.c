// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guestmemfs carve-out: guest RAM taken out of system RAM at boot.
 *
 * On a fresh boot, guestmemfs=SIZE takes SIZE of RAM from memblock before
 * the direct map is built, in as few ranges as it can: whole GiBs, 1 GiB
 * aligned, first, so that files can be mapped with PUD entries, then 2 MiB
 * aligned pieces for the rest, from the top of memory down. Several ranges
 * let it take RAM around the kernel (wherever KASLR put it) and around
 * firmware holes. The memory is removed from memblock, so it is not in
 * the direct map, the page allocator never sees it, and no struct pages
 * describe it; the architecture marks it reserved in the kernel's own
 * memory map (its PAT must not look for a memory map), while the firmware
 * map, and the one a kexec'd kernel gets, keep it RAM.
 *
 * Across a kexec with handover, the ranges go through kexec handover as
 * memory outside the direct map (kho_preserve_unmapped()): the next
 * kernel takes them out of its memory map early, as it finds them in the
 * handover, and guestmemfs claims them there. A kexec without a handover
 * gives them back as RAM.
 *
 * The store numbers blocks from the start of the first range to the end
 * of the last (the span): a block's physical address is a shift and an
 * add, and 1 GiB alignment is the same in block numbers as in memory.
 * Blocks between the ranges are holes, never free.
 */

#define pr_fmt(fmt) "guestmemfs: " fmt

#include <linux/guestmemfs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kexec_handover.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/range.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include <asm/memtype.h>

#include "guestmemfs.h"

static unsigned long long carveout_param __initdata;

/* The ranges guestmemfs= took at this boot */
static struct range fresh[GMFS_MAX_EXTENTS] __initdata;
static unsigned int nr_fresh __initdata;

static int __init gmfs_parse_size(char *p)
{
	char *end;

	carveout_param = p ? memparse(p, &end) : 0;
	if (!p || end == p || *end || !carveout_param ||
	    !IS_ALIGNED(carveout_param, GMFS_BLOCK_SIZE)) {
		pr_err("guestmemfs=%s: expected a size, a multiple of 2M\n",
		       p ?: "");
		carveout_param = 0;
		return -EINVAL;
	}
	return 0;
}
early_param("guestmemfs", gmfs_parse_size);

/*
 * Take up to @want bytes in pieces of @align, each the highest free
 * aligned part of a free range, reserving them as they are found.
 */
static phys_addr_t __init take_pieces(phys_addr_t align, phys_addr_t want)
{
	phys_addr_t got = 0, start, end;
	u64 i;

	want = ALIGN_DOWN(want, align);
	while (got < want && nr_fresh < GMFS_MAX_EXTENTS) {
		phys_addr_t s = 0, e = 0, len;

		for_each_free_mem_range_reverse(i, NUMA_NO_NODE, MEMBLOCK_NONE,
						&start, &end, NULL) {
			s = ALIGN(start, align);
			e = ALIGN_DOWN(end, align);
			if (s < e)
				break;
		}
		if (s >= e)
			break;
		len = min(e - s, want - got);
		if (memblock_reserve(e - len, len))
			break;
		fresh[nr_fresh++] = (struct range){ e - len, e - 1 };
		got += len;
	}
	return got;
}

static int __init cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/**
 * guestmemfs_reserve_carveout - take the carve-out out of system RAM
 * @nr: returns the number of ranges taken
 *
 * Called by the architecture once memblock knows the memory and before
 * the direct map is built; the architecture then marks the ranges as not
 * RAM in its own memory map. Does nothing without guestmemfs=, and on a
 * kernel booted by kexec handover, whose carve-out is the handed-over one.
 *
 * Return: the ranges, sorted, or NULL if none were taken.
 */
const struct range * __init guestmemfs_reserve_carveout(unsigned int *nr)
{
	phys_addr_t want = carveout_param, got, span;
	unsigned int i, n;

	*nr = 0;
	if (!want)
		return NULL;
	if (memblock_kho_scratch_only()) {
		pr_info("booted by kexec handover: the carve-out is the handed-over one, guestmemfs= is ignored\n");
		return NULL;
	}

	got = take_pieces(SZ_1G, want);
	got += take_pieces(GMFS_BLOCK_SIZE, want - got);
	sort(fresh, nr_fresh, sizeof(*fresh), cmp_range, NULL);
	/* Neighbours taken one after the other are one range */
	for (i = 1, n = min(nr_fresh, 1U); i < nr_fresh; i++) {
		if (fresh[i].start == fresh[n - 1].end + 1)
			fresh[n - 1].end = fresh[i].end;
		else
			fresh[n++] = fresh[i];
	}
	span = n ? fresh[n - 1].end + 1 - fresh[0].start : 0;
	if (got < want || span > GMFS_MAX_SPAN) {
		pr_err("cannot reserve %llu MiB: %llu MiB found in %u ranges of 2 MiB multiples, over %llu MiB\n",
		       (u64)want >> 20, (u64)got >> 20, n, (u64)span >> 20);
		for (i = 0; i < n; i++)
			memblock_phys_free(fresh[i].start, range_len(&fresh[i]));
		nr_fresh = 0;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		/*
		 * Out of memory first: a range that stays in it must stay
		 * reserved, lost until the next boot but nobody's.
		 */
		if (memblock_remove(fresh[i].start, range_len(&fresh[i]))) {
			pr_err("cannot take [%#llx-%#llx] out of memory: no carve-out\n",
			       fresh[i].start, fresh[i].end);
			nr_fresh = 0;
			return NULL;
		}
		memblock_phys_free(fresh[i].start, range_len(&fresh[i]));
	}
	nr_fresh = n;
	pr_info("%llu MiB in %u ranges from %#llx to %#llx, outside the direct map and the page allocator\n",
		(u64)want >> 20, n, fresh[0].start, fresh[n - 1].end + 1);
	*nr = n;
	return fresh;
}

/**
 * gmfs_carveout - the carve-out reserved at this boot
 * @nr: returns the number of its ranges
 *
 * Return: the ranges, sorted, or NULL if guestmemfs= reserved none.
 */
const struct range * __init gmfs_carveout(unsigned int *nr)
{
	*nr = nr_fresh;
	return nr_fresh ? fresh : NULL;
}

/*
 * The iomem resources of the ranges, busy and exclusive: /dev/mem must not
 * reach guest RAM, and no driver may claim it.
 */
static struct resource * __init
gmfs_claim_iomem(const struct range *ext, unsigned int nr)
{
	struct resource *res;
	unsigned int i;

	res = kcalloc(nr, sizeof(*res), GFP_KERNEL);
	if (!res)
		return NULL;
	for (i = 0; i < nr; i++) {
		res[i].name = "guestmemfs";
		res[i].start = ext[i].start;
		res[i].end = ext[i].end;
		res[i].flags = IORESOURCE_MEM | IORESOURCE_BUSY |
			       IORESOURCE_EXCLUSIVE;
		res[i].desc = IORES_DESC_RESERVED;
		if (insert_resource(&iomem_resource, &res[i])) {
			pr_err("cannot claim [%#llx-%#llx] in iomem\n",
			       ext[i].start, ext[i].end);
			while (i--)
				remove_resource(&res[i]);
			kfree(res);
			return NULL;
		}
	}
	return res;
}

/**
 * gmfs_carveout_take - start using a carve-out
 * @ext: its ranges, sorted, 2 MiB aligned
 * @nr: how many
 * @handed_over: the ranges came with a kexec handover, and must be
 *	claimed from it
 *
 * Checks that the ranges are memory no one else uses: outside system RAM,
 * and, after a handover, ranges the handover took out of this kernel's
 * memory map. Claims them in iomem, sets them up to be mapped write-back
 * (by the kernel to clear blocks, and by user space), and hands them over
 * at every later kexec with handover (a handed-over range claimed from
 * KHO stays handed over).
 *
 * On failure nothing is claimed; handed-over ranges are still handed
 * over (whatever became of the metadata, the memory stays nobody else's),
 * a fresh carve-out is not.
 *
 * Return: 0 on success, -EINVAL if the ranges are not a usable carve-out,
 * -EBUSY if they cannot be claimed, -ENOMEM.
 */
int __init gmfs_carveout_take(const struct range *ext, unsigned int nr,
			      bool handed_over)
{
	struct resource *res;
	unsigned int i, kept = 0;
	int err = -EINVAL;

	for (i = 0; i < nr; i++) {
		phys_addr_t base = ext[i].start, size = range_len(&ext[i]);

		if (!IS_ALIGNED(base | size, GMFS_BLOCK_SIZE) ||
		    region_intersects(base, size, IORESOURCE_SYSTEM_RAM,
				      IORES_DESC_NONE) != REGION_DISJOINT)
			return -EINVAL;
		if (handed_over && kho_claim_unmapped(base, size))
			return -EINVAL;
	}
	for (i = 0; i < nr && !handed_over; i++) {
		/*
		 * Without kho=on there is no handover; any other failure
		 * means the next kernel would not keep the range out: say
		 * so now.
		 */
		err = kho_preserve_unmapped(ext[i].start, range_len(&ext[i]));
		if (err && err != -EOPNOTSUPP)
			pr_warn("cannot hand [%#llx-%#llx] over: %d\n",
				ext[i].start, ext[i].end, err);
	}
	res = gmfs_claim_iomem(ext, nr);
	if (!res) {
		err = -EBUSY;
		goto unpreserve;
	}
	for (kept = 0; kept < nr; kept++) {
		/* Not RAM for PAT: say what caching its mappings get. */
		if (memtype_reserve(ext[kept].start, ext[kept].end + 1,
				    _PAGE_CACHE_MODE_WB, NULL)) {
			err = -EINVAL;
			goto unclaim;
		}
	}
	return 0;

unclaim:
	while (kept--)
		memtype_free(ext[kept].start, ext[kept].end + 1);
	for (i = 0; i < nr; i++)
		remove_resource(&res[i]);
	kfree(res);
unpreserve:
	for (i = 0; i < nr && !handed_over; i++)
		kho_unpreserve_unmapped(ext[i].start, range_len(&ext[i]));
	return err;
}

/**
 * gmfs_zero_block - clear a block of the carve-out from an offset to its end
 * @block: block number
 * @offset: first byte of the block to clear
 *
 * A bad block is left as it is: no one may read it again.
 *
 * Return: 0 on success, -ENOMEM if it cannot be mapped.
 */
int gmfs_zero_block(unsigned long block, size_t offset)
{
	void *p;

	if (gmfs_block_bad(block))
		return 0;
	p = memremap(gmfs_block_phys(block), GMFS_BLOCK_SIZE, MEMREMAP_WB);
	if (!p)
		return -ENOMEM;
	memset(p + offset, 0, GMFS_BLOCK_SIZE - offset);
	memunmap(p);
	return 0;
}
