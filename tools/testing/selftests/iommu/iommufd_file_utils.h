/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers of the iommufd selftests of file mappings (memfds, guestmemfs)
 * and of live update, with the mock IOMMU of CONFIG_IOMMUFD_TEST.
 *
 * Not iommufd_utils.h: in 6.12.y it uses uAPI that 6.12 does not have
 * (struct iommu_hw_info's input type), so it does not build here.
 */
#ifndef __SELFTEST_IOMMUFD_FILE_UTILS_H
#define __SELFTEST_IOMMUFD_FILE_UTILS_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/magic.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "../../../../drivers/iommu/iommufd/iommufd_test.h"

static unsigned long PAGE_SIZE;

#define EXPECT_ERRNO(expected_errno, cmd)         \
	({                                        \
		ASSERT_EQ(-1, cmd);               \
		EXPECT_EQ(expected_errno, errno); \
	})

static int ioas_alloc(int fd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);

	*id = cmd.out_ioas_id;
	return ret;
}

static int destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

/* A mock device, and the mock domain it is attached to, on an IOAS */
static int mock_domain(int fd, __u32 ioas_id, __u32 dev_flags,
		       __u32 *stdev_id, __u32 *hwpt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = ioas_id,
		.mock_domain_flags = { .dev_flags = dev_flags },
	};
	int ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);

	*stdev_id = cmd.mock_domain_flags.out_stdev_id;
	*hwpt_id = cmd.mock_domain_flags.out_hwpt_id;
	return ret;
}

static int map_file(int fd, __u32 ioas_id, int mfd, __u64 start,
		    __u64 length, __u64 *iova, __u32 flags)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.fd = mfd,
		.start = start,
		.length = length,
		.iova = *iova,
	};
	int ret = ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);

	*iova = cmd.iova;
	return ret;
}

static int map_user(int fd, __u32 ioas_id, void *uptr, __u64 length,
		    __u64 *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)uptr,
		.length = length,
	};
	int ret = ioctl(fd, IOMMU_IOAS_MAP, &cmd);

	*iova = cmd.iova;
	return ret;
}

static int unmap(int fd, __u32 ioas_id, __u64 iova, __u64 length,
		 __u64 *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int ret = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);

	if (unmapped)
		*unmapped = cmd.length;
	return ret;
}

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#ifndef GUESTMEMFS_MAGIC
#define GUESTMEMFS_MAGIC 0x474d4653
#endif

#define MiB (1024UL * 1024)
#define BLOCK (2 * MiB)	/* guestmemfs's block, and the huge page size */
#define RW (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)
#define FIXED (IOMMU_IOAS_MAP_FIXED_IOVA | RW)

static char gmfs_dir[256];

static __attribute__((constructor)) void setup_sizes(void)
{
	PAGE_SIZE = sysconf(_SC_PAGE_SIZE);
}

/* A mounted guestmemfs, or NULL if this kernel has none. */
static const char *gmfs_mount_dir(void)
{
	const char *env = getenv("GUESTMEMFS_DIR");
	struct statfs sfs;

	if (gmfs_dir[0])
		return gmfs_dir;
	if (env) {
		snprintf(gmfs_dir, sizeof(gmfs_dir), "%s", env);
		return gmfs_dir;
	}
	snprintf(gmfs_dir, sizeof(gmfs_dir), "/tmp/iommufd-guestmemfs");
	mkdir(gmfs_dir, 0755);
	if (statfs(gmfs_dir, &sfs) == 0 && sfs.f_type == GUESTMEMFS_MAGIC)
		return gmfs_dir;
	if (mount("none", gmfs_dir, "guestmemfs", 0, NULL)) {
		gmfs_dir[0] = 0;
		return NULL;
	}
	return gmfs_dir;
}

static unsigned long free_blocks(const char *dir)
{
	struct statfs sfs;

	if (statfs(dir, &sfs))
		return -1UL;
	return sfs.f_bfree;
}

/* Every pfn under [iova, iova + length) is the one under the user VA. */
static int check_map(int fd, __u32 hwpt_id, __u64 iova, void *uptr,
		     size_t length)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = hwpt_id,
		.check_map = { .iova = iova,
			       .length = length,
			       .uptr = (uintptr_t)uptr },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/*
 * Let every fault site fail sleeping allocations too, and keep them from
 * logging a stack trace for each failure: only real splats must show.
 */
static void fault_injection_setup(void)
{
	static const char * const knobs[][2] = {
		{ "failslab/ignore-gfp-wait", "N" },
		{ "fail_page_alloc/ignore-gfp-wait", "N" },
		{ "fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "failslab/verbose", "0" },
		{ "fail_page_alloc/verbose", "0" },
		{ "fail_iommufd/verbose", "0" },
		{ "fail_usercopy/verbose", "0" },
		{ "fail_futex/verbose", "0" },
	};
	char path[128];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		int fd;

		snprintf(path, sizeof(path), "/sys/kernel/debug/%s", knobs[i][0]);
		fd = open(path, O_WRONLY);
		if (fd < 0)
			continue;
		if (write(fd, knobs[i][1], strlen(knobs[i][1])) < 0)
			perror(path);
		close(fd);
	}
}

/*
 * Run @seq with the Nth fault site of this task failing, for N = 1, 2, ...
 * until it runs through without reaching the Nth site. Every run must fail
 * cleanly or succeed; the kernel log (KASAN, lockdep, WARN) is the real
 * verdict.
 */
static void fail_nth_sweep(struct __test_metadata *_metadata,
			   int (*seq)(void *arg), void *arg)
{
	char path[64], buf[32];
	unsigned int nth;
	int nth_fd, ok = 0, failed = 0;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	nth_fd = open(path, O_RDWR);
	if (nth_fd < 0)
		SKIP(return, "no fault injection (CONFIG_FAULT_INJECTION)");
	fault_injection_setup();
	/* The sequence must work without faults first */
	ASSERT_EQ(0, seq(arg));
	for (nth = 1; nth < 1000; nth++) {
		int ret;

		len = snprintf(buf, sizeof(buf), "%u", nth);
		ASSERT_EQ(len, pwrite(nth_fd, buf, len, 0));
		ret = seq(arg);
		/* What is left of the count: 0 once the fault was injected */
		len = pread(nth_fd, buf, sizeof(buf) - 1, 0);
		ASSERT_LT(0, len);
		buf[len] = 0;
		ASSERT_EQ(1, pwrite(nth_fd, "0", 1, 0));
		if (atoi(buf)) {
			/* Ran through: no Nth fault site left */
			ASSERT_EQ(0, ret);
			break;
		}
		if (ret)
			failed++;
		else
			ok++;
	}
	ASSERT_GT(1000, nth);
	printf("# %u fault sites: %d runs failed cleanly, %d recovered\n",
	       nth - 1, failed, ok);
	close(nth_fd);
}

#endif /* __SELFTEST_IOMMUFD_FILE_UTILS_H */
