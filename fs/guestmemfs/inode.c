// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs inodes and directories.
 *
 * As in ramfs, the dentries of a mount stay in the dcache and directories
 * are read from it; unlike in ramfs, every inode and every name is also
 * recorded in the store, which a mount is built from and which survives
 * kexec. The VFS holds the directory and inode locks; the store lock is
 * taken inside them.
 */

#include <linux/fs.h>
#include <linux/io.h>
#include <linux/pagemap.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/stat.h>

#include "guestmemfs.h"

static void gmfs_fill_inode(struct inode *inode, const struct gmfs_pinode *p)
{
	inode->i_mode = p->mode;
	i_uid_write(inode, p->uid);
	i_gid_write(inode, p->gid);
	inode->i_generation = p->generation;
	inode_set_atime(inode, p->atime_sec, p->atime_nsec);
	inode_set_mtime(inode, p->mtime_sec, p->mtime_nsec);
	inode_set_ctime(inode, p->ctime_sec, p->ctime_nsec);
	if (S_ISDIR(p->mode)) {
		inode->i_op = &gmfs_dir_inode_operations;
		inode->i_fop = &simple_dir_operations;
		set_nlink(inode, 2);
	} else {
		inode->i_op = &gmfs_file_inode_operations;
		inode->i_fop = &gmfs_file_operations;
		i_size_write(inode, p->size);
		inode->i_blocks = p->nr_blocks << (GMFS_BLOCK_SHIFT - 9);
	}
}

/**
 * gmfs_iget - the VFS inode of a store inode
 * @sb: the superblock
 * @ino: inode number
 *
 * Return: the inode, or an ERR_PTR().
 */
struct inode *gmfs_iget(struct super_block *sb, unsigned int ino)
{
	struct inode *inode = iget_locked(sb, ino);

	if (!inode)
		return ERR_PTR(-ENOMEM);
	if (inode->i_state & I_NEW) {
		gmfs_fill_inode(inode, gmfs_pinode(ino));
		unlock_new_inode(inode);
	}
	return inode;
}

/* Record a directory's times after a change of its entries. */
static void gmfs_dir_changed(struct inode *dir)
{
	inode_set_mtime_to_ts(dir, inode_set_ctime_current(dir));
	gmfs_store_sync_attrs(dir);
}

static int gmfs_mknod(struct mnt_idmap *idmap, struct inode *dir,
		      struct dentry *dentry, umode_t mode)
{
	struct inode *inode;
	int ino, err;

	mutex_lock(&gmfs.lock);
	ino = gmfs.frozen ? -EBUSY :
	      gmfs_store_alloc_inode(mode, current_fsuid(), current_fsgid(),
				     dir->i_ino, &dentry->d_name);
	mutex_unlock(&gmfs.lock);
	if (ino < 0)
		return ino;

	/*
	 * Not under the store lock: the inode of an earlier file with this
	 * number may still be on its way out, in gmfs_evict_inode().
	 */
	inode = iget_locked(dir->i_sb, ino);
	if (!inode) {
		mutex_lock(&gmfs.lock);
		gmfs_store_free_inode(ino);
		mutex_unlock(&gmfs.lock);
		return -ENOMEM;
	}
	gmfs_fill_inode(inode, gmfs_pinode(ino));
	/* The owner and the setgid rules of the VFS, then recorded. */
	inode_init_owner(idmap, inode, dir, mode);
	simple_inode_init_ts(inode);
	/* For an LSM to label it; there are no xattrs to keep a label in */
	err = security_inode_init_security(inode, dir, &dentry->d_name, NULL,
					   NULL);
	if (err) {
		/* Evicted without a link: its store inode is freed */
		clear_nlink(inode);
		iget_failed(inode);
		return err;
	}

	mutex_lock(&gmfs.lock);
	gmfs_store_sync_attrs(inode);
	if (S_ISDIR(mode))
		inc_nlink(dir);
	gmfs_dir_changed(dir);
	mutex_unlock(&gmfs.lock);

	/* Unlocked only once a lookup can find it by its name */
	d_instantiate_new(dentry, inode);
	dget(dentry);	/* pinned in the dcache, as in ramfs */
	return 0;
}

static int gmfs_create(struct mnt_idmap *idmap, struct inode *dir,
		       struct dentry *dentry, umode_t mode, bool excl)
{
	return gmfs_mknod(idmap, dir, dentry, S_IFREG | (mode & 07777));
}

static int gmfs_mkdir(struct mnt_idmap *idmap, struct inode *dir,
		      struct dentry *dentry, umode_t mode)
{
	return gmfs_mknod(idmap, dir, dentry, S_IFDIR | (mode & 07777));
}

/*
 * An unlinked inode may still be open or mapped: it stays in the store,
 * marked orphan, until it is evicted.
 */
static void gmfs_orphan(struct inode *inode)
{
	struct gmfs_pinode *p = gmfs_pinode(inode->i_ino);

	if (inode->i_nlink)
		return;
	p->flags |= GMFS_INODE_ORPHAN;
	p->parent = 0;
	p->name_len = 0;
}

static int gmfs_unlink(struct inode *dir, struct dentry *dentry)
{
	int err;

	mutex_lock(&gmfs.lock);
	/* A device handed over by the last kernel may still reach its memory */
	if (gmfs.frozen || gmfs_pin_keeps_name(d_inode(dentry)->i_ino))
		err = -EBUSY;
	else
		err = simple_unlink(dir, dentry);
	if (!err) {
		gmfs_orphan(d_inode(dentry));
		gmfs_dir_changed(dir);
	}
	mutex_unlock(&gmfs.lock);
	return err;
}

static int gmfs_rmdir(struct inode *dir, struct dentry *dentry)
{
	int err;

	mutex_lock(&gmfs.lock);
	err = gmfs.frozen ? -EBUSY : simple_rmdir(dir, dentry);
	if (!err) {
		gmfs_orphan(d_inode(dentry));
		gmfs_dir_changed(dir);
	}
	mutex_unlock(&gmfs.lock);
	return err;
}

static int gmfs_rename(struct mnt_idmap *idmap, struct inode *old_dir,
		       struct dentry *old_dentry, struct inode *new_dir,
		       struct dentry *new_dentry, unsigned int flags)
{
	struct inode *inode = d_inode(old_dentry);
	struct inode *target = d_inode(new_dentry);
	int err;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;

	mutex_lock(&gmfs.lock);
	if (gmfs.frozen || (target && !(flags & RENAME_EXCHANGE) &&
			    gmfs_pin_keeps_name(target->i_ino))) {
		err = -EBUSY;
		goto out;
	}
	err = simple_rename(idmap, old_dir, old_dentry, new_dir, new_dentry,
			    flags);
	if (err)
		goto out;
	/*
	 * Record where the inodes go: the VFS moves (or swaps) the dentries
	 * only after this returns, so each name is still the one given.
	 */
	gmfs_store_set_name(inode->i_ino, new_dir->i_ino, &new_dentry->d_name);
	if (flags & RENAME_EXCHANGE) {
		gmfs_store_set_name(target->i_ino, old_dir->i_ino,
				    &old_dentry->d_name);
		gmfs_store_sync_attrs(target);
	} else if (target) {
		gmfs_orphan(target);
	}
	gmfs_store_sync_attrs(inode);
	gmfs_dir_changed(old_dir);
	if (new_dir != old_dir)
		gmfs_dir_changed(new_dir);
out:
	mutex_unlock(&gmfs.lock);
	return err;
}

/*
 * Clear a file's last block from byte @from of the file to the block's end.
 * Bytes past the end of a file can hold data: what a shrink kept of its last
 * block, or what was written through a mapping of a last, partial page.
 */
static int gmfs_clear_tail(struct inode *inode, loff_t from)
{
	size_t offset = from & (GMFS_BLOCK_SIZE - 1);
	u32 *map = gmfs_block_map(inode->i_ino);

	if (!offset)
		return 0;
	return gmfs_zero_block(map[from >> GMFS_BLOCK_SHIFT], offset);
}

/*
 * Shrinking first stops new faults past the new size and zaps what was
 * mapped there, and only then frees blocks: an old mapping gets SIGBUS,
 * never memory that was given to another file.
 */
static int gmfs_shrink(struct inode *inode, loff_t size)
{
	struct address_space *mapping = inode->i_mapping;
	loff_t old = i_size_read(inode);
	int err;

	filemap_invalidate_lock(mapping);
	/* A device may still reach what a pin holds. */
	err = gmfs_pin_check_shrink(inode, size);
	if (err)
		goto out;
	i_size_write(inode, size);
	/*
	 * Zap from the 1 GiB boundary below the new size: a range that
	 * starts inside a PUD entry could only be split under the mmap_lock
	 * of each mm, which is not held here. Whatever is zapped below the
	 * new size is faulted again.
	 */
	unmap_mapping_range(mapping, round_down(size, PUD_SIZE), 0, 1);
	err = gmfs_store_shrink(inode->i_ino, size);
	if (err) {
		i_size_write(inode, old);
		goto out;
	}
	/* A new mapping of the last page shows zeros past the end. */
	gmfs_clear_tail(inode, size);
out:
	filemap_invalidate_unlock(mapping);
	return err;
}

/*
 * Growing takes and clears the new blocks with only the inode lock held:
 * faults on what the file has go on meanwhile, however long the clearing.
 * The blocks are added under the invalidate_lock, after what lay past the
 * old end in the last block is cleared: the file reads zeros wherever it
 * grew, whatever it held there before.
 */
static int gmfs_grow_to(struct inode *inode, loff_t size)
{
	struct address_space *mapping = inode->i_mapping;
	struct gmfs_grow g;
	int err;

	err = gmfs_store_grow(&g, inode->i_ino, size);
	if (err)
		return err;
	filemap_invalidate_lock(mapping);
	err = gmfs_store_grow_commit(&g, gmfs_clear_tail(inode,
							 i_size_read(inode)));
	if (!err)
		i_size_write(inode, size);
	filemap_invalidate_unlock(mapping);
	return err;
}

/* Change a file's size; the caller holds the inode lock. */
static int gmfs_setsize(struct inode *inode, loff_t size)
{
	loff_t old = i_size_read(inode);
	int err;

	if (size == old)
		return 0;
	err = size < old ? gmfs_shrink(inode, size) : gmfs_grow_to(inode, size);
	if (!err)
		inode->i_blocks = gmfs_pinode(inode->i_ino)->nr_blocks <<
				  (GMFS_BLOCK_SHIFT - 9);
	return err;
}

/**
 * gmfs_grow - make a file at least @size bytes, for fallocate()
 * @inode: the file, locked
 * @size: the size it must have at least
 *
 * Return: 0 on success, or the error of the resize.
 */
int gmfs_grow(struct inode *inode, loff_t size)
{
	int err;

	if (size <= i_size_read(inode))
		return 0;
	err = inode_newsize_ok(inode, size) ?: gmfs_setsize(inode, size);
	if (err)
		return err;
	mutex_lock(&gmfs.lock);
	inode_set_mtime_to_ts(inode, inode_set_ctime_current(inode));
	gmfs_store_sync_attrs(inode);
	mutex_unlock(&gmfs.lock);
	return 0;
}

static int gmfs_setattr(struct mnt_idmap *idmap, struct dentry *dentry,
			struct iattr *attr)
{
	struct inode *inode = d_inode(dentry);
	int err;

	err = setattr_prepare(idmap, dentry, attr);
	if (err)
		return err;
	/* Nothing may change once the metadata is handed over. */
	if (READ_ONCE(gmfs.frozen))
		return -EBUSY;
	if (attr->ia_valid & ATTR_SIZE) {
		if (!S_ISREG(inode->i_mode))
			return -EINVAL;
		err = gmfs_setsize(inode, attr->ia_size);
		if (err)
			return err;
	}
	mutex_lock(&gmfs.lock);
	/*
	 * A size change that went through is done: its times and the rest
	 * must be recorded, even if a finalize came in since.
	 */
	if (gmfs.frozen && !(attr->ia_valid & ATTR_SIZE)) {
		err = -EBUSY;
	} else {
		setattr_copy(idmap, inode, attr);
		gmfs_store_sync_attrs(inode);
	}
	mutex_unlock(&gmfs.lock);
	return err;
}

/*
 * Access and modification times are recorded as they change, without the
 * store lock: mmap() (file_accessed()) must not wait behind it.
 */
static int gmfs_update_time(struct inode *inode, int flags)
{
	generic_update_time(inode, flags);
	gmfs_store_sync_attrs(inode);
	return 0;
}

static int gmfs_getattr(struct mnt_idmap *idmap, const struct path *path,
			struct kstat *stat, u32 request_mask,
			unsigned int query_flags)
{
	generic_fillattr(idmap, request_mask, d_inode(path->dentry), stat);
	stat->blksize = GMFS_BLOCK_SIZE;
	return 0;
}

const struct inode_operations gmfs_dir_inode_operations = {
	.lookup		= simple_lookup,
	.create		= gmfs_create,
	.mkdir		= gmfs_mkdir,
	.unlink		= gmfs_unlink,
	.rmdir		= gmfs_rmdir,
	.rename		= gmfs_rename,
	.setattr	= gmfs_setattr,
	.getattr	= gmfs_getattr,
	.update_time	= gmfs_update_time,
};

const struct inode_operations gmfs_file_inode_operations = {
	.setattr	= gmfs_setattr,
	.getattr	= gmfs_getattr,
	.update_time	= gmfs_update_time,
};
