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
	if (!psb || !gmfs.inodes || !gmfs.bitmap) {
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
	unsigned long i;

	for (i = from; i < to; i++) {
		WARN_ON_ONCE(!test_bit(map[i], gmfs.bitmap));
		__clear_bit(map[i], gmfs.bitmap);
	}
	gmfs.free_blocks += to - from;
	/* Dirty: for the thread to clear ahead of the next grow */
	if (to > from)
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
 * Take @nr free blocks for file blocks [@first, @first + @nr) into @map.
 * Where a whole 1 GiB of the file starts, first look for 512 free blocks
 * that are physically contiguous and 1 GiB aligned, so the file can be
 * mapped with PUD entries; otherwise take blocks one by one.
 */
static int gmfs_take_blocks(u32 *map, unsigned long first, unsigned long nr)
{
	unsigned long align_off = (gmfs.base >> GMFS_BLOCK_SHIFT) &
				  (GMFS_PUD_BLOCKS - 1);
	unsigned long i = first, end = first + nr, b, hint = 0;

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
		b = find_next_zero_bit(gmfs.bitmap, gmfs.nr_blocks, hint);
		if (b >= gmfs.nr_blocks)
			b = find_first_zero_bit(gmfs.bitmap, gmfs.nr_blocks);
		if (WARN_ON_ONCE(b >= gmfs.nr_blocks))
			break;
		__set_bit(b, gmfs.bitmap);
		map[i++] = b;
		hint = b + 1;
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
 * gmfs_store_resize - give a file the blocks of a new size
 * @ino: inode number
 * @size: the new size in bytes
 *
 * Growing takes blocks under the store lock, clears without it those the
 * zeroing thread has not cleared already (zero.c), and commits them under
 * it again: statfs, namespace operations, other files' mmap() and KHO
 * finalize do not wait for the zeroing of a large file. A fatal signal
 * stops the zeroing, and so does a KHO finalize (-EBUSY, as for a grow
 * after it): the blocks are then given back. Failing, a grow leaves the
 * file as it was.
 * Shrinking frees the blocks past the new size: the caller must have
 * unmapped them from user space first. Called with the file's
 * invalidate_lock held exclusively, so no fault and no other resize of
 * the file runs meanwhile.
 *
 * Return: 0; -ENOSPC if there are not enough free blocks; -EFBIG beyond
 * the largest block map; -EBUSY once finalized for kexec; -ENOMEM;
 * -EINTR if a fatal signal stopped the zeroing, -EBUSY if a finalize did.
 */
int gmfs_store_resize(unsigned int ino, loff_t size)
{
	struct gmfs_pinode *p = gmfs_pinode(ino);
	unsigned long nr = DIV_ROUND_UP(size, GMFS_BLOCK_SIZE), old_nr, i, run;
	struct folio *map;
	u32 *blocks;
	int err = 0;

	if (nr > GMFS_MAX_FILE_BLOCKS)
		return -EFBIG;

	mutex_lock(&gmfs.lock);
	if (gmfs.frozen) {
		err = -EBUSY;
		goto out;
	}
	old_nr = p->nr_blocks;
	if (nr < old_nr)
		gmfs_free_blocks(gmfs_block_map(ino), nr, old_nr);
	if (!nr && gmfs.maps[ino]) {
		struct folio *old = gmfs.maps[ino];

		/*
		 * An empty file has no block map: drop it, or it would be
		 * handed over with the file and rejected by the next kernel.
		 * Faults cannot look at it: the caller holds the mapping's
		 * invalidate_lock.
		 */
		WRITE_ONCE(gmfs.maps[ino], NULL);
		folio_put(old);
		p->blocks = 0;
		p->blocks_order = 0;
	}
	if (nr <= old_nr)
		goto done;

	/*
	 * The new blocks go past the file's end in its map (or in a larger
	 * copy of it, installed at commit), where nothing looks yet.
	 */
	map = gmfs_grow_map(ino, nr);
	if (!map) {
		err = -ENOMEM;
		goto out;
	}
	blocks = folio_address(map);
	err = gmfs_take_blocks(blocks, old_nr, nr - old_nr);
	if (err)
		goto put_map;
	gmfs.growing++;
	mutex_unlock(&gmfs.lock);

	/*
	 * Nothing of an earlier file, or an earlier kernel, may show: clear
	 * every block the thread has not cleared already, a run of
	 * contiguous blocks at a time. Their clean bits cannot change while
	 * the blocks are taken.
	 */
	for (i = old_nr; !err && i < nr; i = run) {
		for (run = i; run < nr && blocks[run] == blocks[i] + run - i &&
		     !gmfs_block_clean(blocks[run]); run++)
			;
		if (run > i)
			err = gmfs_zero_run(blocks[i], run - i, true);
		else
			run++;
	}

	mutex_lock(&gmfs.lock);
	if (!err)
		gmfs_zero_wait(blocks + old_nr, nr - old_nr);
	/* A finalize came in: it waits for the blocks to be given back */
	if (!err && gmfs.frozen)
		err = -EBUSY;
	if (!--gmfs.growing)
		wake_up_all(&gmfs.zero_wait);
	if (err) {
		gmfs_free_blocks(blocks, old_nr, nr);
		goto put_map;
	}
	if (gmfs.clean)
		for (i = old_nr; i < nr; i++)
			clear_bit(blocks[i], gmfs.clean);
	if (map != gmfs.maps[ino]) {
		struct folio *old = gmfs.maps[ino];

		WRITE_ONCE(gmfs.maps[ino], map);
		p->blocks = PFN_PHYS(folio_pfn(map));
		p->blocks_order = folio_order(map);
		if (old)
			folio_put(old);
	}
done:
	p->nr_blocks = nr;
	p->size = size;
	goto out;
put_map:
	if (map != gmfs.maps[ino])
		folio_put(map);
out:
	mutex_unlock(&gmfs.lock);
	return err;
}
