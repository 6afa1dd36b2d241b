/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * guestmemfs internals.
 *
 * guestmemfs keeps guest RAM in a carve-out of system RAM that is neither
 * in the direct map nor described by struct pages. Its metadata is the
 * "store": a superblock record, an inode table, an allocation bitmap and
 * one block map per file, each in a folio of its own, laid out so that
 * kexec handover (KHO) can preserve those folios as they are. The store is
 * the truth; the VFS inodes and dentries of a mount are built from it, and
 * every change goes to it first.
 */
#ifndef _FS_GUESTMEMFS_H
#define _FS_GUESTMEMFS_H

#include <linux/bits.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/range.h>
#include <linux/types.h>

#define GMFS_BLOCK_SHIFT	21		/* 2 MiB blocks */
#define GMFS_BLOCK_SIZE		BIT(GMFS_BLOCK_SHIFT)
#define GMFS_BLOCK_PAGES	(GMFS_BLOCK_SIZE >> PAGE_SHIFT)
#define GMFS_PUD_BLOCKS		(PUD_SIZE >> GMFS_BLOCK_SHIFT)

#define GMFS_MAX_INODES		4096
#define GMFS_ROOT_INO		1
#define GMFS_NAME_MAX		255

/* The largest block map is a folio of the largest order. */
#define GMFS_MAX_FILE_BLOCKS	((PAGE_SIZE << MAX_PAGE_ORDER) / sizeof(u32))

/* The carve-out: at most this many ranges, over a span the bitmap covers */
#define GMFS_MAX_EXTENTS	32
#define GMFS_MAX_SPAN		((u64)(PAGE_SIZE << MAX_PAGE_ORDER) * \
				 BITS_PER_BYTE << GMFS_BLOCK_SHIFT)

/*
 * The handover format, version 2: the carve-out in several ranges, @base
 * and @size of the superblock their span, the blocks between them holes.
 * Host byte order: the kernel that reads it runs on the same machine as
 * the one that wrote it.
 */
#define GMFS_MAGIC		0x31767366746d6d67ULL	/* "gmmtfsv1" */
#define GMFS_VERSION		2

struct gmfs_psb {
	__u64 magic;
	__u32 version;
	__u32 block_shift;
	__u64 base;		/* span of the carve-out, physical address */
	__u64 size;		/* span of the carve-out, bytes */
	__u64 nr_blocks;
	__u32 nr_inodes;
	__u32 inode_table_order;
	__u64 inode_table;	/* physical address of the inode table folio */
	__u64 bitmap;		/* physical address of the bitmap folio */
	__u32 bitmap_order;
	__u32 reserved;
	__u64 next_generation;
};

#define GMFS_INODE_USED		0x1
/* Unlinked but still open or mapped: freed on last close, never restored. */
#define GMFS_INODE_ORPHAN	0x2
/* Evicted while frozen for kexec: freed when thawed. */
#define GMFS_INODE_FREE_ON_THAW	0x4

struct gmfs_pinode {
	__u32 flags;
	__u32 mode;
	__u32 uid;		/* in the initial user namespace */
	__u32 gid;
	__u32 parent;		/* inode number of the parent directory */
	__u32 name_len;
	__u64 size;
	__u64 nr_blocks;	/* DIV_ROUND_UP(size, GMFS_BLOCK_SIZE) */
	__u64 blocks;		/* physical address of the block map folio */
	__u32 blocks_order;
	__u32 generation;
	__s64 atime_sec;
	__s64 mtime_sec;
	__s64 ctime_sec;
	__u32 atime_nsec;
	__u32 mtime_nsec;
	__u32 ctime_nsec;
	__u32 reserved;
	char name[GMFS_NAME_MAX + 1];	/* name_len bytes, no NUL needed */
	__u8 pad[160];
};

/* The live store: one per carve-out, independent of mounts. */
struct gmfs_store {
	/*
	 * Every change of the store; taken inside the VFS's locks, and held
	 * only briefly: no zeroing is done under it.
	 */
	struct mutex lock;
	/*
	 * An inode's mode, owner and times, which change with no other store
	 * state (atime at mmap()): not worth the store lock.
	 */
	spinlock_t attr_lock;
	/* The span of the carve-out: block 0 is at @base */
	phys_addr_t base, size;
	/* Its ranges, sorted; the blocks between them are holes */
	struct range extents[GMFS_MAX_EXTENTS];
	unsigned int nr_extents;
	/* Blocks in the span, blocks in the ranges, free blocks */
	unsigned long nr_blocks, capacity, free_blocks;
	unsigned int free_inodes;
	/* Grows whose blocks are taken, not yet zeroed and committed */
	unsigned int growing;
	/*
	 * Free blocks known to read zeros (zero.c), not handed over; NULL
	 * without a thread to clear them. The block it is clearing, or
	 * GMFS_NO_BLOCK; where grows wait for it to be done, and a finalize
	 * for the grows under way to end.
	 */
	unsigned long *clean;
	unsigned long zeroing, zeroing_nr;
	wait_queue_head_t zero_wait;

	struct gmfs_psb *psb;
	struct gmfs_pinode *inodes;
	unsigned long *bitmap;
	/* Block maps, by inode number; NULL for inodes without blocks. */
	struct folio *maps[GMFS_MAX_INODES];
	/* Pins of file ranges, by inode number (pin.c). */
	struct hlist_head pins[GMFS_MAX_INODES];

	/*
	 * Blocks with a failed page (memfail.c): never given to a file again,
	 * kept by the file that holds one, handed over. Those of them no file
	 * holds are taken for good, out of statfs()'s count.
	 */
	unsigned long *bad;
	unsigned long nr_bad, bad_free;

	/* Finalized for kexec: namespace changes fail with -EBUSY. */
	bool frozen;
	/* Restored state was rejected: mounts fail. */
	const char *broken;
	struct super_block *sb;
};

extern struct gmfs_store gmfs;

#define GMFS_NO_BLOCK	ULONG_MAX

/* The most bad blocks a handover carries: 1 KiB of its one-page subtree */
#define GMFS_MAX_BAD	256
/* A free slot of the handover's list of bad blocks */
#define GMFS_NO_BAD	U32_MAX

/* Has a page of @block failed? Once set, the bit stays. */
static inline bool gmfs_block_bad(unsigned long block)
{
	return gmfs.bad && test_bit(block, gmfs.bad);
}

/* carveout.c */
const struct range *gmfs_carveout(unsigned int *nr);
int gmfs_carveout_take(const struct range *ext, unsigned int nr,
		       bool handed_over);
int gmfs_zero_block(unsigned long block, size_t offset);

/* store.c */
int gmfs_store_create(const struct range *ext, unsigned int nr);
void gmfs_set_holes(unsigned long *bitmap, const struct range *ext,
		    unsigned int nr);
int gmfs_store_alloc_inode(umode_t mode, kuid_t uid, kgid_t gid,
			   unsigned int parent, const struct qstr *name);
void gmfs_store_free_inode(unsigned int ino);
int gmfs_store_shrink(unsigned int ino, loff_t size);

/* A grow whose blocks are taken, between gmfs_store_grow() and its commit */
struct gmfs_grow {
	unsigned int ino;
	loff_t size;
	/* Blocks of the file before and after */
	unsigned long old_nr, nr;
	/* Its block map, or the larger copy that replaces it at commit */
	struct folio *map;
};

int gmfs_store_grow(struct gmfs_grow *g, unsigned int ino, loff_t size);
int gmfs_store_grow_commit(struct gmfs_grow *g, int err);
int gmfs_store_set_name(unsigned int ino, unsigned int parent,
			const struct qstr *name);
void gmfs_store_sync_attrs(struct inode *inode);
u32 *gmfs_block_map(unsigned int ino);
phys_addr_t gmfs_block_phys(unsigned long block);

static inline struct gmfs_pinode *gmfs_pinode(unsigned int ino)
{
	return &gmfs.inodes[ino];
}

/* zero.c */
int gmfs_zero_run(unsigned long block, unsigned long nr, bool for_grow);
void gmfs_zero_kick(void);
void gmfs_zero_wait(const u32 *blocks, unsigned long nr);
int gmfs_zero_init(struct dentry *dir);

/* memfail.c */
int gmfs_memfail_init(void);
void gmfs_memfail_debugfs(struct dentry *dir);

/* inode.c */
struct inode *gmfs_iget(struct super_block *sb, unsigned int ino);
int gmfs_grow(struct inode *inode, loff_t size);
extern const struct inode_operations gmfs_dir_inode_operations;
extern const struct inode_operations gmfs_file_inode_operations;

/* file.c */
extern const struct file_operations gmfs_file_operations;

/* pin.c */
int gmfs_pin_check_shrink(struct inode *inode, loff_t size);
bool gmfs_pin_keeps_name(unsigned int ino);

/* kho.c */
#ifdef CONFIG_KEXEC_HANDOVER
/* What the next kernel restores, and why it rejected it. */
struct gmfs_restore {
	const char *why;
	unsigned int ino;
	/* The carve-out, as the subtree gives it */
	struct range extents[GMFS_MAX_EXTENTS];
	unsigned int nr_extents;
	/* Blocks of the span between its ranges; NULL if there are none */
	unsigned long *holes;
	/* Blocks with a failed page */
	unsigned long *bad;
	struct folio *fdt, *psb, *inodes, *bitmap;
	struct folio *maps[GMFS_MAX_INODES];
	unsigned long *used;
	unsigned int *sorted;
};

#if IS_ENABLED(CONFIG_KUNIT)
bool gmfs_check_extents(struct gmfs_restore *r, const u64 *val, int len);
bool gmfs_check_bad(struct gmfs_restore *r, const u32 *val, int len,
		    u64 nr_blocks);
bool gmfs_check_psb(struct gmfs_restore *r, const struct gmfs_psb *psb,
		    u64 base, u64 size);
bool gmfs_check_inodes(struct gmfs_restore *r, const struct gmfs_psb *psb,
		       struct gmfs_pinode *inodes);
bool gmfs_check_blocks(struct gmfs_restore *r, const struct gmfs_psb *psb,
		       const u32 *map, u64 nr, unsigned int ino);
#endif

int gmfs_kho_init(void);
int gmfs_kho_restore(void);
void gmfs_kho_update_bad(unsigned long block);
#else
static inline int gmfs_kho_init(void)
{
	return 0;
}

static inline int gmfs_kho_restore(void)
{
	return -ENOENT;
}

static inline void gmfs_kho_update_bad(unsigned long block)
{
}
#endif

#endif /* _FS_GUESTMEMFS_H */
