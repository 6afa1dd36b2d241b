/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_GUESTMEMFS_H
#define _LINUX_GUESTMEMFS_H

#include <linux/err.h>
#include <linux/list.h>
#include <linux/types.h>

struct file;
struct range;

/**
 * struct guestmemfs_run - physically contiguous memory of a pinned range
 * @offset: where the run starts, in bytes from the start of the pinned range
 * @phys: its physical address
 * @len: its length in bytes
 */
struct guestmemfs_run {
	u64 offset;
	phys_addr_t phys;
	u64 len;
};

/**
 * struct guestmemfs_pin - a range of a guestmemfs file held for DMA
 * @start: the range's first byte in the file, page aligned
 * @len: its length in bytes, page aligned
 * @owner: the cookie its taker gave, for the handover of pins; 0 for a pin
 *	that does not outlive this kernel
 * @ino: the file's inode number in the store
 * @generation: the file's generation: with @ino, the file across kexec
 * @nr_runs: how many runs @runs holds
 * @runs: the physical runs behind the range, in file order, each made of
 *	whole 2 MiB blocks but for a cut first or last one
 *
 * Callers read @start, @len, @nr_runs and @runs; the rest belongs to
 * guestmemfs. The runs stay valid, and the memory behind them belongs to
 * the file, until guestmemfs_unpin().
 */
struct guestmemfs_pin {
	loff_t start;
	u64 len;
	u64 owner;
	unsigned int ino;
	u32 generation;
	/* private: */
	struct file *file;
	struct hlist_node node;
	/* public: */
	unsigned int nr_runs;
	struct guestmemfs_run runs[] __counted_by(nr_runs);
};

#ifdef CONFIG_GUESTMEMFS_FS
const struct range *guestmemfs_reserve_carveout(unsigned int *nr);
bool is_guestmemfs_file(const struct file *file);
struct guestmemfs_pin *guestmemfs_pin(struct file *file, loff_t start,
				      u64 len, u64 owner);
struct guestmemfs_pin *guestmemfs_pin_dup(const struct guestmemfs_pin *pin,
					  u64 offset, u64 len, u64 owner);
struct guestmemfs_pin *guestmemfs_pin_ino(unsigned int ino, u32 generation,
					  loff_t start, u64 len, u64 owner);
void guestmemfs_unpin(struct guestmemfs_pin *pin);
const struct guestmemfs_run *
guestmemfs_pin_run(const struct guestmemfs_pin *pin, u64 offset);
#else
static inline const struct range *guestmemfs_reserve_carveout(unsigned int *nr)
{
	*nr = 0;
	return NULL;
}

static inline bool is_guestmemfs_file(const struct file *file)
{
	return false;
}

static inline struct guestmemfs_pin *guestmemfs_pin(struct file *file,
						    loff_t start, u64 len,
						    u64 owner)
{
	return ERR_PTR(-EINVAL);
}

static inline struct guestmemfs_pin *
guestmemfs_pin_dup(const struct guestmemfs_pin *pin, u64 offset, u64 len,
		   u64 owner)
{
	return ERR_PTR(-EINVAL);
}

static inline struct guestmemfs_pin *
guestmemfs_pin_ino(unsigned int ino, u32 generation, loff_t start, u64 len,
		   u64 owner)
{
	return ERR_PTR(-ENODEV);
}

static inline void guestmemfs_unpin(struct guestmemfs_pin *pin) { }

static inline const struct guestmemfs_run *
guestmemfs_pin_run(const struct guestmemfs_pin *pin, u64 offset)
{
	return NULL;
}
#endif

#endif /* _LINUX_GUESTMEMFS_H */
