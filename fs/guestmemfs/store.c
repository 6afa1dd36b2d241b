// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guestmemfs store: inode table, allocation bitmap and block maps.
 *
 * Every structure lives in a folio of its own so that kexec handover can
 * preserve it as it is. All changes are made under gmfs.lock.
 */

#define pr_fmt(fmt) "guestmemfs: " fmt

#include <linux/bitmap.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>

#include "guestmemfs.h"

static_assert(sizeof(struct gmfs_pinode) == 512);
static_assert(sizeof(struct gmfs_psb) <= PAGE_SIZE);

struct gmfs_store gmfs = {
	.lock = __MUTEX_INITIALIZER(gmfs.lock),
	.attr_lock = __SPIN_LOCK_UNLOCKED(gmfs.attr_lock),
	.zeroing = GMFS_NO_BLOCK,
	.zero_wait = __WAIT_QUEUE_HEAD_INITIALIZER(gmfs.zero_wait),
};

/**
 * gmfs_block_phys - physical address of a block of the carve-out
 * @block: block number
 *
 * Return: the address; blocks are 2 MiB and 2 MiB aligned.
 */
phys_addr_t gmfs_block_phys(unsigned long block)
{
	return gmfs.base + ((phys_addr_t)block << GMFS_BLOCK_SHIFT);
}

/**
 * gmfs_block_map - the block numbers of a file, by file block index
 * @ino: inode number
 *
 * Return: the map, or NULL for a file without blocks. Stable while the
 * caller holds the file's invalidate_lock (shared) or gmfs.lock.
 */
u32 *gmfs_block_map(unsigned int ino)
{
	struct folio *map = READ_ONCE(gmfs.maps[ino]);

	return map ? folio_address(map) : NULL;
}

static void *gmfs_alloc_zeroed(unsigned int order, struct folio **folio)
{
	*folio = folio_alloc(GFP_KERNEL | __GFP_ZERO, order);
	return *folio ? folio_address(*folio) : NULL;
}

static unsigned int gmfs_bitmap_order(unsigned long nr_blocks)
{
	return get_order(BITS_TO_LONGS(nr_blocks) * sizeof(long));
}

static void gmfs_set_times(struct gmfs_pinode *p)
{
	struct timespec64 now;

	ktime_get_coarse_real_ts64(&now);
	p->atime_sec = now.tv_sec;
	p->mtime_sec = now.tv_sec;
	p->ctime_sec = now.tv_sec;
	p->atime_nsec = now.tv_nsec;
	p->mtime_nsec = now.tv_nsec;
	p->ctime_nsec = now.tv_nsec;
}

/**
 * gmfs_set_holes - mark the blocks between the ranges of a carve-out
 * @bitmap: a bitmap of the blocks of their span
 * @ext: the ranges, sorted
 * @nr: how many
 */
void gmfs_set_holes(unsigned long *bitmap, const struct range *ext,
		    unsigned int nr)
{
	unsigned int i;

	for (i = 1; i < nr; i++)
		bitmap_set(bitmap,
			   (ext[i - 1].end + 1 - ext[0].start) >> GMFS_BLOCK_SHIFT,
			   (ext[i].start - ext[i - 1].end - 1) >> GMFS_BLOCK_SHIFT);
}

/**
 * gmfs_store_create - create an empty store for a carve-out
 * @ext: its ranges, sorted, 2 MiB aligned
 * @nr: how many, at most GMFS_MAX_EXTENTS
 *
 * Return: 0 on success, -ENOMEM.
 */
int gmfs_store_create(const struct range *ext, unsigned int nr)
{
	struct folio *psb_folio, *itab, *bitmap;
	phys_addr_t base = ext[0].start, size = ext[nr - 1].end + 1 - base;
	unsigned long nr_blocks = size >> GMFS_BLOCK_SHIFT, capacity = 0;
	struct gmfs_psb *psb;
	struct gmfs_pinode *root;
	unsigned int i;

	psb = gmfs_alloc_zeroed(0, &psb_folio);
	gmfs.inodes = gmfs_alloc_zeroed(get_order(GMFS_MAX_INODES *
						   sizeof(struct gmfs_pinode)),
					&itab);
	gmfs.bitmap = gmfs_alloc_zeroed(gmfs_bitmap_order(nr_blocks), &bitmap);
	gmfs.bad = bitmap_zalloc(nr_blocks, GFP_KERNEL);
	if (!psb || !gmfs.inodes || !gmfs.bitmap || !gmfs.bad) {
		bitmap_free(gmfs.bad);
		gmfs.bad = NULL;
		if (psb)
			folio_put(psb_folio);
		if (gmfs.inodes)
			folio_put(itab);
		if (gmfs.bitmap)
			folio_put(bitmap);
		return -ENOMEM;
	}
	/* Holes are never free */
	gmfs_set_holes(gmfs.bitmap, ext, nr);
	for (i = 0; i < nr; i++) {
		gmfs.extents[i] = ext[i];
		capacity += range_len(&ext[i]) >> GMFS_BLOCK_SHIFT;
	}

	psb->magic = GMFS_MAGIC;
	psb->version = GMFS_VERSION;
	psb->block_shift = GMFS_BLOCK_SHIFT;
	psb->base = base;
	psb->size = size;
	psb->nr_blocks = nr_blocks;
	psb->nr_inodes = GMFS_MAX_INODES;
	psb->inode_table = PFN_PHYS(folio_pfn(itab));
	psb->inode_table_order = folio_order(itab);
	psb->bitmap = PFN_PHYS(folio_pfn(bitmap));
	psb->bitmap_order = folio_order(bitmap);
	psb->next_generation = 1;

	root = &gmfs.inodes[GMFS_ROOT_INO];
	root->flags = GMFS_INODE_USED;
	root->mode = S_IFDIR | 0755;
	root->parent = GMFS_ROOT_INO;
	gmfs_set_times(root);

	gmfs.psb = psb;
	gmfs.base = base;
	gmfs.size = size;
	gmfs.nr_extents = nr;
	gmfs.nr_blocks = nr_blocks;
	gmfs.capacity = capacity;
	gmfs.free_blocks = capacity;
	gmfs.free_inodes = GMFS_MAX_INODES - 2;	/* 0 is unused */
	return 0;
}

/**
 * gmfs_store_alloc_inode - allocate an inode in the store
 * @mode: its mode, type included
 * @uid: owner
 * @gid: group
 * @parent: inode number of the directory it is created in
 * @name: its name there
 *
 * Return: the new inode number, or -ENOSPC when the table is full.
 */
int gmfs_store_alloc_inode(umode_t mode, kuid_t uid, kgid_t gid,
			   unsigned int parent, const struct qstr *name)
{
	struct gmfs_pinode *p;
	unsigned int ino;

	lockdep_assert_held(&gmfs.lock);
	if (!gmfs.free_inodes)
		return -ENOSPC;
	for (ino = GMFS_ROOT_INO + 1; ino < GMFS_MAX_INODES; ino++)
		if (!gmfs.inodes[ino].flags)
			break;
	if (WARN_ON_ONCE(ino == GMFS_MAX_INODES))
		return -ENOSPC;

	p = &gmfs.inodes[ino];
	memset(p, 0, sizeof(*p));
	p->flags = GMFS_INODE_USED;
	p->mode = mode;
	p->uid = from_kuid(&init_user_ns, uid);
	p->gid = from_kgid(&init_user_ns, gid);
	p->generation = gmfs.psb->next_generation++;
	gmfs_set_times(p);
	gmfs.free_inodes--;
	gmfs_store_set_name(ino, parent, name);
	return ino;
}

/**
 * gmfs_store_set_name - record where an inode is in the tree
 * @ino: inode number
 * @parent: inode number of its directory
 * @name: its name there, at most GMFS_NAME_MAX bytes
 *
 * Return: 0.
 */
int gmfs_store_set_name(unsigned int ino, unsigned int parent,
			const struct qstr *name)
{
	struct gmfs_pinode *p = gmfs_pinode(ino);

	lockdep_assert_held(&gmfs.lock);
	p->parent = parent;
	p->name_len = min_t(u32, name->len, GMFS_NAME_MAX);
	memcpy(p->name, name->name, p->name_len);
	memset(p->name + p->name_len, 0, sizeof(p->name) - p->name_len);
	return 0;
}

/**
 * gmfs_store_sync_attrs - record an inode's mode, owner and times
 * @inode: the VFS inode, whose attributes are the new ones
 *
 * Takes the attributes lock only: the caller may hold the store lock, or
 * not.
 */
void gmfs_store_sync_attrs(struct inode *inode)
{
	struct gmfs_pinode *p = gmfs_pinode(inode->i_ino);
	struct timespec64 ts;

	spin_lock(&gmfs.attr_lock);
	p->mode = inode->i_mode;
	p->uid = i_uid_read(inode);
	p->gid = i_gid_read(inode);
	ts = inode_get_atime(inode);
	p->atime_sec = ts.tv_sec;
	p->atime_nsec = ts.tv_nsec;
	ts = inode_get_mtime(inode);
	p->mtime_sec = ts.tv_sec;
	p->mtime_nsec = ts.tv_nsec;
	ts = inode_get_ctime(inode);
	p->ctime_sec = ts.tv_sec;
	p->ctime_nsec = ts.tv_nsec;
	spin_unlock(&gmfs.attr_lock);
}

/* Cleared by the thread since it was last freed (see zero.c) */
static bool gmfs_block_clean(unsigned long block)
{
	return gmfs.clean && test_bit(block, gmfs.clean);
}

static void gmfs_free_blocks(const u32 *map, unsigned long from,
			     unsigned long to)
{
	unsigned long i, freed = 0;

	for (i = from; i < to; i++) {
		WARN_ON_ONCE(!test_bit(map[i], gmfs.bitmap));
		/* A bad block stays taken: no file gets it again */
		if (gmfs_block_bad(map[i])) {
			gmfs.bad_free++;
			continue;
		}
		__clear_bit(map[i], gmfs.bitmap);
		freed++;
	}
	gmfs.free_blocks += freed;
	/* Dirty: for the thread to clear ahead of the next grow */
	if (freed)
		gmfs_zero_kick();
}

/**
 * gmfs_store_free_inode - free an inode and all its blocks
 * @ino: inode number
 */
void gmfs_store_free_inode(unsigned int ino)
{
	struct gmfs_pinode *p = gmfs_pinode(ino);
	struct folio *map = gmfs.maps[ino];

	lockdep_assert_held(&gmfs.lock);
	/* A pin holds the inode: its last reference cannot have gone. */
	WARN_ON_ONCE(!hlist_empty(&gmfs.pins[ino]));
	if (map) {
		gmfs_free_blocks(folio_address(map), 0, p->nr_blocks);
		WRITE_ONCE(gmfs.maps[ino], NULL);
		folio_put(map);
	}
	memset(p, 0, sizeof(*p));
	gmfs.free_inodes++;
}

/*
 * Where it can, the allocator keeps each 1 GiB of a file in one aligned
 * 1 GiB of the carve-out, which the file can then be mapped with a PUD
 * entry from: a "region", here. Whole GiBs of a grow take a free region
 * at once. A file that grows 2 MiB at a time, as a VM's RAM does when it
 * is added in steps, starts each GiB of its own in a free region and
 * carries on in it block by block; the blocks taken otherwise avoid the
 * regions such files are filling, and leave free regions whole for as
 * long as there are other blocks. The cost: a small file, which might
 * grow and might not, also starts in a free region while there is one.
 */
enum gmfs_region_kind {
	GMFS_REGION_NONE,	/* no free block */
	GMFS_REGION_MIXED,	/* cannot be mapped whole any more */
	GMFS_REGION_FILLING,	/* its first blocks in use, the rest free */
	GMFS_REGION_FREE,	/* all of it free */
};

/* Do blocks [@first, @first + @nr) lie in one range of the carve-out? */
static bool gmfs_blocks_in_extent(unsigned long first, unsigned long nr)
{
	phys_addr_t start = gmfs_block_phys(first);
	phys_addr_t end = start + ((phys_addr_t)nr << GMFS_BLOCK_SHIFT) - 1;
	unsigned int i;

	for (i = 0; i < gmfs.nr_extents; i++)
		if (start >= gmfs.extents[i].start && end <= gmfs.extents[i].end)
			return true;
	return false;
}

/* What region [@start, @end) is; holes between ranges count as in use. */
static enum gmfs_region_kind gmfs_region(unsigned long start,
					 unsigned long end)
{
	unsigned long used, free;

	free = find_next_zero_bit(gmfs.bitmap, end, start);
	if (free >= end)
		return GMFS_REGION_NONE;
	if (end - start < GMFS_PUD_BLOCKS ||
	    !gmfs_blocks_in_extent(start, GMFS_PUD_BLOCKS))
		return GMFS_REGION_MIXED;
	used = find_next_bit(gmfs.bitmap, end, start);
	if (used >= end)
		return GMFS_REGION_FREE;
	if (used == start && find_next_bit(gmfs.bitmap, end, free) >= end)
		return GMFS_REGION_FILLING;
	return GMFS_REGION_MIXED;
}

/*
 * A free block for block @i of a file whose map is @map, or GMFS_NO_BLOCK:
 * the one after the file's block @i - 1 within a GiB of the file; the
 * first of a free region where a GiB of the file starts; otherwise the
 * first free block of a region that cannot be mapped whole any more, or
 * the last one of a region being filled, or the last of a free region.
 */
static unsigned long gmfs_pick_block(const u32 *map, unsigned long i)
{
	unsigned long off = (gmfs.base >> GMFS_BLOCK_SHIFT) &
			    (GMFS_PUD_BLOCKS - 1);
	unsigned long mixed = GMFS_NO_BLOCK, filling = GMFS_NO_BLOCK;
	unsigned long free = GMFS_NO_BLOCK, r, start, end, b;

	if (i % GMFS_PUD_BLOCKS) {
		b = map[i - 1] + 1;
		if (b < gmfs.nr_blocks && !test_bit(b, gmfs.bitmap))
			return b;
	}
	/* Region r holds blocks [r * 512 - off, r * 512 - off + 512) */
	for (r = 0; r * GMFS_PUD_BLOCKS < gmfs.nr_blocks + off; r++) {
		start = max(r * GMFS_PUD_BLOCKS, off) - off;
		end = min(r * GMFS_PUD_BLOCKS + GMFS_PUD_BLOCKS - off,
			  gmfs.nr_blocks);
		switch (gmfs_region(start, end)) {
		case GMFS_REGION_NONE:
			break;
		case GMFS_REGION_MIXED:
			b = find_next_zero_bit(gmfs.bitmap, end, start);
			/* Where a GiB of the file starts, a free region first */
			if (i % GMFS_PUD_BLOCKS)
				return b;
			if (mixed == GMFS_NO_BLOCK)
				mixed = b;
			break;
		case GMFS_REGION_FILLING:
			if (filling == GMFS_NO_BLOCK)
				filling = end - 1;
			break;
		case GMFS_REGION_FREE:
			if (!(i % GMFS_PUD_BLOCKS))
				return start;
			if (free == GMFS_NO_BLOCK)
				free = end - 1;
			break;
		}
	}
	if (mixed != GMFS_NO_BLOCK)
		return mixed;
	return filling != GMFS_NO_BLOCK ? filling : free;
}

/*
 * Take @nr free blocks for file blocks [@first, @first + @nr) into @map:
 * a free region for each whole GiB of the file, and one block at a time
 * for the rest (gmfs_pick_block()).
 */
static int gmfs_take_blocks(u32 *map, unsigned long first, unsigned long nr)
{
	unsigned long align_off = (gmfs.base >> GMFS_BLOCK_SHIFT) &
				  (GMFS_PUD_BLOCKS - 1);
	unsigned long i = first, end = first + nr, b;

	if (nr > gmfs.free_blocks)
		return -ENOSPC;
	while (i < end) {
		if (!(i % GMFS_PUD_BLOCKS) && end - i >= GMFS_PUD_BLOCKS) {
			b = bitmap_find_next_zero_area_off(gmfs.bitmap, gmfs.nr_blocks,
							   0, GMFS_PUD_BLOCKS,
							   GMFS_PUD_BLOCKS - 1,
							   align_off);
			if (b < gmfs.nr_blocks) {
				unsigned long j;

				bitmap_set(gmfs.bitmap, b, GMFS_PUD_BLOCKS);
				for (j = 0; j < GMFS_PUD_BLOCKS; j++)
					map[i++] = b + j;
				continue;
			}
		}
		b = gmfs_pick_block(map, i);
		if (WARN_ON_ONCE(b == GMFS_NO_BLOCK || gmfs_block_bad(b)))
			break;
		__set_bit(b, gmfs.bitmap);
		map[i++] = b;
	}
	gmfs.free_blocks -= i - first;
	if (i < end) {
		gmfs_free_blocks(map, first, i);
		return -ENOSPC;
	}
	return 0;
}

/* A block map folio able to hold @nr blocks, with the old map copied in. */
static struct folio *gmfs_grow_map(unsigned int ino, unsigned long nr)
{
	unsigned int order = get_order(nr * sizeof(u32));
	struct folio *old = gmfs.maps[ino], *new;

	if (old && folio_order(old) >= order)
		return old;
	new = folio_alloc(GFP_KERNEL | __GFP_ZERO, order);
	if (!new)
		return NULL;
	if (old)
		memcpy(folio_address(new), folio_address(old),
		       gmfs_pinode(ino)->nr_blocks * sizeof(u32));
	return new;
}

/**
 * gmfs_store_shrink - give back the blocks of a file past a new size
 * @ino: inode number
 * @size: the new size in bytes, not above the current one
 *
 * The caller holds the file's invalidate_lock exclusively and has unmapped
 * from user space what lies past @size, so no fault can reach the blocks
 * freed here.
 *
 * Return: 0, or -EBUSY once finalized for kexec.
 */
int gmfs_store_shrink(unsigned int ino, loff_t size)
{
	struct gmfs_pinode *p = gmfs_pinode(ino);
	unsigned long nr = DIV_ROUND_UP(size, GMFS_BLOCK_SIZE);
	int err = 0;

	mutex_lock(&gmfs.lock);
	if (gmfs.frozen) {
		err = -EBUSY;
		goto out;
	}
	if (nr < p->nr_blocks)
		gmfs_free_blocks(gmfs_block_map(ino), nr, p->nr_blocks);
	if (!nr && gmfs.maps[ino]) {
		struct folio *old = gmfs.maps[ino];

		/*
		 * An empty file has no block map: drop it, or it would be
		 * handed over with the file and rejected by the next kernel.
		 */
		WRITE_ONCE(gmfs.maps[ino], NULL);
		folio_put(old);
		p->blocks = 0;
		p->blocks_order = 0;
	}
	p->nr_blocks = nr;
	p->size = size;
out:
	mutex_unlock(&gmfs.lock);
	return err;
}

/**
 * gmfs_store_grow - take and clear the blocks a file needs for a new size
 * @g: the grow, for gmfs_store_grow_commit()
 * @ino: inode number
 * @size: the new size in bytes, above the current one
 *
 * Blocks are taken under the store lock, and those the zeroing thread has
 * not cleared already (zero.c) are cleared without it: statfs, namespace
 * operations, mmap() and KHO finalize do not wait for the zeroing of a
 * large file. Neither do faults on the file itself: the new blocks go past
 * its end in its map, or in a larger copy of the map, where no fault
 * looks. The caller holds the inode lock, which keeps other size changes
 * of the file out until gmfs_store_grow_commit(); a KHO finalize waits for
 * that commit.
 *
 * Return: 0, and the blocks are held for the commit; or, with nothing
 * held: -ENOSPC if there are not enough free blocks; -EFBIG beyond the
 * largest block map; -EBUSY once finalized for kexec, or if a finalize
 * stopped the zeroing; -ENOMEM; -EINTR if a fatal signal stopped it.
 */
int gmfs_store_grow(struct gmfs_grow *g, unsigned int ino, loff_t size)
{
	unsigned long nr = DIV_ROUND_UP(size, GMFS_BLOCK_SIZE), i, run;
	u32 *blocks;
	int err;

	if (nr > GMFS_MAX_FILE_BLOCKS)
		return -EFBIG;

	g->ino = ino;
	g->size = size;
	g->nr = nr;
	mutex_lock(&gmfs.lock);
	if (gmfs.frozen) {
		mutex_unlock(&gmfs.lock);
		return -EBUSY;
	}
	g->old_nr = min_t(unsigned long, gmfs_pinode(ino)->nr_blocks, nr);
	g->map = gmfs.maps[ino];
	if (nr > g->old_nr) {
		g->map = gmfs_grow_map(ino, nr);
		if (!g->map) {
			mutex_unlock(&gmfs.lock);
			return -ENOMEM;
		}
		err = gmfs_take_blocks(folio_address(g->map), g->old_nr,
				       nr - g->old_nr);
		if (err) {
			if (g->map != gmfs.maps[ino])
				folio_put(g->map);
			mutex_unlock(&gmfs.lock);
			return err;
		}
	}
	gmfs.growing++;
	mutex_unlock(&gmfs.lock);

	/*
	 * Nothing of an earlier file, or an earlier kernel, may show: clear
	 * every block the thread has not cleared already, a run of
	 * contiguous blocks at a time. Their clean bits cannot change while
	 * the blocks are taken, but for one that fails meanwhile, which is
	 * bad then whether it is cleared or not (memfail.c).
	 */
	blocks = g->map ? folio_address(g->map) : NULL;
	err = 0;
	for (i = g->old_nr; !err && i < nr; i = run) {
		for (run = i; run < nr && blocks[run] == blocks[i] + run - i &&
		     !gmfs_block_clean(blocks[run]); run++)
			;
		if (run > i)
			err = gmfs_zero_run(blocks[i], run - i, true);
		else
			run++;
	}
	if (err)
		gmfs_store_grow_commit(g, err);
	return err;
}

/**
 * gmfs_store_grow_commit - give a file the blocks of a grow, or give them back
 * @g: the grow, from a successful gmfs_store_grow()
 * @err: 0 to commit, or an error of the caller's: the blocks are given back
 *
 * Called with the file's invalidate_lock held exclusively (unless @err),
 * as the map may be replaced by a larger one.
 *
 * Return: @err, or -EBUSY if a KHO finalize came in since the blocks were
 * taken (they are given back), or 0: the file has its new size.
 */
int gmfs_store_grow_commit(struct gmfs_grow *g, int err)
{
	struct gmfs_pinode *p = gmfs_pinode(g->ino);
	u32 *blocks = g->map ? folio_address(g->map) : NULL;
	unsigned long i;

	mutex_lock(&gmfs.lock);
	if (!err)
		gmfs_zero_wait(blocks + g->old_nr, g->nr - g->old_nr);
	/* A finalize came in: it waits for the blocks to be given back */
	if (!err && gmfs.frozen)
		err = -EBUSY;
	if (!--gmfs.growing)
		wake_up_all(&gmfs.zero_wait);
	if (err) {
		if (g->nr > g->old_nr) {
			gmfs_free_blocks(blocks, g->old_nr, g->nr);
			if (g->map != gmfs.maps[g->ino])
				folio_put(g->map);
		}
		goto out;
	}
	if (gmfs.clean)
		for (i = g->old_nr; i < g->nr; i++)
			clear_bit(blocks[i], gmfs.clean);
	if (g->map != gmfs.maps[g->ino]) {
		struct folio *old = gmfs.maps[g->ino];

		WRITE_ONCE(gmfs.maps[g->ino], g->map);
		p->blocks = PFN_PHYS(folio_pfn(g->map));
		p->blocks_order = folio_order(g->map);
		if (old)
			folio_put(old);
	}
	p->nr_blocks = g->nr;
	p->size = g->size;
out:
	mutex_unlock(&gmfs.lock);
	return err;
}
