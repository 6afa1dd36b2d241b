// SPDX-License-Identifier: GPL-2.0-only
/*
 * kexec_handover_debugfs.c - the debugfs interface of kexec handover
 *
 * /sys/kernel/debug/kho/
 *	out/finalize		0 or 1; write 1 to finalize, 0 to abort
 *	out/fdt			the root FDT, once finalized
 *	out/sub_fdts/NAME	each published subtree, once finalized
 *	out/scratch_phys	address of each scratch area, one per line
 *	out/scratch_len		size of each scratch area, one per line
 *	in/fdt			the root FDT the previous kernel handed over
 *	in/sub_fdts/NAME	its subtrees, as they were at boot
 */

#define pr_fmt(fmt) "KHO: " fmt

#include <linux/debugfs.h>
#include <linux/init.h>
#include <linux/io.h>
#include <linux/libfdt.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "kexec_handover_internal.h"

struct kho_blob {
	struct list_head list;
	struct debugfs_blob_wrapper wrapper;
	struct dentry *file;
	void *copy;	/* owned copy, or NULL if the blob is not ours */
};

static struct dentry *kho_dir, *out_dir, *out_sub_dir;
static LIST_HEAD(out_blobs);
static LIST_HEAD(in_blobs);

static int kho_blob_add(struct list_head *list, struct dentry *dir,
			const char *name, const void *fdt, bool copy)
{
	struct kho_blob *b = kzalloc(sizeof(*b), GFP_KERNEL);
	size_t size = fdt_totalsize(fdt);

	if (!b)
		return -ENOMEM;
	if (copy) {
		b->copy = kvmemdup(fdt, size, GFP_KERNEL);
		if (!b->copy) {
			kfree(b);
			return -ENOMEM;
		}
		fdt = b->copy;
	}
	b->wrapper.data = (void *)fdt;
	b->wrapper.size = size;
	b->file = debugfs_create_blob(name, 0400, dir, &b->wrapper);
	if (IS_ERR(b->file)) {
		int err = PTR_ERR(b->file);

		kvfree(b->copy);
		kfree(b);
		return err;
	}
	list_add_tail(&b->list, list);
	return 0;
}

/**
 * kho_debugfs_out_add - show a blob of the outgoing handover
 * @name: "fdt" for the root, or a subtree name
 * @fdt: the blob, which must stay until kho_debugfs_out_clear()
 *
 * Return: 0 on success, error code on failure.
 */
int kho_debugfs_out_add(const char *name, const void *fdt)
{
	struct dentry *dir = strcmp(name, "fdt") ? out_sub_dir : out_dir;

	if (!dir)
		return 0;
	return kho_blob_add(&out_blobs, dir, name, fdt, false);
}

/**
 * kho_debugfs_out_clear - remove the blobs of the outgoing handover
 */
void kho_debugfs_out_clear(void)
{
	struct kho_blob *b, *tmp;

	list_for_each_entry_safe(b, tmp, &out_blobs, list) {
		debugfs_remove(b->file);
		list_del(&b->list);
		kfree(b);
	}
}

static int finalize_get(void *data, u64 *val)
{
	*val = kho_is_finalized();
	return 0;
}

static int finalize_set(void *data, u64 val)
{
	if (val > 1)
		return -EINVAL;
	return kho_set_finalized(val);
}

DEFINE_DEBUGFS_ATTRIBUTE(finalize_fops, finalize_get, finalize_set, "%llu\n");

static int scratch_show(struct seq_file *m, bool len)
{
	const struct kho_scratch *s;
	unsigned int i, cnt;

	s = kho_scratch_areas(&cnt);
	for (i = 0; i < cnt; i++)
		seq_printf(m, "0x%llx\n", len ? s[i].size : s[i].addr);
	return 0;
}

static int scratch_phys_show(struct seq_file *m, void *v)
{
	return scratch_show(m, false);
}
DEFINE_SHOW_ATTRIBUTE(scratch_phys);

static int scratch_len_show(struct seq_file *m, void *v)
{
	return scratch_show(m, true);
}
DEFINE_SHOW_ATTRIBUTE(scratch_len);

static void __init kho_debugfs_out_init(void)
{
	out_dir = debugfs_create_dir("out", kho_dir);
	out_sub_dir = debugfs_create_dir("sub_fdts", out_dir);
	debugfs_create_file("finalize", 0600, out_dir, NULL, &finalize_fops);
	debugfs_create_file("scratch_phys", 0400, out_dir, NULL,
			    &scratch_phys_fops);
	debugfs_create_file("scratch_len", 0400, out_dir, NULL,
			    &scratch_len_fops);
}

/*
 * Subtrees belong to their owners, who may restore and free them at any
 * time: show copies taken at boot, of the blobs that are still preserved
 * and whole.
 */
static void __init kho_debugfs_in_init(const void *fdt)
{
	struct dentry *in_dir, *sub_dir;
	int node, err;

	in_dir = debugfs_create_dir("in", kho_dir);
	sub_dir = debugfs_create_dir("sub_fdts", in_dir);
	err = kho_blob_add(&in_blobs, in_dir, "fdt", fdt, false);
	if (err)
		pr_warn("cannot show the incoming FDT: %d\n", err);

	fdt_for_each_subnode(node, fdt, 0) {
		const char *name = fdt_get_name(fdt, node, NULL);
		const u64 *phys;
		const void *sub;
		int len, order;

		phys = fdt_getprop(fdt, node, "fdt", &len);
		if (!name || !phys || len != sizeof(*phys))
			continue;
		order = kho_in_block_order(*phys);
		if (order < 0)
			continue;
		sub = phys_to_virt(*phys);
		if (fdt_check_header(sub) ||
		    fdt_totalsize(sub) > (PAGE_SIZE << order))
			continue;
		err = kho_blob_add(&in_blobs, sub_dir, name, sub, true);
		if (err)
			pr_warn("cannot show subtree %s: %d\n", name, err);
	}
}

/**
 * kho_debugfs_init - create /sys/kernel/debug/kho
 *
 * Called from KHO's initcall, before the owners of the incoming subtrees
 * can have restored them.
 */
void __init kho_debugfs_init(void)
{
	const void *fdt = kho_in_fdt();

	if (!kho_is_enabled() && !fdt)
		return;
	kho_dir = debugfs_create_dir("kho", NULL);
	if (kho_is_enabled())
		kho_debugfs_out_init();
	if (fdt)
		kho_debugfs_in_init(fdt);
}
