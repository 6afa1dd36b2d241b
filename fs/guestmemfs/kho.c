// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs across kexec, through kexec handover (KHO).
 *
 * At finalization the store's folios (superblock, inode table, bitmap and
 * every block map) are preserved as they are, and a "guestmemfs" subtree
 * says where the superblock and the ranges of the carve-out are; the
 * namespace is frozen until the kexec or an abort. The ranges themselves
 * are handed over as memory outside the direct map, which the next kernel
 * keeps out of its memory map from early boot (carveout.c).
 *
 * The next kernel restores all of it at boot and checks every field it
 * reads before the store is used. If anything is wrong it says so once,
 * mounts fail, and the carve-out stays reserved, and is handed over again
 * at the next kexec with handover: guest memory is neither lost to nor
 * leaked to anyone else.
 */

#define pr_fmt(fmt) "guestmemfs: " fmt

#include <kunit/visibility.h>
#include <linux/bitmap.h>
#include <linux/io.h>
#include <linux/kexec_handover.h>
#include <linux/libfdt.h>
#include <linux/mm.h>
#include <linux/notifier.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/unaligned.h>

#include "guestmemfs.h"

#define GMFS_KHO_NAME		"guestmemfs"
/* v1 had the carve-out in one range */
#define GMFS_KHO_COMPATIBLE	"guestmemfs-v2"

/* The subtree published at the last finalization, until abort. */
static struct folio *gmfs_kho_fdt;

static struct folio *phys_folio(void *addr)
{
	return virt_to_folio(addr);
}

typedef int (*gmfs_folio_fn)(struct folio *folio);

/* Every folio of the store, in a fixed order; @fn stops at an error. */
static int gmfs_walk_folios(gmfs_folio_fn fn)
{
	unsigned int ino;
	int err;

	err = fn(phys_folio(gmfs.psb)) ?: fn(phys_folio(gmfs.inodes)) ?:
	      fn(phys_folio(gmfs.bitmap));
	for (ino = 0; !err && ino < GMFS_MAX_INODES; ino++)
		if (gmfs.maps[ino])
			err = fn(gmfs.maps[ino]);
	return err;
}

static struct folio *gmfs_unpreserve_stop;

static int gmfs_unpreserve_until(struct folio *folio)
{
	if (folio == gmfs_unpreserve_stop)
		return -EINTR;
	WARN_ON_ONCE(kho_unpreserve_folio(folio));
	return 0;
}

static int gmfs_preserve_one(struct folio *folio)
{
	int err = kho_preserve_folio(folio);

	if (err)
		gmfs_unpreserve_stop = folio;
	return err;
}

/* The bad blocks, in order, as block numbers */
/*
 * The bad blocks: GMFS_MAX_BAD slots, the numbers of the bad blocks, then
 * GMFS_NO_BAD. A block that fails after finalize takes the first free slot
 * (gmfs_kho_update_bad()): the subtree never changes size or layout.
 */
static int gmfs_fdt_bad_blocks(void *fdt)
{
	unsigned long b;
	unsigned int i = 0;
	u32 *val;
	int err;

	err = fdt_property_placeholder(fdt, "bad-blocks",
				       GMFS_MAX_BAD * sizeof(u32), (void **)&val);
	if (err)
		return err;
	for_each_set_bit(b, gmfs.bad, gmfs.nr_blocks)
		put_unaligned((u32)b, &val[i++]);
	while (i < GMFS_MAX_BAD)
		put_unaligned(GMFS_NO_BAD, &val[i++]);
	return 0;
}

static int gmfs_build_fdt(void *fdt, size_t size)
{
	u64 carveout[2 * GMFS_MAX_EXTENTS];
	u64 psb = virt_to_phys(gmfs.psb);
	unsigned int i;

	/* The ranges: base and size of each, in order */
	for (i = 0; i < gmfs.nr_extents; i++) {
		carveout[2 * i] = gmfs.extents[i].start;
		carveout[2 * i + 1] = range_len(&gmfs.extents[i]);
	}
	return fdt_create(fdt, size) ?:
	       fdt_finish_reservemap(fdt) ?:
	       fdt_begin_node(fdt, "") ?:
	       fdt_property_string(fdt, "compatible", GMFS_KHO_COMPATIBLE) ?:
	       fdt_property(fdt, "superblock", &psb, sizeof(psb)) ?:
	       fdt_property(fdt, "carveout", carveout,
			    2 * gmfs.nr_extents * sizeof(u64)) ?:
	       gmfs_fdt_bad_blocks(fdt) ?:
	       fdt_end_node(fdt) ?:
	       fdt_finish(fdt);
}

/* Thawed after a failed finalize or an abort: undo what frozen deferred */
static void gmfs_thaw(void)
{
	unsigned int ino;

	lockdep_assert_held(&gmfs.lock);
	gmfs.frozen = false;
	/* What was released while frozen can go now. */
	for (ino = GMFS_ROOT_INO + 1; ino < GMFS_MAX_INODES; ino++)
		if (gmfs_pinode(ino)->flags & GMFS_INODE_FREE_ON_THAW)
			gmfs_store_free_inode(ino);
	/* The zeroing thread rests while frozen */
	gmfs_zero_kick();
}

static int gmfs_kho_finalize(struct kho_serialization *ser)
{
	struct folio *fdt;
	int err;

	lockdep_assert_held(&gmfs.lock);
	if (!gmfs.psb)
		return 0;

	/*
	 * From here on the store does not change. A grow under way holds
	 * blocks no file has yet: seeing the store frozen, it gives them
	 * back and fails with -EBUSY, as a grow after finalize does. Wait
	 * for that, without the store lock, which it needs.
	 */
	gmfs.frozen = true;
	while (gmfs.growing) {
		mutex_unlock(&gmfs.lock);
		wait_event(gmfs.zero_wait, !READ_ONCE(gmfs.growing));
		mutex_lock(&gmfs.lock);
	}

	err = -ENOMEM;
	fdt = folio_alloc(GFP_KERNEL | __GFP_ZERO, 0);
	if (!fdt)
		goto thaw;
	err = -ENOSPC;
	if (gmfs.nr_bad > GMFS_MAX_BAD) {
		pr_err("%lu bad blocks, more than a handover can carry (%u)\n",
		       gmfs.nr_bad, GMFS_MAX_BAD);
		goto put_fdt;
	}
	if (gmfs_build_fdt(folio_address(fdt), folio_size(fdt)))
		goto put_fdt;

	gmfs_unpreserve_stop = NULL;
	err = gmfs_walk_folios(gmfs_preserve_one);
	if (err) {
		gmfs_walk_folios(gmfs_unpreserve_until);
		goto put_fdt;
	}
	err = kho_preserve_folio(fdt);
	if (err)
		goto unpreserve;
	err = kho_add_subtree(ser, GMFS_KHO_NAME, folio_address(fdt));
	if (err) {
		kho_unpreserve_folio(fdt);
		goto unpreserve;
	}
	gmfs_kho_fdt = fdt;
	return 0;

unpreserve:
	gmfs_unpreserve_stop = NULL;
	gmfs_walk_folios(gmfs_unpreserve_until);
put_fdt:
	folio_put(fdt);
thaw:
	gmfs_thaw();
	return err;
}

/**
 * gmfs_kho_update_bad - put a new bad block in a finalized handover
 * @block: the block
 *
 * The subtree is handed over by address, as it is at the kexec: write the
 * block into a free slot of its list, one aligned 32-bit store, so that a
 * kexec at any moment hands over the list with or without it, never a
 * torn subtree. Called with the store lock held.
 */
void gmfs_kho_update_bad(unsigned long block)
{
	u32 *val;
	int len, i;

	lockdep_assert_held(&gmfs.lock);
	if (!gmfs_kho_fdt)
		return;
	val = fdt_getprop_w(folio_address(gmfs_kho_fdt), 0, "bad-blocks", &len);
	for (i = 0; val && i < len / (int)sizeof(u32); i++) {
		if (val[i] == GMFS_NO_BAD) {
			WRITE_ONCE(val[i], block);
			return;
		}
	}
	pr_err("the handover cannot carry bad block %lu: the next kernel may use it\n",
	       block);
}

static void gmfs_kho_abort(void)
{
	lockdep_assert_held(&gmfs.lock);
	if (!gmfs_kho_fdt)
		return;
	WARN_ON_ONCE(kho_unpreserve_folio(gmfs_kho_fdt));
	folio_put(gmfs_kho_fdt);
	gmfs_kho_fdt = NULL;
	gmfs_unpreserve_stop = NULL;
	gmfs_walk_folios(gmfs_unpreserve_until);
	gmfs_thaw();
}

static int gmfs_kho_notifier(struct notifier_block *nb, unsigned long event,
			     void *data)
{
	int err = 0;

	mutex_lock(&gmfs.lock);
	switch (event) {
	case KEXEC_KHO_FINALIZE:
		err = gmfs_kho_finalize(data);
		break;
	case KEXEC_KHO_ABORT:
		gmfs_kho_abort();
		break;
	}
	mutex_unlock(&gmfs.lock);
	return notifier_from_errno(err);
}

static struct notifier_block gmfs_kho_nb = {
	.notifier_call = gmfs_kho_notifier,
};

/**
 * gmfs_kho_init - hand guestmemfs over at every kexec
 *
 * Return: 0 on success, or the error of register_kho_notifier().
 */
int __init gmfs_kho_init(void)
{
	if (!kho_is_enabled())
		return 0;
	return register_kho_notifier(&gmfs_kho_nb);
}

/* Restoring */

static bool reject(struct gmfs_restore *r, const char *why, unsigned int ino)
{
	r->why = why;
	r->ino = ino;
	return false;
}

/* A preserved folio of exactly @order, or NULL. */
static struct folio *restore_folio(u64 phys, unsigned int order)
{
	struct folio *folio;

	if (!phys || !PAGE_ALIGNED(phys))
		return NULL;
	folio = kho_restore_folio(phys);
	/*
	 * Of another order, it is not what our metadata says it is, so it
	 * may be someone else's: leak it rather than free what could still
	 * be in use.
	 */
	if (folio && folio_order(folio) != order)
		return NULL;
	return folio;
}

static bool check_name(const struct gmfs_pinode *p)
{
	if (!p->name_len || p->name_len > GMFS_NAME_MAX)
		return false;
	if (memchr(p->name, '/', p->name_len) || memchr(p->name, 0, p->name_len))
		return false;
	if ((p->name_len == 1 && p->name[0] == '.') ||
	    (p->name_len == 2 && p->name[0] == '.' && p->name[1] == '.'))
		return false;
	return true;
}

/**
 * gmfs_check_blocks - check the block map of a file and account its blocks
 * @r: the restore; its used bitmap collects the blocks of every file
 * @psb: the handed-over superblock, already checked
 * @map: the file's block map
 * @nr: the number of blocks the file holds
 * @ino: the file's inode number, for the message
 *
 * Return: true if every block is inside one of the carve-out's ranges
 * and no other file holds it; false, with @r saying why, otherwise.
 */
VISIBLE_IF_KUNIT bool gmfs_check_blocks(struct gmfs_restore *r,
					const struct gmfs_psb *psb,
					const u32 *map, u64 nr,
					unsigned int ino)
{
	u64 i;

	for (i = 0; i < nr; i++) {
		if (map[i] >= psb->nr_blocks)
			return reject(r, "block out of range", ino);
		if (r->holes && test_bit(map[i], r->holes))
			return reject(r, "block between the carve-out's ranges",
				      ino);
		if (__test_and_set_bit(map[i], r->used))
			return reject(r, "block used twice", ino);
	}
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(gmfs_check_blocks);

static bool check_inode(struct gmfs_restore *r, const struct gmfs_psb *psb,
			struct gmfs_pinode *inodes, unsigned int ino)
{
	struct gmfs_pinode *p = &inodes[ino];
	const struct gmfs_pinode *parent;
	umode_t type = p->mode & S_IFMT;

	if (p->flags & ~GMFS_INODE_USED)
		return reject(r, "bad inode flags", ino);
	if ((type != S_IFREG && type != S_IFDIR) || (p->mode & ~(S_IFMT | 07777)))
		return reject(r, "bad mode", ino);
	if (!uid_valid(make_kuid(&init_user_ns, p->uid)) ||
	    !gid_valid(make_kgid(&init_user_ns, p->gid)))
		return reject(r, "bad owner", ino);
	if (p->atime_nsec >= NSEC_PER_SEC || p->mtime_nsec >= NSEC_PER_SEC ||
	    p->ctime_nsec >= NSEC_PER_SEC)
		return reject(r, "bad time", ino);

	if (ino == GMFS_ROOT_INO) {
		if (type != S_IFDIR || p->parent != GMFS_ROOT_INO || p->name_len)
			return reject(r, "bad root directory", ino);
	} else {
		if (!check_name(p))
			return reject(r, "bad name", ino);
		if (p->parent >= GMFS_MAX_INODES)
			return reject(r, "parent out of range", ino);
		parent = &inodes[p->parent];
		if (!(parent->flags & GMFS_INODE_USED) ||
		    (parent->flags & GMFS_INODE_ORPHAN) ||
		    !S_ISDIR(parent->mode))
			return reject(r, "parent is not a directory", ino);
	}

	if (type == S_IFDIR) {
		if (p->size || p->nr_blocks || p->blocks)
			return reject(r, "directory with blocks", ino);
		return true;
	}
	/* Bound the size first: rounding it up must not wrap to few blocks. */
	if (p->size > (u64)GMFS_MAX_FILE_BLOCKS << GMFS_BLOCK_SHIFT ||
	    p->nr_blocks != DIV_ROUND_UP(p->size, GMFS_BLOCK_SIZE))
		return reject(r, "size and blocks disagree", ino);
	if (!p->nr_blocks) {
		if (p->blocks)
			return reject(r, "block map of an empty file", ino);
		return true;
	}
	if (p->blocks_order < get_order(p->nr_blocks * sizeof(u32)) ||
	    p->blocks_order > MAX_PAGE_ORDER)
		return reject(r, "bad block map order", ino);
	r->maps[ino] = restore_folio(p->blocks, p->blocks_order);
	if (!r->maps[ino])
		return reject(r, "block map not preserved", ino);
	return gmfs_check_blocks(r, psb, folio_address(r->maps[ino]),
				 p->nr_blocks, ino);
}

/* Every inode must reach the root through its parents. */
static bool check_tree(struct gmfs_restore *r, const struct gmfs_pinode *inodes)
{
	unsigned int ino, cur, steps;

	for (ino = GMFS_ROOT_INO + 1; ino < GMFS_MAX_INODES; ino++) {
		if (!(inodes[ino].flags & GMFS_INODE_USED))
			continue;
		for (cur = ino, steps = 0; cur != GMFS_ROOT_INO; steps++) {
			if (steps >= GMFS_MAX_INODES)
				return reject(r, "directory loop", ino);
			cur = inodes[cur].parent;
		}
	}
	return true;
}

static const struct gmfs_pinode *sort_inodes;

/* Directory entries by parent and name. */
static int cmp_name(const struct gmfs_pinode *x, const struct gmfs_pinode *y)
{
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	return memcmp(x->name, y->name, x->name_len);
}

/* And then by inode number, so that the later of two duplicates is blamed. */
static int cmp_entry(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return cmp_name(&sort_inodes[x], &sort_inodes[y]) ?: (x > y) - (x < y);
}

/* No two entries of a directory have the same name. */
static bool check_unique(struct gmfs_restore *r, const struct gmfs_pinode *inodes)
{
	unsigned int ino, n = 0, i;

	for (ino = GMFS_ROOT_INO + 1; ino < GMFS_MAX_INODES; ino++)
		if (inodes[ino].flags & GMFS_INODE_USED)
			r->sorted[n++] = ino;
	sort_inodes = inodes;
	sort(r->sorted, n, sizeof(*r->sorted), cmp_entry, NULL);
	for (i = 1; i < n; i++)
		if (!cmp_name(&inodes[r->sorted[i - 1]], &inodes[r->sorted[i]]))
			return reject(r, "two entries of the same name", r->sorted[i]);
	return true;
}

/**
 * gmfs_check_psb - check the handed-over superblock
 * @r: the restore, which says why on failure
 * @psb: the superblock
 * @base: the carve-out the subtree names: physical address
 * @size: and size
 *
 * Return: true if this kernel understands the format and the superblock
 * describes the carve-out; false, with @r saying why, otherwise.
 */
VISIBLE_IF_KUNIT bool gmfs_check_psb(struct gmfs_restore *r,
				     const struct gmfs_psb *psb,
				     u64 base, u64 size)
{
	if (psb->magic != GMFS_MAGIC || psb->version != GMFS_VERSION ||
	    psb->block_shift != GMFS_BLOCK_SHIFT)
		return reject(r, "unknown superblock format", 0);
	if (psb->base != base || psb->size != size ||
	    psb->nr_blocks != size >> GMFS_BLOCK_SHIFT ||
	    psb->nr_blocks > U32_MAX)
		return reject(r, "superblock disagrees with the carve-out", 0);
	if (psb->nr_inodes != GMFS_MAX_INODES ||
	    psb->inode_table_order != get_order(GMFS_MAX_INODES *
						sizeof(struct gmfs_pinode)) ||
	    psb->bitmap_order != get_order(BITS_TO_LONGS(psb->nr_blocks) *
					   sizeof(long)))
		return reject(r, "bad table sizes", 0);
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(gmfs_check_psb);

/**
 * gmfs_check_inodes - check the handed-over inode table
 * @r: the restore: restores the block maps into @r->maps, collects the
 *	blocks files hold in @r->used, and says why on failure
 * @psb: the handed-over superblock, already checked
 * @inodes: the inode table, without the inodes of unlinked files
 *
 * Checks every field of every inode in use, that every inode reaches the
 * root directory through directories, and that no directory has two
 * entries of the same name.
 *
 * Return: true if the table can be used as it is.
 */
VISIBLE_IF_KUNIT bool gmfs_check_inodes(struct gmfs_restore *r,
					const struct gmfs_psb *psb,
					struct gmfs_pinode *inodes)
{
	unsigned int ino;

	if (!(inodes[GMFS_ROOT_INO].flags & GMFS_INODE_USED))
		return reject(r, "no root directory", GMFS_ROOT_INO);
	for (ino = GMFS_ROOT_INO; ino < GMFS_MAX_INODES; ino++)
		if ((inodes[ino].flags & GMFS_INODE_USED) &&
		    !check_inode(r, psb, inodes, ino))
			return false;
	return check_tree(r, inodes) && check_unique(r, inodes);
}
EXPORT_SYMBOL_IF_KUNIT(gmfs_check_inodes);

/**
 * gmfs_check_extents - check the ranges of the carve-out the subtree gives
 * @r: the restore, which receives them, or says why they are refused
 * @val: base and size of each range
 * @len: the length of @val in bytes
 *
 * Return: true if there are 1 to GMFS_MAX_EXTENTS ranges, 2 MiB aligned,
 * in order, apart, and over a span the block bitmap can cover.
 */
VISIBLE_IF_KUNIT bool gmfs_check_extents(struct gmfs_restore *r,
					 const u64 *val, int len)
{
	unsigned int i, n = len / (2 * sizeof(u64));

	if (len <= 0 || len % (2 * sizeof(u64)) || n > GMFS_MAX_EXTENTS)
		return reject(r, "bad carve-out ranges", 0);
	for (i = 0; i < n; i++) {
		u64 base = get_unaligned(&val[2 * i]);
		u64 size = get_unaligned(&val[2 * i + 1]);

		if (!size || !IS_ALIGNED(base | size, GMFS_BLOCK_SIZE) ||
		    base + size < base)
			return reject(r, "bad carve-out ranges", 0);
		/* Apart: touching ranges would have been one */
		if (i && base <= r->extents[i - 1].end + 1)
			return reject(r, "bad carve-out ranges", 0);
		r->extents[i] = (struct range){ base, base + size - 1 };
	}
	if (r->extents[n - 1].end + 1 - r->extents[0].start > GMFS_MAX_SPAN)
		return reject(r, "bad carve-out ranges", 0);
	r->nr_extents = n;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(gmfs_check_extents);

/* The subtree: where the superblock and the carve-out are. */
static bool check_fdt(struct gmfs_restore *r, u64 *psb)
{
	const void *fdt = folio_address(r->fdt);
	const char *compat;
	const u64 *val;
	int len;

	if (fdt_check_header(fdt) || fdt_totalsize(fdt) > folio_size(r->fdt))
		return reject(r, "bad subtree", 0);
	if (fdt_node_check_compatible(fdt, 0, GMFS_KHO_COMPATIBLE)) {
		compat = fdt_getprop(fdt, 0, "compatible", &len);
		pr_err("the handover is %.*s, this kernel reads %s only\n",
		       compat && len > 0 ? min(len, 32) : 7,
		       compat && len > 0 ? compat : "unknown",
		       GMFS_KHO_COMPATIBLE);
		return reject(r, "unknown handover version", 0);
	}
	val = fdt_getprop(fdt, 0, "superblock", &len);
	if (!val || len != sizeof(*val))
		return reject(r, "bad subtree", 0);
	*psb = get_unaligned(val);
	val = fdt_getprop(fdt, 0, "carveout", &len);
	if (!val)
		return reject(r, "bad subtree", 0);
	return gmfs_check_extents(r, val, len);
}

/**
 * gmfs_check_bad - check the list of bad blocks the subtree gives
 * @r: the restore, whose @r->bad receives them, or which says why not
 * @val: the block numbers, then GMFS_NO_BAD to the end
 * @len: the length of @val in bytes
 * @nr_blocks: blocks in the span of the carve-out
 *
 * Return: true if there are at most GMFS_MAX_BAD slots, the blocks in the
 * span, none of them twice or in a hole between its ranges, and nothing
 * but GMFS_NO_BAD after the first GMFS_NO_BAD.
 */
VISIBLE_IF_KUNIT bool gmfs_check_bad(struct gmfs_restore *r, const u32 *val,
				     int len, u64 nr_blocks)
{
	unsigned int i, n = len / sizeof(u32);
	bool end = false;
	u32 b;

	if (len < 0 || len % sizeof(u32) || n > GMFS_MAX_BAD)
		return reject(r, "bad list of bad blocks", 0);
	for (i = 0; i < n; i++) {
		b = get_unaligned(&val[i]);
		if (b == GMFS_NO_BAD) {
			end = true;
			continue;
		}
		if (end || b >= nr_blocks || test_bit(b, r->bad) ||
		    (r->holes && test_bit(b, r->holes)))
			return reject(r, "bad list of bad blocks", 0);
		__set_bit(b, r->bad);
	}
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(gmfs_check_bad);

static bool __init gmfs_restore_check(struct gmfs_restore *r)
{
	struct gmfs_pinode *inodes;
	struct gmfs_psb *psb;
	u64 psb_phys, base, size;
	const u32 *bad;
	unsigned int ino;
	int len;

	if (!check_fdt(r, &psb_phys))
		return false;
	if (gmfs_carveout_take(r->extents, r->nr_extents, true))
		return reject(r, "the carve-out was not handed over outside the direct map",
			      0);
	base = r->extents[0].start;
	size = r->extents[r->nr_extents - 1].end + 1 - base;
	r->psb = restore_folio(psb_phys, 0);
	if (!r->psb)
		return reject(r, "superblock not preserved", 0);
	psb = folio_address(r->psb);
	if (!gmfs_check_psb(r, psb, base, size))
		return false;
	r->inodes = restore_folio(psb->inode_table, psb->inode_table_order);
	r->bitmap = restore_folio(psb->bitmap, psb->bitmap_order);
	if (!r->inodes || !r->bitmap)
		return reject(r, "tables not preserved", 0);
	r->used = bitmap_zalloc(psb->nr_blocks, GFP_KERNEL);
	r->holes = bitmap_zalloc(psb->nr_blocks, GFP_KERNEL);
	r->bad = bitmap_zalloc(psb->nr_blocks, GFP_KERNEL);
	r->sorted = kvcalloc(GMFS_MAX_INODES, sizeof(*r->sorted), GFP_KERNEL);
	if (!r->used || !r->holes || !r->bad || !r->sorted)
		return reject(r, "out of memory", 0);
	gmfs_set_holes(r->holes, r->extents, r->nr_extents);
	/* None, from a kernel that did not handle memory failures */
	bad = fdt_getprop(folio_address(r->fdt), 0, "bad-blocks", &len);
	if (bad && !gmfs_check_bad(r, bad, len, psb->nr_blocks))
		return false;

	inodes = folio_address(r->inodes);
	/*
	 * Files unlinked before the kexec are dropped, blocks and all. Their
	 * block maps are taken back now, but freed only once the whole
	 * table has been accepted (gmfs_restore_install()).
	 */
	for (ino = 0; ino < GMFS_MAX_INODES; ino++) {
		struct gmfs_pinode *p = &inodes[ino];

		if (ino && !(p->flags & GMFS_INODE_ORPHAN))
			continue;
		if (ino && p->blocks && p->blocks_order <= MAX_PAGE_ORDER)
			r->maps[ino] = restore_folio(p->blocks, p->blocks_order);
		memset(p, 0, sizeof(*p));
	}
	return gmfs_check_inodes(r, psb, inodes);
}

static void gmfs_restore_install(struct gmfs_restore *r)
{
	struct gmfs_psb *psb = folio_address(r->psb);
	unsigned int ino, i;

	gmfs.psb = psb;
	gmfs.inodes = folio_address(r->inodes);
	gmfs.bitmap = folio_address(r->bitmap);
	gmfs.base = psb->base;
	gmfs.size = psb->size;
	gmfs.nr_blocks = psb->nr_blocks;
	gmfs.nr_extents = r->nr_extents;
	gmfs.capacity = 0;
	for (i = 0; i < r->nr_extents; i++) {
		gmfs.extents[i] = r->extents[i];
		gmfs.capacity += range_len(&r->extents[i]) >> GMFS_BLOCK_SHIFT;
	}
	/*
	 * The bitmap is what the files hold, the holes and the bad blocks,
	 * not what was handed over.
	 */
	gmfs.nr_bad = bitmap_weight(r->bad, psb->nr_blocks);
	gmfs.bad_free = bitmap_weight_andnot(r->bad, r->used, psb->nr_blocks);
	gmfs.free_blocks = gmfs.capacity - gmfs.bad_free -
			   bitmap_weight(r->used, psb->nr_blocks);
	bitmap_or(gmfs.bitmap, r->used, r->holes, psb->nr_blocks);
	bitmap_or(gmfs.bitmap, gmfs.bitmap, r->bad, psb->nr_blocks);
	gmfs.bad = r->bad;
	r->bad = NULL;
	gmfs.free_inodes = GMFS_MAX_INODES - 1;
	for (ino = GMFS_ROOT_INO; ino < GMFS_MAX_INODES; ino++) {
		if (gmfs.inodes[ino].flags) {
			gmfs.free_inodes--;
			gmfs.maps[ino] = r->maps[ino];
		} else if (r->maps[ino]) {
			/* The block map of a dropped orphan. */
			folio_put(r->maps[ino]);
		}
		r->maps[ino] = NULL;
	}
	r->psb = NULL;
	r->inodes = NULL;
	r->bitmap = NULL;
}

static void gmfs_restore_cleanup(struct gmfs_restore *r)
{
	unsigned int ino;

	/*
	 * What was taken back from a rejected handover stays allocated: a
	 * damaged table can name folios that are not ours, and leaking a
	 * few pages of metadata is the safe failure.
	 */
	if (r->why)
		goto out;
	for (ino = 0; ino < GMFS_MAX_INODES; ino++)
		if (r->maps[ino])
			folio_put(r->maps[ino]);
	if (r->bitmap)
		folio_put(r->bitmap);
	if (r->inodes)
		folio_put(r->inodes);
	if (r->psb)
		folio_put(r->psb);
	if (r->fdt)
		folio_put(r->fdt);
out:
	kvfree(r->sorted);
	bitmap_free(r->bad);
	bitmap_free(r->holes);
	bitmap_free(r->used);
	kfree(r);
}

/**
 * gmfs_kho_restore - take guestmemfs back from the previous kernel
 *
 * Return: 0 if the handed-over store is in use; -ENOENT if there was none;
 * -EUCLEAN if it was rejected, with gmfs.broken saying why.
 */
int __init gmfs_kho_restore(void)
{
	u64 t0 = local_clock();
	struct gmfs_restore *r;
	phys_addr_t phys;
	int err = 0;

	if (kho_retrieve_subtree(GMFS_KHO_NAME, &phys))
		return -ENOENT;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r) {
		gmfs.broken = "out of memory";
		return -EUCLEAN;
	}
	mutex_lock(&gmfs.lock);
	r->fdt = restore_folio(phys, 0);
	if (!r->fdt)
		reject(r, "subtree not preserved", 0);
	else if (gmfs_restore_check(r))
		gmfs_restore_install(r);

	if (r->why) {
		pr_err("rejecting the handed-over metadata: %s (inode %u); the carve-out stays reserved\n",
		       r->why, r->ino);
		gmfs.broken = r->why;
		err = -EUCLEAN;
	} else {
		pr_info("restored from the handover: %lu MiB in %u ranges, %u inodes, %lu of %lu blocks in use, in %llu us\n",
			gmfs.capacity << GMFS_BLOCK_SHIFT >> 20, gmfs.nr_extents,
			GMFS_MAX_INODES - 1 - gmfs.free_inodes,
			gmfs.capacity - gmfs.free_blocks, gmfs.capacity,
			div_u64(local_clock() - t0, NSEC_PER_USEC));
	}
	mutex_unlock(&gmfs.lock);
	gmfs_restore_cleanup(r);
	return err;
}
