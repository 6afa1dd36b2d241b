// SPDX-License-Identifier: GPL-2.0-only
/*
 * Persistent IOMMU domains: IOMMU_HWPT_LU_SET_PRESERVE, IOMMU_HWPT_LU_RESTORE
 * and the replace of an inherited IOMMU_DOMAIN_PKERNFS domain, with the mock
 * IOMMU of CONFIG_IOMMUFD_TEST playing the live update within one kernel:
 * the "old VMM" marks a HWPT on one iommufd, the test driver preserves it as
 * a kexec would and makes a device that is in the inherited domain, and the
 * "new VMM" binds that device on another iommufd, restores and replaces.
 *
 * Needs guestmemfs, mounted at $GUESTMEMFS_DIR or here.
 */
#include "iommufd_file_utils.h"

#define FILE_SIZE (8 * MiB)
#define HALF (FILE_SIZE / 2)
/* The first half of the file, read-write; the second, read-only */
#define IOVA_RW (64 * MiB)
#define IOVA_RO (128 * MiB)
#define RO (IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE)

static int set_preserve(int fd, __u32 hwpt_id, __u64 token, __u32 flags)
{
	struct iommu_hwpt_lu_set_preserve cmd = {
		.size = sizeof(cmd),
		.hwpt_id = hwpt_id,
		.hwpt_token = token,
		.flags = flags,
	};

	return ioctl(fd, IOMMU_HWPT_LU_SET_PRESERVE, &cmd);
}

static int restore(int fd, __u64 token, __u32 *hwpt_id)
{
	struct iommu_hwpt_lu_restore cmd = {
		.size = sizeof(cmd),
		.hwpt_token = token,
	};
	int ret = ioctl(fd, IOMMU_HWPT_LU_RESTORE, &cmd);

	*hwpt_id = cmd.out_hwpt_id;
	return ret;
}

static int lu_op(int fd, __u32 op, __u32 id, __u64 token, __u32 pt_id,
		 struct iommu_test_cmd *out)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = op,
		.id = id,
		.lu = { .token = token, .pt_id = pt_id },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (out)
		*out = cmd;
	return ret;
}

/* Is the mock device attached to the domain of the HWPT? 0 if it is */
static int dev_in(int fd, __u32 stdev, __u32 hwpt)
{
	return lu_op(fd, IOMMU_TEST_OP_LU_CHECK_DOMAIN, stdev, 0, hwpt, NULL);
}

/* A nesting parent HWPT on an IOAS, for a new mock device */
static int nest_parent_alloc(int fd, __u32 ioas, __u32 *hwpt_id)
{
	struct iommu_test_cmd md = {
		.size = sizeof(md),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = ioas,
	};
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
		.pt_id = ioas,
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &md);

	if (ret)
		return ret;
	cmd.dev_id = md.mock_domain_flags.out_idev_id;
	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	*hwpt_id = cmd.out_hwpt_id;
	return ret;
}

/* The test driver's inherited domains that still exist */
static unsigned int lu_domains(int fd)
{
	struct iommu_test_cmd cmd;

	if (lu_op(fd, IOMMU_TEST_OP_LU_DOMAINS, 0, 0, 0, &cmd))
		return -1U;
	return cmd.lu.out_count;
}

/* Map the file as the old VMM did: half read-write, half read-only */
static int map_both(int fd, __u32 ioas, int mfd)
{
	__u64 iova = IOVA_RW;

	if (map_file(fd, ioas, mfd, 0, HALF, &iova, FIXED))
		return -1;
	iova = IOVA_RO;
	return map_file(fd, ioas, mfd, HALF, HALF, &iova, RO);
}

FIXTURE(lu)
{
	int fd;		/* the old VMM's iommufd */
	int fd2;	/* the new VMM's */
	__u32 ioas, stdev, hwpt;
	int mfd;
	char *mem;
	char path[300];
	__u64 token;
	unsigned int domains;
	bool finalized;	/* a failed test must not leave KHO finalized */
};

FIXTURE_SETUP(lu)
{
	const char *dir = gmfs_mount_dir();
	size_t i;

	self->fd2 = -1;
	self->mem = MAP_FAILED;
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd);
	self->domains = lu_domains(self->fd);
	if (!dir)
		SKIP(return, "no guestmemfs (boot with guestmemfs=SIZE)");
	snprintf(self->path, sizeof(self->path), "%s/lu.%d", dir, getpid());
	self->mfd = open(self->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, self->mfd);
	ASSERT_EQ(0, ftruncate(self->mfd, FILE_SIZE));
	self->mem = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->mfd, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	for (i = 0; i < FILE_SIZE; i += PAGE_SIZE)
		self->mem[i] = (char)(i / PAGE_SIZE + 7);
	/* A per-test token: a test that fails must not block the next */
	self->token = 0x1000000000000000ULL | ((__u64)getpid() << 8);

	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas));
	ASSERT_EQ(0, map_both(self->fd, self->ioas, self->mfd));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas,
				 MOCK_FLAGS_DEVICE_HUGE_IOVA, &self->stdev,
				 &self->hwpt));
}

static int kho_finalize(bool on);

FIXTURE_TEARDOWN(lu)
{
	if (self->finalized)
		kho_finalize(false);
	if (self->fd2 >= 0)
		close(self->fd2);
	if (self->fd >= 0)
		close(self->fd);
	if (self->mem != MAP_FAILED)
		munmap(self->mem, FILE_SIZE);
	if (self->path[0]) {
		close(self->mfd);
		unlink(self->path);
	}
}

/* Both halves of the file translate through @hwpt as they did before */
static int check_both(int fd, __u32 hwpt, char *mem)
{
	return check_map(fd, hwpt, IOVA_RW, mem, HALF) ?:
	       check_map(fd, hwpt, IOVA_RO, mem + HALF, HALF);
}

/*
 * The old VMM marks its HWPT, the update is played, and the new VMM binds
 * the device, which is in the inherited domain: returns its HWPT.
 */
static void live_update(struct __test_metadata *_metadata,
			struct _test_data_lu *self, __u32 *stdev2, __u32 *pk)
{
	struct iommu_test_cmd out;

	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token, 0));
	ASSERT_EQ(0, lu_op(self->fd, IOMMU_TEST_OP_LU_PRESERVE, self->hwpt,
			   0, 0, NULL));
	ASSERT_EQ(self->domains + 1, lu_domains(self->fd));
	self->fd2 = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd2);
	ASSERT_EQ(0, lu_op(self->fd2, IOMMU_TEST_OP_LU_BIND, 0, self->token,
			   0, &out));
	*stdev2 = out.lu.out_stdev_id;
	ASSERT_EQ(0, restore(self->fd2, self->token, pk));
	/* Bound in the inherited domain, not moved to a blocking one */
	ASSERT_EQ(0, dev_in(self->fd2, *stdev2, *pk));
}

TEST_F(lu, mark_errors)
{
	struct iommu_hwpt_lu_set_preserve bad = {
		.size = sizeof(bad),
		.hwpt_id = self->hwpt,
		.hwpt_token = self->token,
	};
	__u32 ioas2, stdev2, hwpt2;
	__u64 iova = IOVA_RW;
	int memfd;

	/* Not a paging HWPT; no such object; unknown flags; reserved bits */
	EXPECT_ERRNO(EINVAL, set_preserve(self->fd, self->ioas, self->token, 0));
	EXPECT_ERRNO(ENOENT, set_preserve(self->fd, 0xffff, self->token, 0));
	EXPECT_ERRNO(EOPNOTSUPP, set_preserve(self->fd, self->hwpt,
					      self->token, 1U << 31));
	bad.__reserved = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_HWPT_LU_SET_PRESERVE,
				       &bad));
	/* Unmarking what is not marked; a token given to unmark */
	EXPECT_ERRNO(EINVAL, set_preserve(self->fd, self->hwpt, 0,
					  IOMMU_HWPT_LU_UNMARK));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token, 0));
	EXPECT_ERRNO(EINVAL, set_preserve(self->fd, self->hwpt, self->token,
					  IOMMU_HWPT_LU_UNMARK));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, 0,
				  IOMMU_HWPT_LU_UNMARK));
	/* What nested domains translate through is not handed over */
	ASSERT_EQ(0, nest_parent_alloc(self->fd, self->ioas, &hwpt2));
	EXPECT_ERRNO(EOPNOTSUPP, set_preserve(self->fd, hwpt2, self->token,
					      0));
	ASSERT_EQ(0, destroy(self->fd, hwpt2));

	/* An IOAS with memory that does not survive the update */
	memfd = memfd_create("lu", 0);
	ASSERT_LE(0, memfd);
	ASSERT_EQ(0, ftruncate(memfd, HALF));
	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, map_file(self->fd, ioas2, memfd, 0, HALF, &iova, FIXED));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, 0, &stdev2, &hwpt2));
	EXPECT_ERRNO(EINVAL, set_preserve(self->fd, hwpt2, self->token, 0));
	/* Nothing was marked: it still changes */
	ASSERT_EQ(0, unmap(self->fd, ioas2, IOVA_RW, HALF, NULL));
	close(memfd);

	/* A token in use by another HWPT */
	ASSERT_EQ(0, map_both(self->fd, ioas2, self->mfd));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token, 0));
	EXPECT_ERRNO(EADDRINUSE, set_preserve(self->fd, hwpt2, self->token, 0));
	/* Marking again moves the HWPT to a new token, freeing the old */
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token + 1, 0));
	ASSERT_EQ(0, set_preserve(self->fd, hwpt2, self->token, 0));
	ASSERT_EQ(0, set_preserve(self->fd, hwpt2, 0, IOMMU_HWPT_LU_UNMARK));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, 0,
				  IOMMU_HWPT_LU_UNMARK));
	ASSERT_EQ(0, destroy(self->fd, stdev2));
}

#define KHO_FINALIZE "/sys/kernel/debug/kho/out/finalize"

/* Move a mock device to another HWPT (or an IOAS's), as VMMs replace */
static int replace(int fd, __u32 stdev, __u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

static int kho_finalize(bool on)
{
	int fd = open(KHO_FINALIZE, O_WRONLY), rc;

	if (fd < 0)
		return -1;
	rc = write(fd, on ? "1" : "0", 1) == 1 ? 0 : -1;
	close(fd);
	return rc;
}

/*
 * Once the kexec handover is finalized, what it hands over stays as it
 * was: no marking or unmarking, no device leaves or joins a HWPT handed
 * over. Abort gives it all back.
 */
TEST_F(lu, finalize_freezes)
{
	__u32 ioas2, stdev2, hwpt2;

	if (access(KHO_FINALIZE, W_OK))
		SKIP(return, "no KHO (boot with kho=on)");
	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, map_both(self->fd, ioas2, self->mfd));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, MOCK_FLAGS_DEVICE_HUGE_IOVA,
				 &stdev2, &hwpt2));
	ASSERT_NE(self->hwpt, hwpt2);
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token, 0));
	ASSERT_EQ(0, kho_finalize(true));
	self->finalized = true;

	EXPECT_ERRNO(EBUSY, set_preserve(self->fd, self->hwpt, 0,
					 IOMMU_HWPT_LU_UNMARK));
	EXPECT_ERRNO(EBUSY, set_preserve(self->fd, self->hwpt,
					 self->token + 1, 0));
	EXPECT_ERRNO(EBUSY, set_preserve(self->fd, hwpt2, self->token + 1, 0));
	EXPECT_ERRNO(EBUSY, replace(self->fd, self->stdev, hwpt2));
	EXPECT_ERRNO(EBUSY, replace(self->fd, self->stdev, ioas2));
	EXPECT_ERRNO(EBUSY, replace(self->fd, stdev2, self->hwpt));
	/* A HWPT that is not handed over changes as before */
	ASSERT_EQ(0, unmap(self->fd, ioas2, IOVA_RO, HALF, NULL));
	ASSERT_EQ(0, dev_in(self->fd, self->stdev, self->hwpt));
	ASSERT_EQ(0, dev_in(self->fd, stdev2, hwpt2));

	ASSERT_EQ(0, kho_finalize(false));
	self->finalized = false;
	ASSERT_EQ(0, replace(self->fd, stdev2, self->hwpt));
	ASSERT_EQ(0, dev_in(self->fd, stdev2, self->hwpt));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, 0,
				  IOMMU_HWPT_LU_UNMARK));
	ASSERT_EQ(0, destroy(self->fd, stdev2));
}

/* A marked HWPT's IOAS cannot change, until it is unmarked or destroyed */
TEST_F(lu, immutable)
{
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = FIXED,
		.src_iova = IOVA_RW,
		.length = HALF,
		.dst_iova = 256 * MiB,
	};
	__u32 ioas2, stdev2, hwpt2;
	__u64 iova = 256 * MiB;

	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token, 0));
	EXPECT_ERRNO(EBUSY, map_file(self->fd, self->ioas, self->mfd, 0, HALF,
				     &iova, FIXED));
	EXPECT_ERRNO(EBUSY, unmap(self->fd, self->ioas, IOVA_RW, HALF, NULL));
	EXPECT_ERRNO(EBUSY, unmap(self->fd, self->ioas, 0, UINT64_MAX, NULL));
	copy.src_ioas_id = self->ioas;
	copy.dst_ioas_id = self->ioas;
	EXPECT_ERRNO(EBUSY, ioctl(self->fd, IOMMU_IOAS_COPY, &copy));
	/* Copying out of it is fine */
	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	copy.dst_ioas_id = ioas2;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &copy));
	ASSERT_EQ(0, check_both(self->fd, self->hwpt, self->mem));

	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, 0,
				  IOMMU_HWPT_LU_UNMARK));
	ASSERT_EQ(0, map_file(self->fd, self->ioas, self->mfd, 0, HALF, &iova,
			      FIXED));
	ASSERT_EQ(0, unmap(self->fd, self->ioas, iova, HALF, NULL));

	/*
	 * A destroyed HWPT is unmarked, and its token free: the automatic
	 * HWPT of a device on an IOAS of its own goes with the device.
	 */
	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	ASSERT_EQ(0, map_both(self->fd, ioas2, self->mfd));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, 0, &stdev2, &hwpt2));
	ASSERT_NE(self->hwpt, hwpt2);
	ASSERT_EQ(0, set_preserve(self->fd, hwpt2, self->token, 0));
	ASSERT_EQ(0, destroy(self->fd, stdev2));
	EXPECT_ERRNO(ENOENT, destroy(self->fd, hwpt2));
	ASSERT_EQ(0, unmap(self->fd, ioas2, 0, UINT64_MAX, NULL));
	ASSERT_EQ(0, map_file(self->fd, self->ioas, self->mfd, 0, HALF, &iova,
			      FIXED));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, self->token, 0));
	ASSERT_EQ(0, set_preserve(self->fd, self->hwpt, 0,
				  IOMMU_HWPT_LU_UNMARK));
}

/*
 * The whole cycle: mark, update, restore, translation through the
 * inherited domain while the old VMM is gone, replace, destroy.
 */
TEST_F(lu, restore_replace)
{
	__u32 stdev2, pk, pk2, ioas2, hwpt2;
	struct iommu_test_cmd out;

	live_update(_metadata, self, &stdev2, &pk);
	/* The device translates through the inherited domain */
	ASSERT_EQ(0, check_both(self->fd2, pk, self->mem));
	/* Restore is idempotent; other tokens, flags, and iommufds fail */
	ASSERT_EQ(0, restore(self->fd2, self->token, &pk2));
	ASSERT_EQ(pk, pk2);
	EXPECT_ERRNO(ENOENT, restore(self->fd2, self->token + 1, &pk2));
	EXPECT_ERRNO(ENOENT, restore(self->fd, self->token, &pk2));
	{
		struct iommu_hwpt_lu_restore cmd = {
			.size = sizeof(cmd),
			.flags = 1,
			.hwpt_token = self->token,
		};

		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd2, IOMMU_HWPT_LU_RESTORE, &cmd));
	}
	/* The inherited HWPT cannot be mapped into: it has no IOAS */
	EXPECT_ERRNO(ENOENT, map_both(self->fd2, pk, self->mfd));

	/* The old VMM exits: the domain and its memory stay */
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(0, check_both(self->fd2, pk, self->mem));

	/* The new VMM rebuilds its IOAS; the device's first attach replaces */
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	ASSERT_EQ(0, map_both(self->fd2, ioas2, self->mfd));
	ASSERT_EQ(0, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2, 0,
			   ioas2, &out));
	hwpt2 = out.lu.pt_id;
	ASSERT_NE(pk, hwpt2);
	ASSERT_EQ(0, dev_in(self->fd2, stdev2, hwpt2));
	ASSERT_EQ(0, check_both(self->fd2, hwpt2, self->mem));
	/* Until it is destroyed, the inherited domain is still there */
	ASSERT_EQ(self->domains + 1, lu_domains(self->fd2));
	ASSERT_EQ(0, destroy(self->fd2, pk));
	ASSERT_EQ(self->domains, lu_domains(self->fd2));
	EXPECT_ERRNO(ENOENT, restore(self->fd2, self->token, &pk2));
}

/*
 * A replace by a HWPT that does not map all the inherited domain does, to
 * the same memory, with its permissions, is refused and changes nothing.
 */
TEST_F(lu, replace_mismatch)
{
	__u32 stdev2, pk, ioas2, other_pk;
	struct iommu_test_cmd out;
	char path[300];
	__u64 iova;
	int other;

	live_update(_metadata, self, &stdev2, &pk);

	/* A range missing */
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	iova = IOVA_RW;
	ASSERT_EQ(0, map_file(self->fd2, ioas2, self->mfd, 0, HALF, &iova,
			      FIXED));
	EXPECT_ERRNO(EINVAL, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2,
				   0, ioas2, NULL));
	ASSERT_EQ(0, check_both(self->fd2, pk, self->mem));

	/* Fewer permissions: the read-write half mapped read-only */
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	iova = IOVA_RW;
	ASSERT_EQ(0, map_file(self->fd2, ioas2, self->mfd, 0, HALF, &iova, RO));
	iova = IOVA_RO;
	ASSERT_EQ(0, map_file(self->fd2, ioas2, self->mfd, HALF, HALF, &iova,
			      RO));
	EXPECT_ERRNO(EINVAL, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2,
				   0, ioas2, NULL));

	/* Other memory at the same IOVAs: another file */
	snprintf(path, sizeof(path), "%s.other", self->path);
	other = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, other);
	unlink(path);
	ASSERT_EQ(0, ftruncate(other, FILE_SIZE));
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	ASSERT_EQ(0, map_both(self->fd2, ioas2, other));
	EXPECT_ERRNO(EINVAL, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2,
				   0, ioas2, NULL));
	/* The same file shifted: other memory too */
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	iova = IOVA_RW;
	ASSERT_EQ(0, map_file(self->fd2, ioas2, self->mfd, BLOCK, HALF, &iova,
			      FIXED));
	iova = IOVA_RO;
	ASSERT_EQ(0, map_file(self->fd2, ioas2, self->mfd, HALF, HALF, &iova,
			      RO));
	EXPECT_ERRNO(EINVAL, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2,
				   0, ioas2, NULL));
	close(other);

	/* Nothing changed: still in the inherited domain */
	ASSERT_EQ(0, restore(self->fd2, self->token, &other_pk));
	ASSERT_EQ(pk, other_pk);
	ASSERT_EQ(0, dev_in(self->fd2, stdev2, pk));
	ASSERT_EQ(0, check_both(self->fd2, pk, self->mem));

	/* More than the old domain mapped is fine */
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	ASSERT_EQ(0, map_both(self->fd2, ioas2, self->mfd));
	iova = 256 * MiB;
	ASSERT_EQ(0, map_file(self->fd2, ioas2, self->mfd, 0, FILE_SIZE, &iova,
			      FIXED));
	ASSERT_EQ(0, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2, 0,
			   ioas2, &out));
	ASSERT_EQ(0, dev_in(self->fd2, stdev2, out.lu.pt_id));
	ASSERT_NE(0, dev_in(self->fd2, stdev2, pk));
	ASSERT_EQ(0, check_both(self->fd2, out.lu.pt_id, self->mem));
}

/*
 * The memory an inherited domain reaches stays allocated, even when its
 * file is removed and every other user is gone, until the domain goes.
 */
TEST_F(lu, memory_held)
{
	const char *dir = gmfs_mount_dir();
	unsigned long before, used = FILE_SIZE / BLOCK;
	__u32 stdev2, pk, ioas2;
	struct iommu_test_cmd out;
	int keep;

	before = free_blocks(dir);
	/* The new VMM gets the file by descriptor, as a VMM would */
	keep = dup(self->mfd);
	ASSERT_LE(0, keep);
	live_update(_metadata, self, &stdev2, &pk);
	ASSERT_EQ(0, unlink(self->path));
	self->path[0] = 0;
	close(self->mfd);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(before, free_blocks(dir));
	ASSERT_EQ(0, check_both(self->fd2, pk, self->mem));

	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	ASSERT_EQ(0, map_both(self->fd2, ioas2, keep));
	ASSERT_EQ(0, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2, 0,
			   ioas2, &out));
	close(keep);
	ASSERT_EQ(0, munmap(self->mem, FILE_SIZE));
	self->mem = MAP_FAILED;
	/* The new HWPT and the inherited domain both hold the file */
	ASSERT_EQ(0, destroy(self->fd2, pk));
	ASSERT_EQ(before, free_blocks(dir));
	ASSERT_EQ(0, destroy(self->fd2, stdev2));
	ASSERT_EQ(0, unmap(self->fd2, ioas2, 0, UINT64_MAX, NULL));
	ASSERT_EQ(before + used, free_blocks(dir));
}

/*
 * The new VMM goes away before it replaces the domain: the device stays in
 * it, translating, and the next VMM takes it over.
 */
TEST_F(lu, vmm_restart)
{
	__u32 stdev2, pk, ioas2;
	struct iommu_test_cmd out;

	live_update(_metadata, self, &stdev2, &pk);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(0, close(self->fd2));
	self->fd2 = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, self->fd2);
	ASSERT_EQ(self->domains + 1, lu_domains(self->fd2));
	/* Not restorable until its device is bound here */
	EXPECT_ERRNO(ENOENT, restore(self->fd2, self->token, &pk));
	ASSERT_EQ(0, lu_op(self->fd2, IOMMU_TEST_OP_LU_BIND, 0, self->token,
			   0, &out));
	stdev2 = out.lu.out_stdev_id;
	ASSERT_EQ(0, restore(self->fd2, self->token, &pk));
	ASSERT_EQ(0, check_both(self->fd2, pk, self->mem));
	ASSERT_EQ(0, ioas_alloc(self->fd2, &ioas2));
	ASSERT_EQ(0, map_both(self->fd2, ioas2, self->mfd));
	ASSERT_EQ(0, lu_op(self->fd2, IOMMU_TEST_OP_LU_ATTACH, stdev2, 0,
			   ioas2, &out));
	ASSERT_EQ(0, destroy(self->fd2, pk));
	ASSERT_EQ(self->domains, lu_domains(self->fd2));
}

/* Fault injection over marking, preserving, binding, restoring, replacing */
struct lu_seq {
	int mfd;
	char *mem;
	__u64 token;
};

static int lu_sequence(void *arg)
{
	struct lu_seq *s = arg;
	__u32 ioas, stdev, hwpt, pk, ioas2;
	struct iommu_test_cmd out;
	int fd, fd2 = -1, ret = -1;

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		return -1;
	if (ioas_alloc(fd, &ioas) || map_both(fd, ioas, s->mfd) ||
	    mock_domain(fd, ioas, 0, &stdev, &hwpt) ||
	    set_preserve(fd, hwpt, s->token, 0) ||
	    lu_op(fd, IOMMU_TEST_OP_LU_PRESERVE, hwpt, 0, 0, NULL))
		goto out;
	fd2 = open("/dev/iommu", O_RDWR);
	if (fd2 < 0)
		goto out;
	/* From here on the device exists, in the inherited domain */
	if (lu_op(fd2, IOMMU_TEST_OP_LU_BIND, 0, s->token, 0, &out))
		goto out_discard;
	stdev = out.lu.out_stdev_id;
	if (restore(fd2, s->token, &pk) || ioas_alloc(fd2, &ioas2) ||
	    map_both(fd2, ioas2, s->mfd) ||
	    lu_op(fd2, IOMMU_TEST_OP_LU_ATTACH, stdev, 0, ioas2, NULL) ||
	    destroy(fd2, pk))
		goto out;
	ret = 0;
out:
	if (fd2 >= 0)
		close(fd2);
out_discard:
	/* A device left unbound, in its domain, would keep the token */
	lu_op(fd, IOMMU_TEST_OP_LU_DISCARD, 0, s->token, 0, NULL);
	close(fd);
	return ret;
}

FIXTURE(lu_fail_nth)
{
};

FIXTURE_SETUP(lu_fail_nth)
{
}

FIXTURE_TEARDOWN(lu_fail_nth)
{
}

TEST_F_TIMEOUT(lu_fail_nth, cycle, 900)
{
	const char *dir = gmfs_mount_dir();
	char path[300];
	unsigned long blocks;
	unsigned int domains;
	struct lu_seq s;
	int fd;

	if (!dir)
		SKIP(return, "no guestmemfs (boot with guestmemfs=SIZE)");
	fd = open("/dev/iommu", O_RDWR);
	ASSERT_LE(0, fd);
	domains = lu_domains(fd);
	snprintf(path, sizeof(path), "%s/lu_nth.%d", dir, getpid());
	s.mfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, s.mfd);
	unlink(path);
	ASSERT_EQ(0, ftruncate(s.mfd, FILE_SIZE));
	blocks = free_blocks(dir);
	s.token = 0x2000000000000000ULL | ((__u64)getpid() << 8);
	fail_nth_sweep(_metadata, lu_sequence, &s);
	/*
	 * Every run cleaned up after itself: no device left waiting, no
	 * inherited domain left, no block held by a stray pin.
	 */
	EXPECT_ERRNO(ENOENT, lu_op(fd, IOMMU_TEST_OP_LU_DISCARD, 0, s.token, 0,
				   NULL));
	ASSERT_EQ(domains, lu_domains(fd));
	ASSERT_EQ(blocks, free_blocks(dir));
	close(fd);
	close(s.mfd);
}

TEST_HARNESS_MAIN
