// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_IOAS_MAP_FILE of memfds (shmem and hugetlbfs) and of guestmemfs
 * files, checked through the mock IOMMU of CONFIG_IOMMUFD_TEST.
 *
 * guestmemfs is mounted at $GUESTMEMFS_DIR, or here at a directory of our
 * own; its variants are skipped on a kernel booted without guestmemfs=.
 * The hugetlbfs variant needs four free 2 MiB huge pages.
 */
#include "iommufd_file_utils.h"

#define FILE_SIZE (8 * MiB)
/* 2 MiB aligned, inside the mock aperture */
#define MAP_IOVA (64 * MiB)
enum { SHMEM, HUGETLB, GUESTMEMFS };

/* A file of @kind of FILE_SIZE bytes, or -1 (errno set) */
static int make_file(int kind, char *path, size_t path_len)
{
	const char *dir;
	int fd = -1;

	path[0] = 0;
	switch (kind) {
	case SHMEM:
		fd = memfd_create("iommufd-map-file", 0);
		break;
	case HUGETLB:
		fd = memfd_create("iommufd-map-file", MFD_HUGETLB | MFD_HUGE_2MB);
		break;
	case GUESTMEMFS:
		dir = gmfs_mount_dir();
		if (!dir) {
			errno = ENODEV;
			return -1;
		}
		snprintf(path, path_len, "%s/map_file.%d", dir, getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		break;
	}
	if (fd >= 0 && ftruncate(fd, FILE_SIZE)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * How many bytes of [iova, iova + length) the mock maps with IOPTEs larger
 * than its smallest, and with 2 MiB and 1 GiB ones in particular
 */
struct iopte_sizes {
	__u64 huge, pmd, pud;
};

static struct iopte_sizes iopte_sizes(struct __test_metadata *_metadata,
				      int fd, __u32 hwpt_id, __u64 iova,
				      size_t length)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_HUGE,
		.id = hwpt_id,
		.check_huge = { .iova = iova, .length = length },
	};
	struct iopte_sizes sz = {};

	EXPECT_EQ(0, ioctl(fd, IOMMU_TEST_CMD, &cmd));
	sz.huge = cmd.check_huge.out_huge_bytes;
	sz.pmd = cmd.check_huge.out_pmd_bytes;
	sz.pud = cmd.check_huge.out_pud_bytes;
	return sz;
}

/* Fold the per-CPU vmstat deltas, then read a /proc/vmstat counter */
static long vmstat_read(const char *name)
{
	char line[128];
	size_t len = strlen(name);
	long v = -1;
	FILE *f;
	int fd;

	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			perror("stat_refresh");
		close(fd);
	}
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ' ')
			v = atol(line + len + 1);
	fclose(f);
	return v;
}

/* FOLL_PIN pins held now, over the whole system */
static long pins_held(void)
{
	return vmstat_read("nr_foll_pin_acquired") -
	       vmstat_read("nr_foll_pin_released");
}

FIXTURE(map_file)
{
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 hwpt_id;
	int mfd;
	char *mem;
	char path[300];
};

FIXTURE_VARIANT(map_file)
{
	int kind;
};

FIXTURE_VARIANT_ADD(map_file, shmem)
{
	.kind = SHMEM,
};

FIXTURE_VARIANT_ADD(map_file, hugetlb)
{
	.kind = HUGETLB,
};

FIXTURE_VARIANT_ADD(map_file, guestmemfs)
{
	.kind = GUESTMEMFS,
};

FIXTURE_SETUP(map_file)
{
	size_t i;

	self->mem = MAP_FAILED;
	self->fd = open("/dev/iommu", O_RDWR);
	ASSERT_NE(-1, self->fd);
	ASSERT_EQ(0, ioas_alloc(self->fd, &self->ioas_id));
	/* A device whose domain has 1 MiB IOPTEs besides 2 KiB ones */
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas_id,
				 MOCK_FLAGS_DEVICE_HUGE_IOVA, &self->stdev_id,
				 &self->hwpt_id)) {
		TH_LOG("mock domain: %s", strerror(errno));
	}

	self->mfd = make_file(variant->kind, self->path, sizeof(self->path));
	if (self->mfd < 0 && variant->kind == GUESTMEMFS && errno == ENODEV)
		SKIP(return, "no guestmemfs (boot with guestmemfs=SIZE)");
	if (self->mfd < 0 && variant->kind == HUGETLB)
		SKIP(return, "no 2 MiB huge pages for a memfd");
	ASSERT_LE(0, self->mfd);
	self->mem = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->mfd, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	/* Populate every page: the mock's check reads the CPU's mapping */
	for (i = 0; i < FILE_SIZE; i += PAGE_SIZE)
		self->mem[i] = (char)(i / PAGE_SIZE + 1);
}

FIXTURE_TEARDOWN(map_file)
{
	if (self->mem != MAP_FAILED)
		munmap(self->mem, FILE_SIZE);
	if (self->mfd >= 0)
		close(self->mfd);
	/*
	 * Destroys every object, unmapping and unpinning what is left: first,
	 * as a pinned guestmemfs file cannot be unlinked
	 */
	if (self->fd >= 0)
		close(self->fd);
	if (self->path[0])
		unlink(self->path);
}

/* Every page translated to the file's page, with the largest IOPTEs. */
TEST_F(map_file, map_check)
{
	__u64 iova = MAP_IOVA, huge, unmapped;

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, FIXED));
	ASSERT_EQ(MAP_IOVA, iova);
	ASSERT_EQ(0, check_map(self->fd, self->hwpt_id, MAP_IOVA, self->mem,
			       FILE_SIZE));
	huge = iopte_sizes(_metadata, self->fd, self->hwpt_id, MAP_IOVA,
			   FILE_SIZE).huge;
	/*
	 * hugetlbfs pages and guestmemfs blocks are 2 MiB, physically
	 * aligned, as is the IOVA: all of it is in the mock's 1 MiB IOPTEs.
	 */
	if (variant->kind != SHMEM)
		ASSERT_EQ(FILE_SIZE, huge);
	printf("# %llu of %lu bytes mapped with huge IOPTEs\n",
	       (unsigned long long)huge, FILE_SIZE);

	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE,
			   &unmapped));
	ASSERT_EQ(FILE_SIZE, unmapped);
	/* Nothing left mapped there */
	EXPECT_ERRNO(EINVAL, check_map(self->fd, self->hwpt_id, MAP_IOVA,
				       self->mem, PAGE_SIZE));

	/* A part of the file, at an IOVA the kernel chooses */
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd,
			      BLOCK + 4 * PAGE_SIZE, MiB, &iova, RW));
	ASSERT_EQ(0, check_map(self->fd, self->hwpt_id, iova,
			       self->mem + BLOCK + 4 * PAGE_SIZE, MiB));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, iova, MiB, NULL));

	/* The whole file at a chosen IOVA: aligned like the memory */
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, RW));
	if (variant->kind != SHMEM) {
		ASSERT_EQ(0, iova % BLOCK);
		ASSERT_EQ(FILE_SIZE, iopte_sizes(_metadata, self->fd,
						 self->hwpt_id, iova,
						 FILE_SIZE).huge);
	}
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, iova, FILE_SIZE, NULL));
}

/*
 * guestmemfs blocks mapped with 2 MiB and 1 GiB IOPTEs, by a mock device
 * with the large IOPTE sizes of x86: a 1 GiB file at a 1 GiB aligned IOVA,
 * then 64 MiB of it at an IOVA that is only 2 MiB aligned. The file gets a
 * 1 GiB aligned run when the carve-out has one free; GUESTMEMFS_EXPECT_PUD
 * says the test VM's has.
 */
/* The mock keeps an entry per 2 KiB: 1 GiB is slow under emulation */
TEST_F_TIMEOUT(map_file, large_iopte, 300)
{
	__u32 stdev, hwpt;
	struct iopte_sizes sz;
	char path[300];
	__u64 iova = 0;
	__u32 ioas;
	int fd;

	if (variant->kind != GUESTMEMFS)
		SKIP(return, "guestmemfs's 1 GiB runs");
	snprintf(path, sizeof(path), "%s/large.%d", gmfs_mount_dir(), getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	unlink(path);
	if (ftruncate(fd, 1024 * MiB))
		SKIP(close(fd); return, "no 1 GiB free in guestmemfs");

	/* An IOAS of its own: a new device would share an existing domain */
	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas));
	ASSERT_EQ(0, mock_domain(self->fd, ioas, MOCK_FLAGS_DEVICE_LARGE_IOVA,
				 &stdev, &hwpt));
	ASSERT_EQ(0, map_file(self->fd, ioas, fd, 0, 1024 * MiB, &iova, RW));
	sz = iopte_sizes(_metadata, self->fd, hwpt, iova, 1024 * MiB);
	printf("# 1 GiB at IOVA 0x%llx: %llu MiB in 1 GiB IOPTEs, %llu MiB in 2 MiB ones\n",
	       (unsigned long long)iova, (unsigned long long)sz.pud / MiB,
	       (unsigned long long)sz.pmd / MiB);
	/* The kernel chose an IOVA aligned like guestmemfs's 1 GiB runs */
	ASSERT_EQ(0, iova % (1024 * MiB));
	ASSERT_EQ(1024 * MiB, sz.pud + sz.pmd);
	if (getenv("GUESTMEMFS_EXPECT_PUD"))
		ASSERT_EQ(1024 * MiB, sz.pud);
	ASSERT_EQ(0, unmap(self->fd, ioas, iova, 1024 * MiB, NULL));

	/* 2 MiB aligned: no 1 GiB IOPTE can be used */
	iova = 1024 * MiB + BLOCK;
	ASSERT_EQ(0, map_file(self->fd, ioas, fd, 0, 64 * MiB, &iova, FIXED));
	sz = iopte_sizes(_metadata, self->fd, hwpt, iova, 64 * MiB);
	ASSERT_EQ(0, sz.pud);
	ASSERT_EQ(64 * MiB, sz.pmd);
	ASSERT_EQ(0, unmap(self->fd, ioas, iova, 64 * MiB, NULL));
	ASSERT_EQ(0, destroy(self->fd, stdev));
	close(fd);
}

/* A second domain filled from the first, and a copy to another IOAS */
TEST_F(map_file, second_domain_and_copy)
{
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = FIXED,
		.src_iova = MAP_IOVA,
		.length = FILE_SIZE,
		.dst_iova = MAP_IOVA,
	};
	__u32 stdev2, hwpt2, ioas2, stdev3, hwpt3;
	__u64 iova = MAP_IOVA;

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, FIXED));
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas_id, 0, &stdev2, &hwpt2));
	ASSERT_EQ(0, check_map(self->fd, hwpt2, MAP_IOVA, self->mem,
			       FILE_SIZE));

	ASSERT_EQ(0, ioas_alloc(self->fd, &ioas2));
	copy.src_ioas_id = self->ioas_id;
	copy.dst_ioas_id = ioas2;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &copy));
	ASSERT_EQ(0, mock_domain(self->fd, ioas2, 0, &stdev3, &hwpt3));
	ASSERT_EQ(0, check_map(self->fd, hwpt3, MAP_IOVA, self->mem,
			       FILE_SIZE));

	/* The copy keeps the memory mapped, and pinned, when the original goes */
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));
	ASSERT_EQ(0, check_map(self->fd, hwpt3, MAP_IOVA, self->mem,
			       FILE_SIZE));
	if (variant->kind == GUESTMEMFS)
		EXPECT_ERRNO(EBUSY, ftruncate(self->mfd, 0));
	ASSERT_EQ(0, destroy(self->fd, stdev3));
	ASSERT_EQ(0, destroy(self->fd, stdev2));
	ASSERT_EQ(0, unmap(self->fd, ioas2, MAP_IOVA, FILE_SIZE, NULL));
}

/* Each bad request fails with its own error and maps nothing. */
TEST_F(map_file, errors)
{
	__u64 iova = MAP_IOVA;
	int efd, rofd, wofd, closed;
	char proc[64];

	/* Not a file descriptor */
	closed = dup(self->mfd);
	ASSERT_LE(0, closed);
	close(closed);
	EXPECT_ERRNO(EBADF, map_file(self->fd, self->ioas_id, -1, 0,
				     FILE_SIZE, &iova, FIXED));
	EXPECT_ERRNO(EBADF, map_file(self->fd, self->ioas_id, closed, 0,
				     FILE_SIZE, &iova, FIXED));

	/* A file that is neither a memfd nor a guestmemfs file */
	efd = eventfd(0, 0);
	ASSERT_LE(0, efd);
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, efd, 0,
				      PAGE_SIZE, &iova, FIXED));
	close(efd);

	/* Empty, past the end of the file, unaligned, overflowing */
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, self->mfd, 0,
				      0, &iova, FIXED));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, self->mfd,
				      FILE_SIZE - PAGE_SIZE, 2 * PAGE_SIZE,
				      &iova, FIXED));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, self->mfd,
				      FILE_SIZE, PAGE_SIZE, &iova, FIXED));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, self->mfd, 1,
				      PAGE_SIZE, &iova, FIXED));
	EXPECT_ERRNO(EOVERFLOW, map_file(self->fd, self->ioas_id, self->mfd,
					 -1ULL, PAGE_SIZE, &iova, RW));
	/* start + length wraps to a small number */
	EXPECT_ERRNO(EOVERFLOW, map_file(self->fd, self->ioas_id, self->mfd,
					 2 * PAGE_SIZE, -2ULL * PAGE_SIZE,
					 &iova, RW));

	/* Flags: unknown, or neither read nor write */
	EXPECT_ERRNO(EOPNOTSUPP, map_file(self->fd, self->ioas_id, self->mfd,
					  0, PAGE_SIZE, &iova, RW | 1U << 31));
	EXPECT_ERRNO(EINVAL, map_file(self->fd, self->ioas_id, self->mfd, 0,
				      PAGE_SIZE, &iova, 0));

	/* No such IOAS */
	EXPECT_ERRNO(ENOENT, map_file(self->fd, 0, self->mfd, 0, PAGE_SIZE,
				      &iova, RW));

	/*
	 * A read-only descriptor: never writeable by the device. A memfd is
	 * readable; a guestmemfs pin needs write access whatever the device
	 * does, as it keeps the file's writers from shrinking it.
	 */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", self->mfd);
	rofd = open(proc, O_RDONLY);
	ASSERT_LE(0, rofd);
	EXPECT_ERRNO(EPERM, map_file(self->fd, self->ioas_id, rofd, 0,
				     FILE_SIZE, &iova, FIXED));
	iova = MAP_IOVA;
	if (variant->kind == GUESTMEMFS) {
		EXPECT_ERRNO(EPERM, map_file(self->fd, self->ioas_id, rofd, 0,
					     FILE_SIZE, &iova,
					     IOMMU_IOAS_MAP_FIXED_IOVA |
						     IOMMU_IOAS_MAP_READABLE));
		ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
				      FILE_SIZE, &iova, FIXED));
	} else {
		ASSERT_EQ(0, map_file(self->fd, self->ioas_id, rofd, 0,
				      FILE_SIZE, &iova,
				      IOMMU_IOAS_MAP_FIXED_IOVA |
					      IOMMU_IOAS_MAP_READABLE));
	}
	close(rofd);
	/* A write-only one: not readable by the device */
	wofd = open(proc, O_WRONLY);
	ASSERT_LE(0, wofd);
	EXPECT_ERRNO(EPERM, map_file(self->fd, self->ioas_id, wofd, 0,
				     PAGE_SIZE, &iova, FIXED));
	close(wofd);

	/* Taken IOVA */
	EXPECT_ERRNO(EEXIST, map_file(self->fd, self->ioas_id, self->mfd, 0,
				      PAGE_SIZE, &iova, FIXED));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));

	/* guestmemfs mappings are VM_PFNMAP: GUP cannot pin them */
	if (variant->kind == GUESTMEMFS)
		EXPECT_ERRNO(EFAULT, map_user(self->fd, self->ioas_id,
					      self->mem, FILE_SIZE, &iova));
}

/*
 * In-kernel accesses: memfd pages can be read, written and pinned;
 * guestmemfs ranges cannot.
 */
TEST_F(map_file, access)
{
	struct iommu_test_cmd create = {
		.size = sizeof(create),
		.op = IOMMU_TEST_OP_CREATE_ACCESS,
		.id = self->ioas_id,
		/* An access that pins pages, as a mediated device's does */
		.create_access = {
			.flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
		},
	};
	struct iommu_test_cmd rw = {
		.size = sizeof(rw),
		.op = IOMMU_TEST_OP_ACCESS_RW,
		.access_rw = { .iova = MAP_IOVA + 3 * PAGE_SIZE,
			       .length = 16 },
	};
	struct iommu_test_cmd pages = {
		.size = sizeof(pages),
		.op = IOMMU_TEST_OP_ACCESS_PAGES,
		.access_pages = { .iova = MAP_IOVA,
				  .length = PAGE_SIZE },
	};
	__u64 iova = MAP_IOVA;
	char tmp[16];
	int access;

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, FIXED));
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &create));
	access = create.create_access.out_access_fd;
	rw.id = access;
	rw.access_rw.uptr = (uintptr_t)tmp;
	pages.id = access;
	pages.access_pages.uptr = (uintptr_t)self->mem;
	if (variant->kind == GUESTMEMFS) {
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_TEST_CMD, &rw));
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_TEST_CMD, &pages));
	} else {
		struct iommu_test_cmd destroy_pages = {
			.size = sizeof(destroy_pages),
			.op = IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
			.id = access,
		};

		/* Read, then write, through the pfn reader */
		ASSERT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &rw));
		ASSERT_EQ(0, memcmp(tmp, self->mem + 3 * PAGE_SIZE,
				    sizeof(tmp)));
		memset(tmp, 0x5a, sizeof(tmp));
		rw.access_rw.flags = MOCK_ACCESS_RW_WRITE;
		ASSERT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &rw));
		ASSERT_EQ(0, memcmp(tmp, self->mem + 3 * PAGE_SIZE,
				    sizeof(tmp)));
		/* Pinned pages are the file's: the mock compares them */
		ASSERT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &pages));
		destroy_pages.destroy_access_pages.access_pages_id =
			pages.access_pages.out_access_pages_id;
		ASSERT_EQ(0, ioctl(self->fd, IOMMU_TEST_CMD, &destroy_pages));
	}
	close(access);
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));
}

/* A pinned guestmemfs range cannot be truncated away. */
TEST_F(map_file, shrink_busy)
{
	__u64 iova = MAP_IOVA;
	struct stat st;
	size_t i;

	if (variant->kind != GUESTMEMFS)
		SKIP(return, "memfd pages stay pinned whatever the file's size");

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE / 2, &iova, FIXED));
	/* Down to the end of the pinned range: allowed */
	ASSERT_EQ(0, ftruncate(self->mfd, FILE_SIZE - BLOCK));
	ASSERT_EQ(0, ftruncate(self->mfd, FILE_SIZE / 2));
	/* Below it: EBUSY, and the file as it was */
	EXPECT_ERRNO(EBUSY, ftruncate(self->mfd, FILE_SIZE / 2 - PAGE_SIZE));
	EXPECT_ERRNO(EBUSY, ftruncate(self->mfd, 0));
	ASSERT_EQ(0, fstat(self->mfd, &st));
	ASSERT_EQ(FILE_SIZE / 2, st.st_size);
	/* The data stayed, and is still what the device reaches */
	for (i = 0; i < FILE_SIZE / 2; i += PAGE_SIZE)
		ASSERT_EQ((char)(i / PAGE_SIZE + 1), self->mem[i]);
	ASSERT_EQ(0, check_map(self->fd, self->hwpt_id, MAP_IOVA, self->mem,
			       FILE_SIZE / 2));
	/* Growing is fine */
	ASSERT_EQ(0, ftruncate(self->mfd, FILE_SIZE));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE / 2,
			   NULL));
	ASSERT_EQ(0, ftruncate(self->mfd, 0));
}

/*
 * A guestmemfs block that failed (memory_failure() through guestmemfs's
 * debugfs) is never given to a device: mapping a range that holds it
 * fails with EHWPOISON, the rest of the file maps. It leaves a bad block
 * for good: GUESTMEMFS_MEMFAIL=1 runs it.
 */
TEST_F(map_file, bad_block)
{
	__u64 iova = MAP_IOVA;
	char buf[64];
	struct stat st;
	int pfd, len;
	size_t i;

	if (variant->kind != GUESTMEMFS)
		SKIP(return, "guestmemfs only");
	if (!getenv("GUESTMEMFS_MEMFAIL"))
		SKIP(return, "it leaves a bad block: GUESTMEMFS_MEMFAIL=1 runs it");
	ASSERT_EQ(0, fstat(self->mfd, &st));
	pfd = open("/sys/kernel/debug/guestmemfs/poison", O_WRONLY);
	ASSERT_LE(0, pfd);
	len = snprintf(buf, sizeof(buf), "%lu %lu", (unsigned long)st.st_ino,
		       BLOCK + 3 * PAGE_SIZE);
	ASSERT_EQ(len, write(pfd, buf, len));
	close(pfd);

	EXPECT_ERRNO(EHWPOISON, map_file(self->fd, self->ioas_id, self->mfd,
					 0, FILE_SIZE, &iova, FIXED));
	EXPECT_ERRNO(EHWPOISON, map_file(self->fd, self->ioas_id, self->mfd,
					 BLOCK + 8 * PAGE_SIZE, PAGE_SIZE,
					 &iova, FIXED));
	/*
	 * The blocks around it are fine. The failure unmapped the file's
	 * GiB from the CPU: fault block 0 in again for the mock's check,
	 * which reads the CPU's mapping, and see its data intact.
	 */
	for (i = 0; i < BLOCK; i += PAGE_SIZE)
		ASSERT_EQ((char)(i / PAGE_SIZE + 1), self->mem[i]);
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0, BLOCK,
			      &iova, FIXED));
	ASSERT_EQ(0, check_map(self->fd, self->hwpt_id, MAP_IOVA, self->mem,
			       BLOCK));
	iova = MAP_IOVA + 4 * BLOCK;
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 2 * BLOCK,
			      FILE_SIZE - 2 * BLOCK, &iova, FIXED));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, BLOCK, NULL));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA + 4 * BLOCK,
			   FILE_SIZE - 2 * BLOCK, NULL));
}

/* Closing the iommufd unmaps and unpins everything, as unmap does. */
TEST_F(map_file, close_unpins)
{
	__u64 iova = MAP_IOVA;
	long pins = pins_held();

	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, FIXED));
	if (variant->kind == GUESTMEMFS)
		EXPECT_ERRNO(EBUSY, ftruncate(self->mfd, 0));
	else
		ASSERT_LE(pins + (long)(FILE_SIZE / PAGE_SIZE), pins_held());
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	ASSERT_EQ(0, ftruncate(self->mfd, 0));
	/* No page stays pinned: folio_add_pins() and unpins balance */
	ASSERT_EQ(pins, pins_held());
}

/* A memfd's pins are taken and dropped in pairs, whatever the path. */
TEST_F(map_file, pins_balance)
{
	__u32 stdev2, hwpt2;
	__u64 iova = MAP_IOVA;
	long pins;

	if (variant->kind == GUESTMEMFS)
		SKIP(return, "guestmemfs takes no page pins");
	pins = pins_held();
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, FIXED));
	/* One pin per page, in the one domain that stores them */
	ASSERT_EQ(pins + (long)(FILE_SIZE / PAGE_SIZE), pins_held());
	ASSERT_EQ(0, mock_domain(self->fd, self->ioas_id, 0, &stdev2, &hwpt2));
	ASSERT_EQ(pins + (long)(FILE_SIZE / PAGE_SIZE), pins_held());
	ASSERT_EQ(0, destroy(self->fd, stdev2));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));
	ASSERT_EQ(pins, pins_held());
}

/* Write seals hold against a device as against a shared mmap(). */
TEST_F(map_file, seals)
{
	__u64 iova = MAP_IOVA;
	int mfd;

	if (variant->kind != SHMEM)
		SKIP(return, "seals are shmem memfds'");
	mfd = memfd_create("sealed", MFD_ALLOW_SEALING);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, FILE_SIZE));
	/* A writeable mapping keeps F_SEAL_WRITE out while it exists */
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, mfd, 0, FILE_SIZE,
			      &iova, FIXED));
	EXPECT_ERRNO(EBUSY, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_ERRNO(EPERM, map_file(self->fd, self->ioas_id, mfd, 0,
				     FILE_SIZE, &iova, FIXED));
	close(mfd);

	/* F_SEAL_FUTURE_WRITE: no new writeable mapping, readable ones go */
	mfd = memfd_create("sealed", MFD_ALLOW_SEALING);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, FILE_SIZE));
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
	EXPECT_ERRNO(EPERM, map_file(self->fd, self->ioas_id, mfd, 0,
				     FILE_SIZE, &iova, FIXED));
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, mfd, 0, FILE_SIZE,
			      &iova, IOMMU_IOAS_MAP_FIXED_IOVA |
					     IOMMU_IOAS_MAP_READABLE));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));
	close(mfd);
}

/* Drop CAP_IPC_LOCK from the effective set, so pins are charged. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &=
		~CAP_TO_MASK(CAP_IPC_LOCK);
	return syscall(SYS_capset, &hdr, data);
}

static long vm_locked_kb(pid_t pid)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Per-process (RLIMIT_MEMLOCK of the mm) accounting of memfd pins, taken
 * in another process than the one that mapped the file: a domain attached
 * by a child fills from the parent's mapping, and the parent is charged.
 */
TEST_F(map_file, remote_fill_charges_mapper)
{
	struct iommu_option opt = {
		.size = sizeof(opt),
		.option_id = IOMMU_OPTION_RLIMIT_MODE,
		.op = IOMMU_OPTION_OP_SET,
		.val64 = 1,
	};
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	pid_t pid;
	int status;

	if (variant->kind == GUESTMEMFS)
		SKIP(return, "guestmemfs pins are not charged");
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		__u32 ioas, stdev, hwpt;
		__u64 iova = MAP_IOVA;
		long before;
		pid_t child;
		int fd = open("/dev/iommu", O_RDWR);

		/* Charged per process: no objects may exist yet */
		if (fd < 0 || ioctl(fd, IOMMU_OPTION, &opt) ||
		    setrlimit(RLIMIT_MEMLOCK, &unlimited) || drop_ipc_lock() ||
		    ioas_alloc(fd, &ioas))
			_exit(1);
		before = vm_locked_kb(getpid());
		if (map_file(fd, ioas, self->mfd, 0, FILE_SIZE, &iova, FIXED))
			_exit(2);
		child = fork();
		if (!child)
			_exit(mock_domain(fd, ioas, 0, &stdev, &hwpt) ? 3 : 0);
		if (child < 0 || waitpid(child, &status, 0) != child ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			_exit(4);
		if (vm_locked_kb(getpid()) != before + (long)(FILE_SIZE / 1024))
			_exit(5);
		if (unmap(fd, ioas, MAP_IOVA, FILE_SIZE, NULL) ||
		    vm_locked_kb(getpid()) != before)
			_exit(6);
		close(fd);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* A pinned guestmemfs file keeps its filesystem mounted. */
TEST_F(map_file, umount_busy)
{
	static const char dir[] = "/tmp/iommufd-guestmemfs-umount";
	__u64 iova = MAP_IOVA;
	char path[300];
	int fd;

	if (variant->kind != GUESTMEMFS)
		SKIP(return, "a guestmemfs mount");
	mkdir(dir, 0755);
	ASSERT_EQ(0, mount("none", dir, "guestmemfs", 0, NULL));
	snprintf(path, sizeof(path), "%s/umount.%d", dir, getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, BLOCK));
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, fd, 0, BLOCK, &iova,
			      FIXED));
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(0, close(fd));
	EXPECT_ERRNO(EBUSY, umount(dir));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, BLOCK, NULL));
	ASSERT_EQ(0, umount(dir));
}

/*
 * Unlinked, closed and unmapped, a guestmemfs file keeps its blocks while
 * the IOAS maps them: they are freed, and counted free, only at unmap.
 */
TEST_F(map_file, unlink_while_mapped)
{
	unsigned long before, used = FILE_SIZE / BLOCK;
	__u64 iova = MAP_IOVA;
	const char *dir;

	if (variant->kind != GUESTMEMFS)
		SKIP(return, "statfs accounting is guestmemfs's");

	dir = gmfs_mount_dir();
	before = free_blocks(dir);
	ASSERT_EQ(0, map_file(self->fd, self->ioas_id, self->mfd, 0,
			      FILE_SIZE, &iova, FIXED));
	ASSERT_EQ(0, unlink(self->path));
	self->path[0] = 0;
	ASSERT_EQ(0, close(self->mfd));
	self->mfd = -1;
	ASSERT_EQ(before, free_blocks(dir));
	/* The device still reaches the file's memory */
	ASSERT_EQ(0, check_map(self->fd, self->hwpt_id, MAP_IOVA, self->mem,
			       FILE_SIZE));
	ASSERT_EQ(0, munmap(self->mem, FILE_SIZE));
	self->mem = MAP_FAILED;
	/* Only the IOAS mapping holds the file now */
	ASSERT_EQ(before, free_blocks(dir));
	ASSERT_EQ(0, unmap(self->fd, self->ioas_id, MAP_IOVA, FILE_SIZE, NULL));
	ASSERT_EQ(before + used, free_blocks(dir));
}

/*
 * Fault injection over map, a second domain filled from the first, unmap.
 * The mock IOMMU has a fault site per contiguous physical run it maps, so
 * the memfd's part is kept small: its pages are scattered as free memory
 * happens to be (8 MiB of a fragmented memfd made a thousand sites).
 */
struct map_file_seq {
	int mfd;
	size_t length;
};

static int map_file_sequence(void *arg)
{
	struct map_file_seq *s = arg;
	__u32 ioas_id, stdev_id, hwpt_id;
	__u64 iova = MAP_IOVA;
	int fd, ret = -1;

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		return -1;
	if (ioas_alloc(fd, &ioas_id) ||
	    mock_domain(fd, ioas_id, MOCK_FLAGS_DEVICE_HUGE_IOVA, &stdev_id,
			&hwpt_id) ||
	    map_file(fd, ioas_id, s->mfd, 0, s->length, &iova, FIXED) ||
	    /* A second domain, filled from the first */
	    mock_domain(fd, ioas_id, 0, &stdev_id, &hwpt_id) ||
	    unmap(fd, ioas_id, MAP_IOVA, s->length, NULL))
		goto out;
	ret = 0;
out:
	close(fd);
	return ret;
}

FIXTURE(fail_nth)
{
};

FIXTURE_SETUP(fail_nth)
{
}

FIXTURE_TEARDOWN(fail_nth)
{
}

/* A few hundred runs, each adding a mock device: minutes under emulation */
TEST_F_TIMEOUT(fail_nth, memfd, 600)
{
	struct map_file_seq s = { .length = 64 * PAGE_SIZE };
	char path[300];

	s.mfd = make_file(SHMEM, path, sizeof(path));
	ASSERT_LE(0, s.mfd);
	fail_nth_sweep(_metadata, map_file_sequence, &s);
	close(s.mfd);
}

TEST_F_TIMEOUT(fail_nth, guestmemfs, 600)
{
	/* Four blocks, wherever they are: four runs at most */
	struct map_file_seq s = { .length = FILE_SIZE };
	char path[300];

	s.mfd = make_file(GUESTMEMFS, path, sizeof(path));
	if (s.mfd < 0 && errno == ENODEV)
		SKIP(return, "no guestmemfs (boot with guestmemfs=SIZE)");
	ASSERT_LE(0, s.mfd);
	unlink(path);
	fail_nth_sweep(_metadata, map_file_sequence, &s);
	close(s.mfd);
}

TEST_HARNESS_MAIN
