// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs: an in-memory filesystem for guest RAM that survives kexec.
 *
 * There is one filesystem per carve-out, and it outlives its mounts: a
 * mount builds its dentries from the store, unmounting drops them, the
 * files and their data stay. Only the initial user namespace's
 * CAP_SYS_ADMIN can mount it: it is a global pool of guest memory.
 */

#define pr_fmt(fmt) "guestmemfs: " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/init.h>
#include <linux/magic.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/stringhash.h>
#include <linux/suspend.h>

#include "guestmemfs.h"

static int gmfs_statfs(struct dentry *dentry, struct kstatfs *buf)
{
	buf->f_type = GUESTMEMFS_MAGIC;
	buf->f_bsize = GMFS_BLOCK_SIZE;
	buf->f_frsize = GMFS_BLOCK_SIZE;
	buf->f_namelen = GMFS_NAME_MAX;
	mutex_lock(&gmfs.lock);
	buf->f_blocks = gmfs.capacity - gmfs.bad_free;
	buf->f_bfree = gmfs.free_blocks;
	buf->f_bavail = gmfs.free_blocks;
	buf->f_files = GMFS_MAX_INODES - 1;
	buf->f_ffree = gmfs.free_inodes;
	mutex_unlock(&gmfs.lock);
	return 0;
}

static void gmfs_evict_inode(struct inode *inode)
{
	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (inode->i_nlink)
		return;
	/* The last user of an unlinked inode is gone. */
	mutex_lock(&gmfs.lock);
	if (gmfs.frozen)
		gmfs_pinode(inode->i_ino)->flags |= GMFS_INODE_FREE_ON_THAW;
	else
		gmfs_store_free_inode(inode->i_ino);
	mutex_unlock(&gmfs.lock);
}

static const struct super_operations gmfs_super_ops = {
	.statfs		= gmfs_statfs,
	.evict_inode	= gmfs_evict_inode,
	.drop_inode	= generic_delete_inode,
};

/*
 * Build the dentries of the whole tree from the store, parents first.
 * The child lists are built once, so this is linear in the inodes.
 */
static int gmfs_build_tree(struct super_block *sb)
{
	unsigned int *child, *next, ino;
	struct dentry **dentry;
	unsigned int *queue, head = 0, tail = 0;
	int err = 0;

	child = kvcalloc(GMFS_MAX_INODES, sizeof(*child), GFP_KERNEL);
	next = kvcalloc(GMFS_MAX_INODES, sizeof(*next), GFP_KERNEL);
	queue = kvcalloc(GMFS_MAX_INODES, sizeof(*queue), GFP_KERNEL);
	dentry = kvcalloc(GMFS_MAX_INODES, sizeof(*dentry), GFP_KERNEL);
	if (!child || !next || !queue || !dentry) {
		err = -ENOMEM;
		goto out;
	}

	for (ino = GMFS_ROOT_INO + 1; ino < GMFS_MAX_INODES; ino++) {
		const struct gmfs_pinode *p = gmfs_pinode(ino);

		if ((p->flags & GMFS_INODE_USED) && !(p->flags & GMFS_INODE_ORPHAN)) {
			next[ino] = child[p->parent];
			child[p->parent] = ino;
		}
	}

	dentry[GMFS_ROOT_INO] = sb->s_root;
	queue[tail++] = GMFS_ROOT_INO;
	while (head < tail && !err) {
		unsigned int dir = queue[head++];
		struct inode *dir_inode = d_inode(dentry[dir]);

		for (ino = child[dir]; ino; ino = next[ino]) {
			const struct gmfs_pinode *p = gmfs_pinode(ino);
			struct qstr name = QSTR_INIT(p->name, p->name_len);
			struct inode *inode;
			struct dentry *d;

			name.hash = full_name_hash(dentry[dir], name.name, name.len);
			d = d_alloc(dentry[dir], &name);
			if (!d) {
				err = -ENOMEM;
				break;
			}
			inode = gmfs_iget(sb, ino);
			if (IS_ERR(inode)) {
				dput(d);
				err = PTR_ERR(inode);
				break;
			}
			/* The reference from d_alloc() pins it, as in ramfs. */
			d_add(d, inode);
			dentry[ino] = d;
			if (S_ISDIR(p->mode)) {
				inc_nlink(dir_inode);
				queue[tail++] = ino;
			}
		}
	}
out:
	kvfree(dentry);
	kvfree(queue);
	kvfree(next);
	kvfree(child);
	return err;
}

static int gmfs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct inode *root;
	int err;

	if (!gmfs.psb)
		return invalfc(fc, "no carve-out: boot with guestmemfs=SIZE");
	if (gmfs.broken) {
		errorfc(fc, "the handed-over metadata was rejected at boot: %s",
			gmfs.broken);
		return -EUCLEAN;
	}

	sb->s_maxbytes = (loff_t)GMFS_MAX_FILE_BLOCKS << GMFS_BLOCK_SHIFT;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = GUESTMEMFS_MAGIC;
	sb->s_op = &gmfs_super_ops;
	sb->s_time_gran = 1;

	root = gmfs_iget(sb, GMFS_ROOT_INO);
	if (IS_ERR(root))
		return PTR_ERR(root);
	sb->s_root = d_make_root(root);
	if (!sb->s_root)
		return -ENOMEM;
	err = gmfs_build_tree(sb);
	if (err)
		return err;
	/* Where a memory failure finds the inodes of mapped files */
	mutex_lock(&gmfs.lock);
	gmfs.sb = sb;
	mutex_unlock(&gmfs.lock);
	return 0;
}

static int gmfs_get_tree(struct fs_context *fc)
{
	return get_tree_single(fc, gmfs_fill_super);
}

static const struct fs_context_operations gmfs_context_ops = {
	.get_tree	= gmfs_get_tree,
};

static int gmfs_init_fs_context(struct fs_context *fc)
{
	fc->ops = &gmfs_context_ops;
	return 0;
}

static void gmfs_kill_sb(struct super_block *sb)
{
	mutex_lock(&gmfs.lock);
	gmfs.sb = NULL;
	mutex_unlock(&gmfs.lock);
	kill_litter_super(sb);
}

static struct file_system_type gmfs_fs_type = {
	.owner			= THIS_MODULE,
	.name			= "guestmemfs",
	.init_fs_context	= gmfs_init_fs_context,
	.kill_sb		= gmfs_kill_sb,
	/* No FS_USERNS_MOUNT: the carve-out is a global pool. */
};

/*
 * A hibernation image holds the memory the kernel manages, and not the
 * carve-out: guests would resume with whatever it holds by then, after a
 * cold boot anything, and devices a handover keeps doing DMA to it would
 * lose their memory. Restoring an image over a kernel that has a
 * carve-out is as wrong: the restored kernel knows nothing of it, nor of
 * the devices that may still use it. A live update is the way to replace
 * the kernel under guests; both are refused while there is a carve-out,
 * filesystem in use or not, before any other notifier does work.
 */
static int gmfs_pm_notifier(struct notifier_block *nb, unsigned long event,
			    void *unused)
{
	if (event != PM_HIBERNATION_PREPARE && event != PM_RESTORE_PREPARE)
		return NOTIFY_DONE;
	pr_warn("cannot %s: guest memory in the carve-out would not be in the image\n",
		event == PM_HIBERNATION_PREPARE ? "hibernate" : "restore a hibernation image");
	return notifier_from_errno(-EBUSY);
}

static struct notifier_block gmfs_pm_nb = {
	.notifier_call = gmfs_pm_notifier,
	.priority = INT_MAX,
};

static int __init gmfs_init(void)
{
	const struct range *ext;
	unsigned int nr;
	int err;

	/* A handover, if there is one, decides; guestmemfs= otherwise. */
	err = gmfs_kho_restore();
	ext = gmfs_carveout(&nr);
	if (err == -ENOENT && ext) {
		err = gmfs_carveout_take(ext, nr, false) ?:
		      gmfs_store_create(ext, nr);
		if (err)
			pr_err("cannot set the carve-out up: %d\n", err);
	}
	if (gmfs.psb && !gmfs.broken) {
		struct dentry *dir = debugfs_create_dir("guestmemfs", NULL);

		err = gmfs_zero_init(dir);
		if (err)
			pr_warn("free blocks are not cleared ahead of time: %d\n",
				err);
		err = gmfs_memfail_init();
		if (err)
			pr_warn("memory failures in the carve-out are not handled: %d\n",
				err);
		gmfs_memfail_debugfs(dir);
	}
	if (gmfs.psb || gmfs.broken) {
		err = register_pm_notifier(&gmfs_pm_nb);
		if (err)
			pr_err("cannot keep hibernation out: %d\n", err);
	}
	err = gmfs_kho_init();
	if (err)
		pr_err("cannot register for kexec handover: %d\n", err);
	return register_filesystem(&gmfs_fs_type);
}
fs_initcall(gmfs_init);
