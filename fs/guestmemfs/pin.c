// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs pins: ranges of files held for DMA.
 *
 * A device reaches guest RAM by physical address, through an IOMMU, where
 * no zap of the file's mappings can take it away. Whoever programs an
 * IOMMU with a file's memory therefore pins the range first:
 *
 * - the pin holds the file, so the blocks of a file that is unlinked and
 *   closed stay the file's (and count as used) until the last pin of it
 *   goes, and the filesystem cannot be unmounted meanwhile;
 * - shrinking the file below the end of a pinned range fails with -EBUSY,
 *   so no block a device may reach is ever freed and given to another
 *   file;
 * - the pin is recorded in the store by inode number, with the file's
 *   generation, the range and an owner cookie, rather than only in the VFS:
 *   that is what a handover carries for pins that outlive the kernel (an
 *   IOMMU domain that keeps translating across kexec). The next kernel's
 *   owner pins the same range again by inode number at boot, before any
 *   mount, and such a pin keeps the file's name instead of an open file.
 *
 * Pins are taken with the file's invalidate_lock held shared, and shrinks
 * check them with it held exclusively: a pin cannot come in between the
 * check and the freeing of the blocks.
 */

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/guestmemfs.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/slab.h>

#include "guestmemfs.h"

/**
 * is_guestmemfs_file - is this an open guestmemfs regular file?
 * @file: the file
 *
 * Return: true for a guestmemfs regular file.
 */
bool is_guestmemfs_file(const struct file *file)
{
	return file && file->f_op == &gmfs_file_operations;
}
EXPORT_SYMBOL_GPL(is_guestmemfs_file);

/*
 * The physical runs of bytes [@start, @start + @len) of a file: counted,
 * and written to @runs if it is not NULL.
 */
static unsigned int gmfs_pin_runs(const u32 *map, loff_t start, u64 len,
				  struct guestmemfs_run *runs)
{
	unsigned long b = start >> GMFS_BLOCK_SHIFT;
	u64 offset = 0, skip = start & (GMFS_BLOCK_SIZE - 1);
	phys_addr_t run_end = 0;
	unsigned int nr = 0;

	for (; offset < len; b++) {
		u64 piece = min_t(u64, GMFS_BLOCK_SIZE - skip, len - offset);
		phys_addr_t phys = gmfs_block_phys(map[b]) + skip;

		if (nr && phys == run_end) {
			if (runs)
				runs[nr - 1].len += piece;
		} else {
			if (runs) {
				runs[nr].offset = offset;
				runs[nr].phys = phys;
				runs[nr].len = piece;
			}
			nr++;
		}
		run_end = phys + piece;
		offset += piece;
		skip = 0;
	}
	return nr;
}

/* The end of the furthest pinned range of a file, 0 if none. */
static loff_t gmfs_pinned_end(unsigned int ino)
{
	struct guestmemfs_pin *pin;
	loff_t end = 0;

	lockdep_assert_held(&gmfs.lock);
	hlist_for_each_entry(pin, &gmfs.pins[ino], node)
		end = max_t(loff_t, end, pin->start + pin->len);
	return end;
}

/**
 * gmfs_pin_check_shrink - may a file shrink to @size?
 * @inode: the file, its invalidate_lock held exclusively
 * @size: the new size
 *
 * Return: 0, or -EBUSY if a pinned range reaches past @size.
 */
int gmfs_pin_check_shrink(struct inode *inode, loff_t size)
{
	loff_t end;

	lockdep_assert_held_write(&inode->i_mapping->invalidate_lock);
	mutex_lock(&gmfs.lock);
	end = gmfs_pinned_end(inode->i_ino);
	mutex_unlock(&gmfs.lock);
	return end > size ? -EBUSY : 0;
}

/* Does bytes [@start, @start + @len) of the file with @map hold a bad block? */
static bool gmfs_range_bad(const u32 *map, loff_t start, u64 len)
{
	unsigned long i, end = DIV_ROUND_UP(start + len, GMFS_BLOCK_SIZE);

	for (i = start >> GMFS_BLOCK_SHIFT; i < end; i++)
		if (gmfs_block_bad(map[i]))
			return true;
	return false;
}

/* A pin of bytes [@start, @start + @len) of the file with block map @map */
static struct guestmemfs_pin *gmfs_pin_alloc(const u32 *map, loff_t start,
					     u64 len)
{
	struct guestmemfs_pin *pin;
	unsigned int nr;

	nr = gmfs_pin_runs(map, start, len, NULL);
	pin = kvzalloc(struct_size(pin, runs, nr), GFP_KERNEL_ACCOUNT);
	if (!pin)
		return ERR_PTR(-ENOMEM);
	pin->nr_runs = nr;
	if (WARN_ON_ONCE(gmfs_pin_runs(map, start, len, pin->runs) != nr)) {
		kvfree(pin);
		return ERR_PTR(-EINVAL);
	}
	pin->start = start;
	pin->len = len;
	return pin;
}

/* guestmemfs_pin(), and with @check_bad false guestmemfs_pin_dup() */
static struct guestmemfs_pin *__guestmemfs_pin(struct file *file,
					       loff_t start, u64 len, u64 owner,
					       bool check_bad)
{
	struct inode *inode;
	struct guestmemfs_pin *pin;
	u64 end;

	if (!is_guestmemfs_file(file) || start < 0 || !len ||
	    !PAGE_ALIGNED(start) || !PAGE_ALIGNED(len) ||
	    check_add_overflow((u64)start, len, &end) || end > MAX_LFS_FILESIZE)
		return ERR_PTR(-EINVAL);
	if (!(file->f_mode & FMODE_WRITE))
		return ERR_PTR(-EPERM);
	inode = file_inode(file);

	filemap_invalidate_lock_shared(inode->i_mapping);
	if (end > PAGE_ALIGN(i_size_read(inode))) {
		pin = ERR_PTR(-EINVAL);
		goto out;
	}
	/*
	 * Stable while the invalidate_lock is held. A device must not be
	 * given memory that failed; a block that fails later stays pinned.
	 */
	if (check_bad &&
	    gmfs_range_bad(gmfs_block_map(inode->i_ino), start, len)) {
		pin = ERR_PTR(-EHWPOISON);
		goto out;
	}
	pin = gmfs_pin_alloc(gmfs_block_map(inode->i_ino), start, len);
	if (IS_ERR(pin))
		goto out;
	pin->owner = owner;
	pin->ino = inode->i_ino;
	pin->generation = inode->i_generation;
	/*
	 * The file keeps the inode, the mount and so the superblock; its
	 * last fput(), after an unlink, frees the blocks.
	 */
	pin->file = get_file(file);

	mutex_lock(&gmfs.lock);
	hlist_add_head(&pin->node, &gmfs.pins[inode->i_ino]);
	mutex_unlock(&gmfs.lock);
out:
	filemap_invalidate_unlock_shared(inode->i_mapping);
	return pin;
}

/**
 * guestmemfs_pin - pin a range of a guestmemfs file and get its memory
 * @file: a guestmemfs regular file, open for writing
 * @start: first byte of the range, page aligned
 * @len: length of the range in bytes, page aligned, not zero
 * @owner: a cookie of the caller's, kept with the pin
 *
 * The range must lie within the file (its last page may be the partial
 * page at the end of the file). Until guestmemfs_unpin(), the file cannot
 * shrink below the end of the range and its blocks stay allocated to it,
 * even if it is unlinked and closed: the pin holds @file. A pin restricts
 * what the file's writers can do, so it needs a descriptor open for
 * writing, whatever the caller then lets a device do with the memory.
 * Takes the file's invalidate_lock, so it may be called with the mmap_lock
 * of a process that maps the file held, but not from a fault.
 *
 * Return: the pin, with the physical runs behind the range, or an
 * ERR_PTR(): -EINVAL for a file that is not a guestmemfs regular file or a
 * range that is unaligned, empty or past the end of the file; -EPERM for a
 * file not open for writing; -EHWPOISON for a range that holds memory that
 * failed; -ENOMEM.
 */
struct guestmemfs_pin *guestmemfs_pin(struct file *file, loff_t start,
				      u64 len, u64 owner)
{
	return __guestmemfs_pin(file, start, len, owner, true);
}
EXPORT_SYMBOL_GPL(guestmemfs_pin);

/**
 * guestmemfs_pin_dup - pin a part of a pinned range again, for a new owner
 * @pin: a pin
 * @offset: first byte of the part, from the start of @pin's range, page
 *	aligned
 * @len: its length in bytes, page aligned, within @pin's range
 * @owner: the new pin's owner cookie
 *
 * For a user that takes over memory someone else pinned and must keep it
 * pinned when the other lets go: an IOMMU domain preserved for a live
 * update, say, which outlives the mappings it was made of.
 *
 * Return: the new pin, or an ERR_PTR() as guestmemfs_pin() gives;
 * -EINVAL for a @pin taken by inode number, which has no file to pin from.
 */
struct guestmemfs_pin *guestmemfs_pin_dup(const struct guestmemfs_pin *pin,
					  u64 offset, u64 len, u64 owner)
{
	if (offset > pin->len || len > pin->len - offset)
		return ERR_PTR(-EINVAL);
	/* A device reaches that memory already, failed or not */
	return __guestmemfs_pin(pin->file, pin->start + offset, len, owner,
				false);
}
EXPORT_SYMBOL_GPL(guestmemfs_pin_dup);

/**
 * guestmemfs_pin_ino - pin a range of a file by its inode number, at boot
 * @ino: the file's inode number in the store
 * @generation: the file's generation, to tell it from a reused number
 * @start: first byte of the range, page aligned
 * @len: length of the range in bytes, page aligned, not zero
 * @owner: the caller's cookie, kept with the pin
 *
 * For a kernel component that takes over, after a live update, memory a
 * device still reaches: an IOMMU domain handed over by the previous
 * kernel, which names guest RAM by inode number and generation. There is
 * no open file then, nor a mount: guestmemfs must not be mounted (at boot,
 * before the first mount, or between mounts), so that no truncate runs
 * against the pin. Such a pin keeps the file's last
 * name: unlinking the file, or renaming another file over it, fails with
 * -EBUSY until guestmemfs_unpin(). Shrinking it is refused as for any pin.
 *
 * Return: the pin, as guestmemfs_pin() gives it, or an ERR_PTR(): -ENOENT
 * for no such regular file with that generation; -EINVAL for a range that
 * is unaligned, empty or past the end of the file; -EBUSY if guestmemfs is
 * mounted; -ENODEV without a store; -ENOMEM.
 */
struct guestmemfs_pin *guestmemfs_pin_ino(unsigned int ino, u32 generation,
					  loff_t start, u64 len, u64 owner)
{
	struct guestmemfs_pin *pin;
	struct gmfs_pinode *p;
	u64 end;

	if (start < 0 || !len || !PAGE_ALIGNED(start) || !PAGE_ALIGNED(len) ||
	    check_add_overflow((u64)start, len, &end) || end > MAX_LFS_FILESIZE)
		return ERR_PTR(-EINVAL);

	mutex_lock(&gmfs.lock);
	if (!gmfs.inodes || gmfs.broken) {
		pin = ERR_PTR(-ENODEV);
		goto out;
	}
	if (READ_ONCE(gmfs.sb)) {
		pin = ERR_PTR(-EBUSY);
		goto out;
	}
	p = ino < GMFS_MAX_INODES ? gmfs_pinode(ino) : NULL;
	if (!p || !(p->flags & GMFS_INODE_USED) ||
	    (p->flags & GMFS_INODE_ORPHAN) || !S_ISREG(p->mode) ||
	    p->generation != generation) {
		pin = ERR_PTR(-ENOENT);
		goto out;
	}
	if (end > PAGE_ALIGN(p->size)) {
		pin = ERR_PTR(-EINVAL);
		goto out;
	}
	pin = gmfs_pin_alloc(gmfs_block_map(ino), start, len);
	if (IS_ERR(pin))
		goto out;
	pin->owner = owner;
	pin->ino = ino;
	pin->generation = generation;
	hlist_add_head(&pin->node, &gmfs.pins[ino]);
out:
	mutex_unlock(&gmfs.lock);
	return pin;
}
EXPORT_SYMBOL_GPL(guestmemfs_pin_ino);

/**
 * gmfs_pin_keeps_name - does a pin taken by inode number hold a file?
 * @ino: the file's inode number
 *
 * Called under gmfs.lock by whatever would take the file's last name.
 *
 * Return: true if the name must stay: guestmemfs_pin_ino() pinned it.
 */
bool gmfs_pin_keeps_name(unsigned int ino)
{
	struct guestmemfs_pin *pin;

	lockdep_assert_held(&gmfs.lock);
	hlist_for_each_entry(pin, &gmfs.pins[ino], node)
		if (!pin->file)
			return true;
	return false;
}

/**
 * guestmemfs_unpin - release a pin
 * @pin: what guestmemfs_pin(), guestmemfs_pin_dup() or guestmemfs_pin_ino()
 *	returned
 *
 * The caller must no longer let any device reach the memory. If the pin
 * held the last reference to an unlinked file, its blocks are freed when
 * the file is, by fput()'s deferred work: not under the caller's locks. A
 * pin taken by inode number holds no file: its release only lets the file
 * be unlinked again.
 */
void guestmemfs_unpin(struct guestmemfs_pin *pin)
{
	mutex_lock(&gmfs.lock);
	hlist_del(&pin->node);
	mutex_unlock(&gmfs.lock);
	/* A pin taken by inode number holds the file by its name instead */
	if (pin->file)
		fput(pin->file);
	kvfree(pin);
}
EXPORT_SYMBOL_GPL(guestmemfs_unpin);

/**
 * guestmemfs_pin_run - the run of a pinned range that holds a byte
 * @pin: the pin
 * @offset: the byte, from the start of the pinned range
 *
 * Return: the run, or NULL if @offset is past the range. The byte's
 * physical address is the run's @phys plus @offset less the run's @offset.
 */
const struct guestmemfs_run *
guestmemfs_pin_run(const struct guestmemfs_pin *pin, u64 offset)
{
	unsigned int lo = 0, hi = pin->nr_runs;

	if (offset >= pin->len)
		return NULL;
	/* The last run that starts at or before @offset */
	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (pin->runs[mid].offset <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return &pin->runs[lo];
}
EXPORT_SYMBOL_GPL(guestmemfs_pin_run);
