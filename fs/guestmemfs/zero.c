// SPDX-License-Identifier: GPL-2.0-only
/*
 * guestmemfs: clearing blocks, and clearing them ahead of time.
 *
 * A block must read zeros when a file gets it: nothing of an earlier file,
 * or an earlier kernel, may show. For a VM's RAM that is seconds per TiB
 * of a grow. So a kernel thread of the lowest priority clears free blocks
 * while the machine has time to spare and records them as clean; a grow
 * that takes clean blocks only updates metadata, and clears the others
 * itself. Blocks freed are dirty again. What is clean is not handed over:
 * after a kexec every free block is dirty until the thread has been over
 * it.
 *
 * Clearing maps a run of blocks at a time and clears it with clear_page(),
 * the kernel's fastest way to clear memory, which the sanitizers do not
 * instrument: the carve-out is no memory of theirs.
 */

#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/wait.h>

#include "guestmemfs.h"

/* Blocks mapped at once: a PUD's worth, mapped with one entry if aligned */
#define GMFS_ZERO_RUN	512
/*
 * Blocks the thread clears at once (32 MiB): few enough that a grow that
 * takes one of them does not wait long for the thread to be done.
 */
#define GMFS_AHEAD_RUN	16

/*
 * Clear free blocks ahead of time. On by default; off, every grow clears
 * its blocks itself. Writable at run time.
 */
static bool zero_ahead = true;
static int gmfs_zero_ahead_set(const char *val, const struct kernel_param *kp);
static const struct kernel_param_ops zero_ahead_ops = {
	.set = gmfs_zero_ahead_set,
	.get = param_get_bool,
};
module_param_cb(zero_ahead, &zero_ahead_ops, &zero_ahead, 0644);
MODULE_PARM_DESC(zero_ahead, "Clear free blocks in the background (default: on)");

/**
 * gmfs_zero_run - clear a run of whole blocks
 * @block: its first block number
 * @nr: how many; they are contiguous in the carve-out
 * @for_grow: for a grow, which stops with -EINTR if a fatal signal is
 *	pending, and with -EBUSY if the store is frozen for a handover
 *
 * Return: 0 on success; -ENOMEM if a block cannot be mapped; -EINTR;
 * -EBUSY.
 */
int gmfs_zero_run(unsigned long block, unsigned long nr, bool for_grow)
{
	while (nr) {
		unsigned long n = min_t(unsigned long, nr, GMFS_ZERO_RUN), off;
		size_t len = n << GMFS_BLOCK_SHIFT;
		void *p = memremap(gmfs_block_phys(block), len, MEMREMAP_WB);

		/* No room for a mapping that large: a block at a time */
		if (!p && n > 1) {
			n = 1;
			len = GMFS_BLOCK_SIZE;
			p = memremap(gmfs_block_phys(block), len, MEMREMAP_WB);
		}
		if (!p)
			return -ENOMEM;
		for (off = 0; off < len; off += PAGE_SIZE) {
			if (!(off & (GMFS_BLOCK_SIZE - 1))) {
				int err = !for_grow ? 0 :
					  fatal_signal_pending(current) ? -EINTR :
					  READ_ONCE(gmfs.frozen) ? -EBUSY : 0;

				if (err) {
					memunmap(p);
					return err;
				}
				cond_resched();
			}
			clear_page(p + off);
		}
		memunmap(p);
		block += n;
		nr -= n;
	}
	return 0;
}

/* The thread: its task, while the store has one */
static struct task_struct *gmfs_zero_task;

/* Under the store lock: the first free block at or after @from not clean */
static unsigned long gmfs_next_dirty(unsigned long from)
{
	unsigned long w, x, last = BITS_TO_LONGS(gmfs.nr_blocks);

	for (w = from / BITS_PER_LONG; w < last; w++) {
		x = ~(gmfs.bitmap[w] | gmfs.clean[w]);
		if (w == from / BITS_PER_LONG)
			x &= BITMAP_FIRST_WORD_MASK(from);
		if (x) {
			x = w * BITS_PER_LONG + __ffs(x);
			return min(x, gmfs.nr_blocks);
		}
	}
	return gmfs.nr_blocks;
}

/*
 * Under the store lock: the next run of free blocks to clear, of @nr
 * blocks from the one returned, or gmfs.nr_blocks if there is none.
 */
static unsigned long gmfs_zero_pick(unsigned long hint, unsigned long *nr)
{
	unsigned long b, n;

	if (!READ_ONCE(zero_ahead) || gmfs.frozen)
		return gmfs.nr_blocks;
	b = gmfs_next_dirty(hint);
	if (b >= gmfs.nr_blocks)
		b = gmfs_next_dirty(0);
	for (n = 1; n < GMFS_AHEAD_RUN && b + n < gmfs.nr_blocks &&
	     !test_bit(b + n, gmfs.bitmap) && !test_bit(b + n, gmfs.clean); n++)
		;
	*nr = n;
	return b;
}

static int gmfs_zero_thread(void *unused)
{
	unsigned long hint = 0, b, nr = 0, i;
	int err;

	while (!kthread_should_stop()) {
		mutex_lock(&gmfs.lock);
		b = gmfs_zero_pick(hint, &nr);
		if (b < gmfs.nr_blocks) {
			gmfs.zeroing = b;
			gmfs.zeroing_nr = nr;
		} else {
			set_current_state(TASK_IDLE);
		}
		mutex_unlock(&gmfs.lock);
		if (b >= gmfs.nr_blocks) {
			/* Until blocks are freed, the store thawed, or stop */
			if (!kthread_should_stop())
				schedule();
			__set_current_state(TASK_RUNNING);
			continue;
		}

		err = gmfs_zero_run(b, nr, false);

		mutex_lock(&gmfs.lock);
		gmfs.zeroing = GMFS_NO_BLOCK;
		/*
		 * Those taken by a grow meanwhile, that grow cleared too. The
		 * bits are set atomically: grows read theirs without the lock.
		 */
		for (i = b; !err && i < b + nr; i++)
			if (!test_bit(i, gmfs.bitmap))
				set_bit(i, gmfs.clean);
		hint = b + nr;
		mutex_unlock(&gmfs.lock);
		wake_up_all(&gmfs.zero_wait);
		if (err)	/* No mapping now: try again later */
			schedule_timeout_idle(HZ);
	}
	return 0;
}

/**
 * gmfs_zero_kick - tell the thread there may be blocks to clear
 *
 * Called when blocks are freed and when the store is thawed.
 */
void gmfs_zero_kick(void)
{
	if (gmfs_zero_task)
		wake_up_process(gmfs_zero_task);
}

static int gmfs_zero_ahead_set(const char *val, const struct kernel_param *kp)
{
	int err = param_set_bool(val, kp);

	if (!err)
		gmfs_zero_kick();
	return err;
}

/**
 * gmfs_zero_wait - wait until the thread clears none of some blocks
 * @blocks: block numbers
 * @nr: how many
 *
 * A grow that took a block the thread is clearing must not let anyone
 * write to it before the thread is done. Called with the store lock held,
 * which it may drop and take again.
 */
void gmfs_zero_wait(const u32 *blocks, unsigned long nr)
{
	unsigned long i, b;

	lockdep_assert_held(&gmfs.lock);
	for (;;) {
		b = gmfs.zeroing;
		if (b == GMFS_NO_BLOCK)
			return;
		for (i = 0; i < nr && (blocks[i] < b ||
				       blocks[i] >= b + gmfs.zeroing_nr); i++)
			;
		if (i == nr)
			return;
		mutex_unlock(&gmfs.lock);
		wait_event(gmfs.zero_wait, READ_ONCE(gmfs.zeroing) != b);
		mutex_lock(&gmfs.lock);
	}
}

static int gmfs_clean_blocks_show(struct seq_file *m, void *unused)
{
	mutex_lock(&gmfs.lock);
	seq_printf(m, "%u\n", gmfs.clean ?
		   bitmap_weight(gmfs.clean, gmfs.nr_blocks) : 0);
	mutex_unlock(&gmfs.lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gmfs_clean_blocks);

/**
 * gmfs_zero_init - start clearing the store's free blocks ahead of time
 * @dir: guestmemfs's debugfs directory
 *
 * Return: 0, or -ENOMEM; the store works without it.
 */
int __init gmfs_zero_init(struct dentry *dir)
{
	struct task_struct *task;

	gmfs.clean = bitmap_zalloc(gmfs.nr_blocks, GFP_KERNEL);
	if (!gmfs.clean)
		return -ENOMEM;
	task = kthread_run(gmfs_zero_thread, NULL, "guestmemfs_zero");
	if (IS_ERR(task)) {
		bitmap_free(gmfs.clean);
		gmfs.clean = NULL;
		return PTR_ERR(task);
	}
	sched_set_normal(task, MAX_NICE);
	gmfs_zero_task = task;
	/* How far it got, for tests and make bench */
	debugfs_create_file("clean_blocks", 0444, dir, NULL,
			    &gmfs_clean_blocks_fops);
	return 0;
}
