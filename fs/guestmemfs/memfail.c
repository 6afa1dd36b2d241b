// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs: memory failures in the carve-out.
 *
 * The carve-out has no struct pages, so memory_failure() cannot find who
 * uses a failed page frame there: guestmemfs registers each range of the
 * carve-out with it, and handles the failure itself. A block with a failed
 * page is "bad": never given to a file again, never cleared again, and
 * the list of bad blocks goes with the handover to the next kernel. The
 * file that holds it keeps it: its other blocks stay as they are, but no
 * page of the bad block is mapped again, so that every access faults and
 * gets SIGBUS with BUS_MCEERR_AR and its address, which a VMM turns into a
 * machine check of its guest. The whole 2 MiB block is lost, as a 2 MiB
 * hugetlbfs page would be: what the file maps stays a 2 MiB unit.
 *
 * Clearing blocks only stores to them, which does not consume poison; no
 * one in the kernel reads from the carve-out.
 *
 * Known limit: KVM maps VM_PFNMAP memory through fixup_user_fault(), which
 * turns VM_FAULT_HWPOISON into -EFAULT, so a vCPU that touches a bad block
 * makes KVM_RUN fail instead of getting a machine check; a process that
 * maps the file gets its SIGBUS.
 */

#define pr_fmt(fmt) "guestmemfs: " fmt

#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/memory-failure.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>

#include "guestmemfs.h"

static struct pfn_failure_handler gmfs_mf[GMFS_MAX_EXTENTS];

/*
 * Under the store lock: the file that holds @block, and its index there.
 * 0 for a free block; a block taken by a grow not yet committed is past
 * the end of its file's map and counts as free here, but is not free in
 * the bitmap.
 */
static unsigned int gmfs_block_owner(unsigned long block, unsigned long *index)
{
	unsigned int ino;
	unsigned long i, nr;
	const u32 *map;

	lockdep_assert_held(&gmfs.lock);
	for (ino = GMFS_ROOT_INO + 1; ino < GMFS_MAX_INODES; ino++) {
		map = gmfs_block_map(ino);
		nr = gmfs_pinode(ino)->nr_blocks;
		for (i = 0; map && i < nr; i++) {
			if (map[i] == block) {
				*index = i;
				return ino;
			}
		}
	}
	return 0;
}

/*
 * Remove every mapping of the 1 GiB of the file around block @index, @block
 * of the carve-out (unless @again: a block that failed before is mapped
 * nowhere), and signal the processes that mapped page frame @pfn there.
 * Faults see the block bad from the moment the bit was set; those under
 * way finish before the invalidate_lock is ours, and what they mapped goes
 * now. A PUD entry is removed whole: unmapping less of it would split it,
 * which needs the mmap lock. Returns whether the current task got
 * BUS_MCEERR_AR.
 */
static bool gmfs_unmap_and_kill(struct inode *inode, unsigned long index,
				unsigned long block, unsigned long pfn,
				int flags, bool again)
{
	struct address_space *mapping = inode->i_mapping;
	loff_t start = ALIGN_DOWN((loff_t)index << GMFS_BLOCK_SHIFT, PUD_SIZE);
	pgoff_t pgoff = (index << (GMFS_BLOCK_SHIFT - PAGE_SHIFT)) +
			(pfn & (GMFS_BLOCK_PAGES - 1));
	const u32 *map;
	bool owns;

	filemap_invalidate_lock(mapping);
	/* Truncated away or reused meanwhile: no one maps it from here */
	mutex_lock(&gmfs.lock);
	map = gmfs_block_map(inode->i_ino);
	owns = map && index < gmfs_pinode(inode->i_ino)->nr_blocks &&
	       map[index] == block;
	mutex_unlock(&gmfs.lock);
	if (owns && !again)
		unmap_mapping_range(mapping, start, PUD_SIZE, 1);
	filemap_invalidate_unlock(mapping);
	return owns && mf_pfnmap_kill_procs(mapping, pgoff, pfn, flags);
}

/*
 * The handler memory_failure() calls for a page frame of the carve-out.
 * A failure of a block that is bad already only concerns the task that
 * touched it, if it is one that did (action required).
 */
static int gmfs_memory_failure(struct pfn_failure_handler *h,
			       unsigned long pfn, int flags)
{
	phys_addr_t phys = PFN_PHYS(pfn);
	unsigned long block = (phys - gmfs.base) >> GMFS_BLOCK_SHIFT, index = 0;
	struct super_block *sb = NULL;
	bool again, signalled = false;
	unsigned int ino;

	mutex_lock(&gmfs.lock);
	again = test_and_set_bit(block, gmfs.bad);
	if (again && !(flags & MF_ACTION_REQUIRED)) {
		mutex_unlock(&gmfs.lock);
		return -EHWPOISON;
	}
	ino = gmfs_block_owner(block, &index);
	if (!again) {
		gmfs.nr_bad++;
		if (gmfs.clean)
			clear_bit(block, gmfs.clean);
		if (!ino && !test_bit(block, gmfs.bitmap)) {
			/* Free: taken for good, so that no file ever gets it */
			__set_bit(block, gmfs.bitmap);
			gmfs.free_blocks--;
			gmfs.bad_free++;
		}
		/* A handover already finalized must carry it too */
		gmfs_kho_update_bad(block);
	}
	/*
	 * A mapped file is open, so its filesystem is mounted: without an
	 * active superblock, nothing maps the block. The inode is looked up
	 * without the store lock, which its eviction takes.
	 */
	if (ino && gmfs.sb && atomic_inc_not_zero(&gmfs.sb->s_active))
		sb = gmfs.sb;
	mutex_unlock(&gmfs.lock);

	if (!again)
		pr_err("memory failure at %pa: block %lu (%s %u) is out of use\n",
		       &phys, block, ino ? "inode" : "free, inode", ino);
	if (sb) {
		struct inode *inode = ilookup(sb, ino);

		/* Not in memory: not mapped */
		if (inode) {
			signalled = gmfs_unmap_and_kill(inode, index, block,
							pfn, flags, again);
			iput(inode);
		}
		deactivate_super(sb);
	}
	if (!again)
		return 0;
	/*
	 * As memory_failure() for a page it finds poisoned already: the task
	 * that touched it was told, or it cannot be, and must be killed.
	 */
	return signalled ? -EHWPOISON : -EFAULT;
}

/**
 * gmfs_memfail_init - handle the memory failures of the carve-out
 *
 * Called once the store is set up, from a new carve-out or a handover.
 *
 * Return: 0, or the error of registering a range: failures in the
 * carve-out are then not handled, as without CONFIG_MEMORY_FAILURE.
 */
int __init gmfs_memfail_init(void)
{
	unsigned int i;
	int err;

	for (i = 0; i < gmfs.nr_extents; i++) {
		gmfs_mf[i].pfn = PHYS_PFN(gmfs.extents[i].start);
		gmfs_mf[i].nr_pfns = range_len(&gmfs.extents[i]) >> PAGE_SHIFT;
		gmfs_mf[i].handle = gmfs_memory_failure;
		err = register_pfn_failure_handler(&gmfs_mf[i]);
		if (err) {
			while (i--)
				unregister_pfn_failure_handler(&gmfs_mf[i]);
			return err;
		}
	}
	return 0;
}

/* The bad blocks, by number, one per line */
static int gmfs_bad_blocks_show(struct seq_file *m, void *unused)
{
	unsigned long b;

	mutex_lock(&gmfs.lock);
	if (gmfs.bad)
		for_each_set_bit(b, gmfs.bad, gmfs.nr_blocks)
			seq_printf(m, "%lu\n", b);
	mutex_unlock(&gmfs.lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gmfs_bad_blocks);

#ifdef CONFIG_MEMORY_FAILURE
/*
 * "INO OFFSET": call memory_failure() on the page at OFFSET of file INO,
 * as the machine check code would on an error found by a scrubber. For
 * tests, whose VM has no machine check to raise on a page of its own.
 */
static ssize_t gmfs_poison_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	unsigned long long off;
	unsigned long pfn;
	unsigned int ino;
	char buf[48];
	const u32 *map;
	int err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	if (sscanf(buf, "%u %llu", &ino, &off) != 2 || ino >= GMFS_MAX_INODES)
		return -EINVAL;

	mutex_lock(&gmfs.lock);
	map = gmfs_block_map(ino);
	if (!map || off >= gmfs_pinode(ino)->nr_blocks << GMFS_BLOCK_SHIFT) {
		mutex_unlock(&gmfs.lock);
		return -ENXIO;
	}
	pfn = PHYS_PFN(gmfs_block_phys(map[off >> GMFS_BLOCK_SHIFT]) +
		       (off & (GMFS_BLOCK_SIZE - 1)));
	mutex_unlock(&gmfs.lock);

	err = memory_failure(pfn, MF_SW_SIMULATED);
	return err ? err : len;
}

static const struct file_operations gmfs_poison_fops = {
	.write	= gmfs_poison_write,
	.llseek	= noop_llseek,
};
#endif

/**
 * gmfs_memfail_debugfs - show the bad blocks, and let tests fail a page
 * @dir: guestmemfs's debugfs directory
 */
void __init gmfs_memfail_debugfs(struct dentry *dir)
{
	debugfs_create_file("bad_blocks", 0444, dir, NULL,
			    &gmfs_bad_blocks_fops);
#ifdef CONFIG_MEMORY_FAILURE
	debugfs_create_file("poison", 0200, dir, NULL, &gmfs_poison_fops);
#endif
}
