// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guestmemfs carve-out: guest RAM taken out of system RAM at boot.
 *
 * On a fresh boot, guestmemfs=SIZE takes SIZE of RAM from memblock before
 * the direct map is built: 1 GiB aligned where that is possible, so files
 * can be mapped with PUD entries, 2 MiB aligned at least. The memory is
 * removed from memblock, so it is not in the direct map, the page
 * allocator never sees it, and no struct pages describe it (whole memory
 * sections of it have no memory map at all); the kernel's e820 table marks
 * it reserved.
 *
 * The memory map a kexec'd kernel gets (e820_table_kexec) marks it reserved
 * only while a finalized kexec handover carries it (kho.c): the next kernel
 * then never uses it, whether or not it understands the handover, and
 * guestmemfs takes it back from its handed-over state and checks that it is
 * still reserved. A kexec without a handover gives it back as RAM: its data
 * are not handed over, and keeping it reserved would lose it for good, and
 * another carve-out of the same size with it, at every such kexec.
 */

#define pr_fmt(fmt) "guestmemfs: " fmt

#include <linux/guestmemfs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/sizes.h>

#include <asm/e820/api.h>
#include <asm/memtype.h>

#include "guestmemfs.h"

static phys_addr_t carveout_base, carveout_size;

/* Does the carve-out have an entry of its own in e820_table_kexec? */
static bool kexec_tracked;
static unsigned long long carveout_param __initdata;

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

/**
 * guestmemfs_reserve_carveout - take the carve-out out of system RAM
 *
 * Called by the architecture once memblock knows the memory and before
 * the direct map is built. Does nothing without guestmemfs=, and on a
 * kernel booted by kexec handover, whose carve-out is the handed-over one.
 */
void __init guestmemfs_reserve_carveout(void)
{
	phys_addr_t size = carveout_param, base;

	if (!size)
		return;
	if (memblock_kho_scratch_only()) {
		pr_info("booted by kexec handover: the carve-out is the handed-over one, guestmemfs= is ignored\n");
		return;
	}

	base = memblock_phys_alloc_range(size, SZ_1G, 0, memblock_end_of_DRAM());
	if (!base)
		base = memblock_phys_alloc_range(size, GMFS_BLOCK_SIZE, 0,
						 memblock_end_of_DRAM());
	if (!base) {
		pr_err("cannot reserve %llu MiB: no carve-out\n", (u64)size >> 20);
		return;
	}
	memblock_phys_free(base, size);
	memblock_remove(base, size);

	e820__range_update(base, size, E820_TYPE_RAM, E820_TYPE_RESERVED);
	e820__update_table(e820_table);
	/*
	 * Reserved here too for now, which gives the carve-out an entry of its
	 * own: gmfs_carveout_track_kexec() turns it into RAM, and a handover
	 * back, without changing the number of entries once the table can no
	 * longer grow.
	 */
	e820__range_update_table(e820_table_kexec, base, size, E820_TYPE_RAM,
				 E820_TYPE_RESERVED);
	e820__update_table(e820_table_kexec);

	carveout_base = base;
	carveout_size = size;
	pr_info("%llu MiB at %pa, outside the direct map and the page allocator\n",
		(u64)size >> 20, &base);
}

/*
 * The carve-out's entry in e820_table_kexec, found again each time:
 * free_initmem() moves the table.
 */
static struct e820_entry *gmfs_kexec_entry(phys_addr_t base, phys_addr_t size)
{
	struct e820_entry *entry;
	u32 i;

	for (i = 0; i < e820_table_kexec->nr_entries; i++) {
		entry = &e820_table_kexec->entries[i];
		if (entry->addr == base && entry->size == size)
			return entry;
	}
	return NULL;
}

/**
 * gmfs_carveout_track_kexec - let a kexec without handover reuse the carve-out
 * @base: physical address of the carve-out in use
 * @size: its size
 *
 * Finds the carve-out's own reserved entry in the memory map given to a
 * kexec'd kernel and makes it RAM there, until gmfs_carveout_hand_over()
 * says a handover carries it. If the carve-out shares its entry with other
 * reserved memory, that entry is left as it is: the carve-out then stays
 * reserved across every kexec, which loses memory but never data.
 */
void __init gmfs_carveout_track_kexec(phys_addr_t base, phys_addr_t size)
{
	struct e820_entry *entry = gmfs_kexec_entry(base, size);

	if (entry && entry->type == E820_TYPE_RESERVED) {
		entry->type = E820_TYPE_RAM;
		kexec_tracked = true;
		return;
	}
	pr_warn("the carve-out at %pa shares its kexec memory map entry: it stays reserved after a kexec without handover\n",
		&base);
}

/**
 * gmfs_carveout_hand_over - say whether the next kernel gets the carve-out
 * @base: physical address of the carve-out in use
 * @size: its size
 * @handed_over: true once a finalized handover carries it, false after abort
 *
 * A kexec_file_load() after this builds the next kernel's memory map with
 * the carve-out reserved if @handed_over, or as RAM.
 */
void gmfs_carveout_hand_over(phys_addr_t base, phys_addr_t size,
			     bool handed_over)
{
	struct e820_entry *entry;

	if (!kexec_tracked)
		return;
	entry = gmfs_kexec_entry(base, size);
	if (WARN_ON_ONCE(!entry))
		return;
	/*
	 * One aligned 32-bit store: a concurrent kexec_file_load() copies the
	 * old type or the new one, and loading before finalize is wrong anyway.
	 */
	entry->type = handed_over ? E820_TYPE_RESERVED : E820_TYPE_RAM;
}

/* A core_initcall: before anything can finalize a handover. */
static int __init gmfs_carveout_kexec_init(void)
{
	if (carveout_size)
		gmfs_carveout_track_kexec(carveout_base, carveout_size);
	return 0;
}
core_initcall(gmfs_carveout_kexec_init);

/**
 * gmfs_carveout - the carve-out reserved at this boot
 * @base: returns its physical address
 * @size: returns its size
 *
 * Return: true if guestmemfs= reserved one.
 */
bool gmfs_carveout(phys_addr_t *base, phys_addr_t *size)
{
	*base = carveout_base;
	*size = carveout_size;
	return carveout_size;
}

/**
 * gmfs_carveout_take - start using a carve-out
 * @base: physical address, 2 MiB aligned
 * @size: size, a multiple of 2 MiB
 *
 * Checks that the range is reserved memory that no one else uses, and
 * sets it up to be mapped write-back, by the kernel to clear blocks and
 * by user space.
 *
 * Return: 0 on success, -EINVAL if the range is not a usable carve-out.
 */
int __init gmfs_carveout_take(phys_addr_t base, phys_addr_t size)
{
	if (!size || !IS_ALIGNED(base | size, GMFS_BLOCK_SIZE) ||
	    base + size < base)
		return -EINVAL;
	if (!e820__mapped_all(base, base + size, E820_TYPE_RESERVED) ||
	    region_intersects(base, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT)
		return -EINVAL;
	/* Not RAM for PAT: say what caching its mappings get. */
	if (memtype_reserve(base, base + size, _PAGE_CACHE_MODE_WB, NULL))
		return -EINVAL;
	return 0;
}

/**
 * gmfs_zero_block - clear a block of the carve-out from an offset to its end
 * @block: block number
 * @offset: first byte of the block to clear
 *
 * Return: 0 on success, -ENOMEM if it cannot be mapped.
 */
int gmfs_zero_block(unsigned long block, size_t offset)
{
	void *p = memremap(gmfs_block_phys(block), GMFS_BLOCK_SIZE, MEMREMAP_WB);

	if (!p)
		return -ENOMEM;
	memset(p + offset, 0, GMFS_BLOCK_SIZE - offset);
	memunmap(p);
	return 0;
}
