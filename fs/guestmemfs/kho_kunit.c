// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of the checks guestmemfs runs on what the previous kernel
 * handed over.
 *
 * Each case starts from a small valid store (a root directory, a
 * directory with two empty files and a subdirectory), damages one field
 * and expects the restore to be rejected for the right reason, naming the
 * right inode. A real kexec covers the good path and a missing subtree
 * (tools/testing/selftests/filesystems/guestmemfs/guestmemfs_kexec.sh);
 * these cover every field, which a kexec per case could not afford.
 */

#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sizes.h>

#include "guestmemfs.h"

#define NR_BLOCKS	32
#define INO_DIR		2
#define INO_VM0		3
#define INO_VM1		4
#define INO_SUB		5

struct gmfs_image {
	struct gmfs_restore *r;
	struct gmfs_psb psb;
	struct gmfs_pinode *inodes;
};

static void set_inode(struct gmfs_pinode *p, umode_t mode, unsigned int parent,
		      const char *name)
{
	p->flags = GMFS_INODE_USED;
	p->mode = mode;
	p->parent = parent;
	p->name_len = strlen(name);
	memcpy(p->name, name, p->name_len);
	p->mtime_sec = 1700000000;
	p->mtime_nsec = 999999999;
}

static void free_vmem(void *p)
{
	kvfree(p);
}

static void free_bitmap(void *p)
{
	bitmap_free(p);
}

static void image_init(struct kunit *test, struct gmfs_image *img)
{
	struct gmfs_restore *r;

	r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r);
	r->used = bitmap_zalloc(NR_BLOCKS, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r->used);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_bitmap,
							   r->used));
	r->sorted = kvcalloc(GMFS_MAX_INODES, sizeof(*r->sorted), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r->sorted);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_vmem,
							   r->sorted));
	img->inodes = kvcalloc(GMFS_MAX_INODES, sizeof(*img->inodes),
			       GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, img->inodes);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_vmem,
							   img->inodes));
	img->r = r;

	img->psb = (struct gmfs_psb) {
		.magic = GMFS_MAGIC,
		.version = GMFS_VERSION,
		.block_shift = GMFS_BLOCK_SHIFT,
		.base = SZ_1G,
		.size = NR_BLOCKS * GMFS_BLOCK_SIZE,
		.nr_blocks = NR_BLOCKS,
		.nr_inodes = GMFS_MAX_INODES,
		.inode_table_order = get_order(GMFS_MAX_INODES *
					       sizeof(struct gmfs_pinode)),
		.bitmap_order = get_order(BITS_TO_LONGS(NR_BLOCKS) *
					  sizeof(long)),
	};
	set_inode(&img->inodes[GMFS_ROOT_INO], S_IFDIR | 0755, GMFS_ROOT_INO, "");
	set_inode(&img->inodes[INO_DIR], S_IFDIR | 0750, GMFS_ROOT_INO, "vms");
	set_inode(&img->inodes[INO_VM0], S_IFREG | 0600, INO_DIR, "vm0");
	set_inode(&img->inodes[INO_VM1], S_IFREG | 0600, INO_DIR, "vm1");
	set_inode(&img->inodes[INO_SUB], S_IFDIR | 0700, INO_DIR, "sub");
	img->inodes[INO_VM1].uid = 1000;
	img->inodes[INO_VM1].gid = 1000;
}

/*
 * One way of damaging the valid store, and what the checks must say: the
 * reason, and the inode they blame (0 for the superblock). A NULL reason
 * means the store is still valid.
 */
struct gmfs_damage {
	const char *name;
	void (*damage)(struct gmfs_pinode *in, struct gmfs_psb *psb);
	const char *why;
	unsigned int ino;
};

#define DAMAGE(_name, ...)						\
static void damage_##_name(struct gmfs_pinode *in, struct gmfs_psb *psb) \
{									\
	__VA_ARGS__;							\
}

DAMAGE(none)
DAMAGE(same_name_other_dir, in[INO_VM1].parent = INO_SUB;
	memcpy(in[INO_VM1].name, "vm0", 3))
DAMAGE(no_root, in[GMFS_ROOT_INO].flags = 0)
DAMAGE(flags, in[INO_VM0].flags |= 0x80)
DAMAGE(orphan_flag, in[INO_VM0].flags |= GMFS_INODE_FREE_ON_THAW)
DAMAGE(symlink, in[INO_VM0].mode = S_IFLNK | 0777)
DAMAGE(mode_bits, in[INO_VM0].mode |= 0x100000)
DAMAGE(no_type, in[INO_DIR].mode = 0750)
DAMAGE(uid, in[INO_VM1].uid = (u32)-1)
DAMAGE(gid, in[INO_VM1].gid = (u32)-1)
DAMAGE(nsec, in[INO_VM0].ctime_nsec = NSEC_PER_SEC)
DAMAGE(root_file, in[GMFS_ROOT_INO].mode = S_IFREG | 0755)
DAMAGE(root_named, set_inode(&in[GMFS_ROOT_INO], S_IFDIR | 0755,
			     GMFS_ROOT_INO, "x"))
DAMAGE(root_parent, in[GMFS_ROOT_INO].parent = INO_DIR)
DAMAGE(empty_name, in[INO_VM0].name_len = 0)
DAMAGE(long_name, in[INO_VM0].name_len = GMFS_NAME_MAX + 1)
DAMAGE(slash, in[INO_VM0].name[1] = '/')
DAMAGE(nul, in[INO_VM0].name[2] = 0)
DAMAGE(dot, set_inode(&in[INO_SUB], S_IFDIR | 0700, INO_DIR, "."))
DAMAGE(dotdot, set_inode(&in[INO_SUB], S_IFDIR | 0700, INO_DIR, ".."))
DAMAGE(parent_range, in[INO_VM0].parent = GMFS_MAX_INODES)
DAMAGE(parent_free, in[INO_VM0].parent = 100)
DAMAGE(parent_file, in[INO_SUB].parent = INO_VM0)
DAMAGE(dir_size, in[INO_DIR].size = 1)
DAMAGE(dir_map, in[INO_DIR].blocks = SZ_1M)
DAMAGE(size_blocks, in[INO_VM0].size = 3 * SZ_1M; in[INO_VM0].nr_blocks = 1)
DAMAGE(too_big, in[INO_VM0].nr_blocks = GMFS_MAX_FILE_BLOCKS + 1;
	in[INO_VM0].size = in[INO_VM0].nr_blocks * GMFS_BLOCK_SIZE)
/* A size so large that rounding it up to blocks wraps to none. */
DAMAGE(size_wraps, in[INO_VM0].size = U64_MAX - SZ_1M;
	in[INO_VM0].nr_blocks = 0; in[INO_VM0].blocks = 0)
DAMAGE(empty_map, in[INO_VM0].blocks = SZ_1M)
DAMAGE(small_map, in[INO_VM0].nr_blocks = 2000;
	in[INO_VM0].size = 2000 * GMFS_BLOCK_SIZE;
	in[INO_VM0].blocks = SZ_1M)
DAMAGE(huge_map, in[INO_VM0].nr_blocks = 1; in[INO_VM0].size = 1;
	in[INO_VM0].blocks = SZ_1M;
	in[INO_VM0].blocks_order = MAX_PAGE_ORDER + 1)
DAMAGE(map_not_preserved, in[INO_VM0].nr_blocks = 1;
	in[INO_VM0].size = GMFS_BLOCK_SIZE; in[INO_VM0].blocks = SZ_1M)
DAMAGE(loop, in[INO_DIR].parent = INO_SUB)
DAMAGE(self_parent, in[INO_SUB].parent = INO_SUB)
DAMAGE(same_name, memcpy(in[INO_VM1].name, "vm0", 3))
DAMAGE(magic, psb->magic ^= 1)
DAMAGE(version, psb->version = 1)
DAMAGE(block_shift, psb->block_shift = 30)
DAMAGE(base, psb->base += GMFS_BLOCK_SIZE)
DAMAGE(size, psb->size -= GMFS_BLOCK_SIZE)
DAMAGE(nr_blocks, psb->nr_blocks++)
DAMAGE(nr_inodes, psb->nr_inodes--)
DAMAGE(inode_order, psb->inode_table_order--)
DAMAGE(bitmap_order, psb->bitmap_order = 3)

#define CASE(_name, _why, _ino) \
	{ .name = #_name, .damage = damage_##_name, .why = _why, .ino = _ino }

static const struct gmfs_damage gmfs_damages[] = {
	CASE(none, NULL, 0),
	CASE(same_name_other_dir, NULL, 0),
	CASE(no_root, "no root directory", GMFS_ROOT_INO),
	CASE(flags, "bad inode flags", INO_VM0),
	CASE(orphan_flag, "bad inode flags", INO_VM0),
	CASE(symlink, "bad mode", INO_VM0),
	CASE(mode_bits, "bad mode", INO_VM0),
	CASE(no_type, "bad mode", INO_DIR),
	CASE(uid, "bad owner", INO_VM1),
	CASE(gid, "bad owner", INO_VM1),
	CASE(nsec, "bad time", INO_VM0),
	CASE(root_file, "bad root directory", GMFS_ROOT_INO),
	CASE(root_named, "bad root directory", GMFS_ROOT_INO),
	CASE(root_parent, "bad root directory", GMFS_ROOT_INO),
	CASE(empty_name, "bad name", INO_VM0),
	CASE(long_name, "bad name", INO_VM0),
	CASE(slash, "bad name", INO_VM0),
	CASE(nul, "bad name", INO_VM0),
	CASE(dot, "bad name", INO_SUB),
	CASE(dotdot, "bad name", INO_SUB),
	CASE(parent_range, "parent out of range", INO_VM0),
	CASE(parent_free, "parent is not a directory", INO_VM0),
	CASE(parent_file, "parent is not a directory", INO_SUB),
	CASE(dir_size, "directory with blocks", INO_DIR),
	CASE(dir_map, "directory with blocks", INO_DIR),
	CASE(size_blocks, "size and blocks disagree", INO_VM0),
	CASE(too_big, "size and blocks disagree", INO_VM0),
	CASE(size_wraps, "size and blocks disagree", INO_VM0),
	CASE(empty_map, "block map of an empty file", INO_VM0),
	CASE(small_map, "bad block map order", INO_VM0),
	CASE(huge_map, "bad block map order", INO_VM0),
	CASE(map_not_preserved, "block map not preserved", INO_VM0),
	CASE(loop, "directory loop", INO_DIR),
	CASE(self_parent, "directory loop", INO_SUB),
	CASE(same_name, "two entries of the same name", INO_VM1),
	CASE(magic, "unknown superblock format", 0),
	CASE(version, "unknown superblock format", 0),
	CASE(block_shift, "unknown superblock format", 0),
	CASE(base, "superblock disagrees with the carve-out", 0),
	CASE(size, "superblock disagrees with the carve-out", 0),
	CASE(nr_blocks, "superblock disagrees with the carve-out", 0),
	CASE(nr_inodes, "bad table sizes", 0),
	CASE(inode_order, "bad table sizes", 0),
	CASE(bitmap_order, "bad table sizes", 0),
};

static void damage_desc(const struct gmfs_damage *d, char *desc)
{
	strscpy(desc, d->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(gmfs_damage, gmfs_damages, damage_desc);

/* The restore checks the superblock first, then the inode table. */
static void gmfs_kunit_damage(struct kunit *test)
{
	const struct gmfs_damage *d = test->param_value;
	struct gmfs_image img;
	bool ok;

	image_init(test, &img);
	d->damage(img.inodes, &img.psb);
	ok = gmfs_check_psb(img.r, &img.psb, SZ_1G, NR_BLOCKS * GMFS_BLOCK_SIZE) &&
	     gmfs_check_inodes(img.r, &img.psb, img.inodes);

	if (!d->why) {
		KUNIT_EXPECT_TRUE_MSG(test, ok, "rejected: %s (inode %u)",
				      img.r->why, img.r->ino);
		return;
	}
	KUNIT_EXPECT_FALSE(test, ok);
	KUNIT_EXPECT_STREQ(test, img.r->why ?: "(accepted)", d->why);
	KUNIT_EXPECT_EQ(test, img.r->ino, d->ino);
}

/* Blocks inside the carve-out, each held by one file only. */
static void gmfs_kunit_blocks(struct kunit *test)
{
	static const u32 vm0[] = { 0, 1, 2, 31 }, vm1[] = { 3, 4 };
	static const u32 outside[] = { 5, NR_BLOCKS }, shared[] = { 6, 2 };
	static const u32 twice[] = { 7, 8, 7 };
	struct gmfs_image img;

	image_init(test, &img);
	KUNIT_EXPECT_TRUE(test, gmfs_check_blocks(img.r, &img.psb, vm0, 4, INO_VM0));
	KUNIT_EXPECT_TRUE(test, gmfs_check_blocks(img.r, &img.psb, vm1, 2, INO_VM1));
	KUNIT_EXPECT_EQ(test, bitmap_weight(img.r->used, NR_BLOCKS), 6);

	KUNIT_EXPECT_FALSE(test, gmfs_check_blocks(img.r, &img.psb, outside, 2, 9));
	KUNIT_EXPECT_STREQ(test, img.r->why, "block out of range");
	KUNIT_EXPECT_EQ(test, img.r->ino, 9);

	KUNIT_EXPECT_FALSE(test, gmfs_check_blocks(img.r, &img.psb, shared, 2, 10));
	KUNIT_EXPECT_STREQ(test, img.r->why, "block used twice");
	KUNIT_EXPECT_EQ(test, img.r->ino, 10);

	KUNIT_EXPECT_FALSE(test, gmfs_check_blocks(img.r, &img.psb, twice, 3, 11));
	KUNIT_EXPECT_STREQ(test, img.r->why, "block used twice");
	KUNIT_EXPECT_EQ(test, img.r->ino, 11);
}

/* No file may hold a block between two ranges of the carve-out. */
static void gmfs_kunit_holes(struct kunit *test)
{
	static const u32 around[] = { 9, 12 }, inside[] = { 13, 11 };
	struct gmfs_image img;

	image_init(test, &img);
	img.r->holes = bitmap_zalloc(NR_BLOCKS, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, img.r->holes);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_bitmap,
							   img.r->holes));
	bitmap_set(img.r->holes, 10, 2);
	KUNIT_EXPECT_TRUE(test, gmfs_check_blocks(img.r, &img.psb, around, 2,
						  INO_VM0));
	KUNIT_EXPECT_FALSE(test, gmfs_check_blocks(img.r, &img.psb, inside, 2,
						   INO_VM1));
	KUNIT_EXPECT_STREQ(test, img.r->why,
			   "block between the carve-out's ranges");
	KUNIT_EXPECT_EQ(test, img.r->ino, INO_VM1);
}

/*
 * The list of bad blocks: in the span, none twice or in a hole, then only
 * free slots
 */
static void gmfs_kunit_bad(struct kunit *test)
{
	static const u32 good[] = { 9, 3, 31, GMFS_NO_BAD, GMFS_NO_BAD },
			 twice[] = { 3, 3 }, past[] = { 3, NR_BLOCKS },
			 hole[] = { 10 }, after[] = { 3, GMFS_NO_BAD, 9 };
	static const struct {
		const u32 *val;
		int len;
	} bad[] = {
		{ twice, sizeof(twice) }, { past, sizeof(past) },
		{ hole, sizeof(hole) }, { after, sizeof(after) },
		{ good, sizeof(good) - 1 },
	};
	struct gmfs_image img;
	u32 *many;
	unsigned int i;

	image_init(test, &img);
	img.r->holes = bitmap_zalloc(NR_BLOCKS, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, img.r->holes);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_bitmap,
							   img.r->holes));
	img.r->bad = bitmap_zalloc(GMFS_MAX_BAD + 1, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, img.r->bad);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, free_bitmap,
							   img.r->bad));
	bitmap_set(img.r->holes, 10, 2);

	KUNIT_EXPECT_TRUE(test, gmfs_check_bad(img.r, good, 0, NR_BLOCKS));
	KUNIT_EXPECT_EQ(test, bitmap_weight(img.r->bad, NR_BLOCKS), 0);
	KUNIT_EXPECT_TRUE(test, gmfs_check_bad(img.r, good, sizeof(good),
					       NR_BLOCKS));
	KUNIT_EXPECT_EQ(test, bitmap_weight(img.r->bad, NR_BLOCKS), 3);
	KUNIT_EXPECT_TRUE(test, test_bit(31, img.r->bad));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		bitmap_zero(img.r->bad, GMFS_MAX_BAD + 1);
		img.r->why = NULL;
		KUNIT_EXPECT_FALSE(test, gmfs_check_bad(img.r, bad[i].val,
							bad[i].len, NR_BLOCKS));
		KUNIT_EXPECT_STREQ(test, img.r->why ?: "(accepted)",
				   "bad list of bad blocks");
	}

	/* At most GMFS_MAX_BAD slots */
	many = kunit_kcalloc(test, GMFS_MAX_BAD + 1, sizeof(u32), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, many);
	for (i = 0; i <= GMFS_MAX_BAD; i++)
		many[i] = i;
	bitmap_zero(img.r->bad, GMFS_MAX_BAD + 1);
	img.r->why = NULL;
	KUNIT_EXPECT_FALSE(test, gmfs_check_bad(img.r, many,
						(GMFS_MAX_BAD + 1) * sizeof(u32),
						GMFS_MAX_BAD + 1));
	bitmap_zero(img.r->bad, GMFS_MAX_BAD + 1);
	img.r->holes = NULL;
	img.r->why = NULL;
	KUNIT_EXPECT_TRUE(test, gmfs_check_bad(img.r, many,
					       GMFS_MAX_BAD * sizeof(u32),
					       GMFS_MAX_BAD + 1));
}

/* The ranges of the carve-out, as the subtree gives them */
struct gmfs_extents_case {
	const char *name;
	u64 val[8];
	int len;	/* bytes of @val given; 0: all of them */
	unsigned int nr;	/* ranges accepted, or 0: refused */
};

static const struct gmfs_extents_case gmfs_extents_cases[] = {
	{ "one", { SZ_1G, SZ_1G }, 16, 1 },
	{ "three", { SZ_1G, SZ_1G, 3ULL * SZ_1G, SZ_2M,
		     4ULL * SZ_1G, 2ULL * SZ_1G }, 48, 3 },
	{ "none", {}, 0, 0 },
	{ "half_a_range", { SZ_1G, SZ_1G, 3ULL * SZ_1G }, 24, 0 },
	{ "empty_range", { SZ_1G, 0 }, 16, 0 },
	{ "misaligned_base", { SZ_1G + SZ_4K, SZ_2M }, 16, 0 },
	{ "misaligned_size", { SZ_1G, SZ_2M + SZ_4K }, 16, 0 },
	{ "wraps", { U64_MAX - SZ_2M + 1, SZ_4M }, 16, 0 },
	{ "unsorted", { 3ULL * SZ_1G, SZ_2M, SZ_1G, SZ_1G }, 32, 0 },
	{ "overlapping", { SZ_1G, SZ_1G, SZ_1G + SZ_2M, SZ_2M }, 32, 0 },
	{ "touching", { SZ_1G, SZ_1G, 2ULL * SZ_1G, SZ_2M }, 32, 0 },
	{ "span_too_large", { 0, SZ_2M, GMFS_MAX_SPAN, SZ_2M }, 32, 0 },
};

static void extents_desc(const struct gmfs_extents_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(gmfs_extents, gmfs_extents_cases, extents_desc);

static void gmfs_kunit_extents(struct kunit *test)
{
	const struct gmfs_extents_case *c = test->param_value;
	struct gmfs_image img;
	bool ok;

	image_init(test, &img);
	ok = gmfs_check_extents(img.r, c->val, c->len);
	if (!c->nr) {
		KUNIT_EXPECT_FALSE(test, ok);
		KUNIT_EXPECT_STREQ(test, img.r->why ?: "(accepted)",
				   "bad carve-out ranges");
		return;
	}
	KUNIT_EXPECT_TRUE(test, ok);
	KUNIT_EXPECT_EQ(test, img.r->nr_extents, c->nr);
	KUNIT_EXPECT_EQ(test, img.r->extents[c->nr - 1].end,
			c->val[2 * c->nr - 2] + c->val[2 * c->nr - 1] - 1);
}

/* Too many ranges */
static void gmfs_kunit_extents_max(struct kunit *test)
{
	u64 *val = kunit_kcalloc(test, 2 * (GMFS_MAX_EXTENTS + 1),
				 sizeof(u64), GFP_KERNEL);
	struct gmfs_image img;
	unsigned int i;
	int len;

	KUNIT_ASSERT_NOT_NULL(test, val);
	for (i = 0; i <= GMFS_MAX_EXTENTS; i++) {
		val[2 * i] = (u64)(i + 1) * SZ_1G;
		val[2 * i + 1] = SZ_2M;
	}
	image_init(test, &img);
	len = 2 * GMFS_MAX_EXTENTS * sizeof(u64);
	KUNIT_EXPECT_TRUE(test, gmfs_check_extents(img.r, val, len));
	KUNIT_EXPECT_EQ(test, img.r->nr_extents, GMFS_MAX_EXTENTS);
	len = 2 * (GMFS_MAX_EXTENTS + 1) * sizeof(u64);
	KUNIT_EXPECT_FALSE(test, gmfs_check_extents(img.r, val, len));
}

static struct kunit_case gmfs_restore_cases[] = {
	KUNIT_CASE_PARAM(gmfs_kunit_damage, gmfs_damage_gen_params),
	KUNIT_CASE(gmfs_kunit_blocks),
	KUNIT_CASE(gmfs_kunit_holes),
	KUNIT_CASE(gmfs_kunit_bad),
	KUNIT_CASE_PARAM(gmfs_kunit_extents, gmfs_extents_gen_params),
	KUNIT_CASE(gmfs_kunit_extents_max),
	{}
};

static struct kunit_suite gmfs_restore_suite = {
	.name = "guestmemfs_restore",
	.test_cases = gmfs_restore_cases,
};

kunit_test_suite(gmfs_restore_suite);

MODULE_DESCRIPTION("KUnit tests of the guestmemfs restore checks");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
