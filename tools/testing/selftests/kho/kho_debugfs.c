// SPDX-License-Identifier: GPL-2.0
/*
 * The debugfs interface of kexec handover (KHO): finalize and abort, the
 * errors they return, what they publish, and how they interact with a
 * loaded kexec image. Needs kho=on; every test leaves the handover
 * aborted and no kexec image loaded.
 *
 * KHO_KERNEL names a kernel image for kexec_file_load() (default
 * /boot/bzImage).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kexec.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define KHO_DIR		"/sys/kernel/debug/kho"
#define OUT		KHO_DIR "/out"
#define FINALIZE	OUT "/finalize"
#define FDT_MAGIC	0xd00dfeed

/* write(2) of @val to @path: 0 or the errno it failed with */
static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) < 0)
		err = errno;
	close(fd);
	return err;
}

static int read_str(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static int finalized(void)
{
	char buf[16];

	if (read_str(FINALIZE, buf, sizeof(buf)) < 0)
		return -1;
	return atoi(buf);
}

static bool exists(const char *path)
{
	struct stat st;

	return !stat(path, &st);
}

/* Reads an FDT blob: its size, or -1 if it is not one. */
static ssize_t fdt_blob(const char *path, char *buf, size_t size)
{
	int n = read_str(path, buf, size);
	uint32_t magic, total;

	if (n < 40)
		return -1;
	memcpy(&magic, buf, 4);
	memcpy(&total, buf + 4, 4);
	if (be32toh(magic) != FDT_MAGIC || be32toh(total) != (uint32_t)n)
		return -1;
	return n;
}

static bool blob_has(const char *buf, size_t n, const char *s)
{
	return memmem(buf, n, s, strlen(s) + 1);
}

static int kexec_load(void)
{
	const char *kernel = getenv("KHO_KERNEL") ?: "/boot/bzImage";
	int fd = open(kernel, O_RDONLY);
	int err = 0;

	if (fd < 0)
		return errno;
	if (syscall(SYS_kexec_file_load, fd, -1, 1UL, "", KEXEC_FILE_NO_INITRAMFS))
		err = errno;
	close(fd);
	return err;
}

static int kexec_unload(void)
{
	if (syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, KEXEC_FILE_UNLOAD))
		return errno;
	return 0;
}

FIXTURE(kho) {
	char buf[65536];
};

FIXTURE_SETUP(kho)
{
	if (!exists(FINALIZE))
		SKIP(return, "no %s: KHO is not enabled (kho=on)", FINALIZE);
	kexec_unload();
	if (finalized() == 1)
		ASSERT_EQ(0, write_str(FINALIZE, "0"));
	ASSERT_EQ(0, finalized());
}

FIXTURE_TEARDOWN(kho)
{
	kexec_unload();
	if (finalized() == 1)
		write_str(FINALIZE, "0");
}

/* The scratch areas are listed, non-empty and pageblock aligned. */
TEST_F(kho, scratch)
{
	char phys[512], len[512], *p = phys, *l = len;
	int areas = 0;

	ASSERT_LT(0, read_str(OUT "/scratch_phys", phys, sizeof(phys)));
	ASSERT_LT(0, read_str(OUT "/scratch_len", len, sizeof(len)));
	for (;;) {
		char *pe, *le;
		unsigned long long a = strtoull(p, &pe, 16);
		unsigned long long s = strtoull(l, &le, 16);

		if (pe == p || le == l)
			break;
		EXPECT_EQ(0, a % (2 << 20)) TH_LOG("scratch at %#llx", a);
		EXPECT_LT(0, s);
		EXPECT_EQ(0, s % (2 << 20)) TH_LOG("scratch of %#llx", s);
		TH_LOG("scratch area %d: %llu MiB at %#llx", areas, s >> 20, a);
		areas++;
		p = pe;
		l = le;
	}
	ASSERT_LE(1, areas);
}

/* Nothing is published before finalization; bad values are refused. */
TEST_F(kho, not_finalized)
{
	EXPECT_FALSE(exists(OUT "/fdt"));
	EXPECT_EQ(ENOENT, write_str(FINALIZE, "0"));
	EXPECT_EQ(EINVAL, write_str(FINALIZE, "2"));
	EXPECT_EQ(EINVAL, write_str(FINALIZE, "on"));
	EXPECT_EQ(0, finalized());
}

/* Finalize publishes a valid root FDT and the subtrees; abort undoes it. */
TEST_F(kho, finalize_abort_finalize)
{
	ssize_t n;
	int round;

	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, write_str(FINALIZE, "1"));
		EXPECT_EQ(1, finalized());
		n = fdt_blob(OUT "/fdt", self->buf, sizeof(self->buf));
		ASSERT_LT(0, n) TH_LOG("out/fdt is not an FDT");
		EXPECT_TRUE(blob_has(self->buf, n, "kho-v1"));
		EXPECT_TRUE(blob_has(self->buf, n, "preserved-memory-map"));
		if (exists("/sys/kernel/debug/kho_test")) {
			n = fdt_blob(OUT "/sub_fdts/kho-test", self->buf,
				     sizeof(self->buf));
			ASSERT_LT(0, n) TH_LOG("no kho-test subtree");
			EXPECT_TRUE(blob_has(self->buf, n, "kho-test-v1"));
		}
		EXPECT_EQ(EEXIST, write_str(FINALIZE, "1"));

		ASSERT_EQ(0, write_str(FINALIZE, "0"));
		EXPECT_EQ(0, finalized());
		EXPECT_FALSE(exists(OUT "/fdt"));
		EXPECT_FALSE(exists(OUT "/sub_fdts/kho-test"));
	}
}

/*
 * An image loaded before finalization does not carry the handover, and
 * one that carries it cannot be orphaned by an abort: both refused.
 */
TEST_F(kho, loaded_image)
{
	int err = kexec_load();

	if (err == ENOENT)
		SKIP(return, "no kernel image to load (KHO_KERNEL)");
	ASSERT_EQ(0, err) TH_LOG("kexec_file_load: %s", strerror(err));
	EXPECT_EQ(EBUSY, write_str(FINALIZE, "1"));
	EXPECT_EQ(0, finalized());
	ASSERT_EQ(0, kexec_unload());

	ASSERT_EQ(0, write_str(FINALIZE, "1"));
	ASSERT_EQ(0, kexec_load());
	EXPECT_EQ(EBUSY, write_str(FINALIZE, "0"));
	EXPECT_EQ(1, finalized());
	ASSERT_EQ(0, kexec_unload());
	EXPECT_EQ(0, write_str(FINALIZE, "0"));
}

/*
 * kexec_load() cannot carry the handover: refused while it is finalized
 * (the segment is never looked at), allowed again after abort.
 */
TEST_F(kho, legacy_load)
{
	static char page[4096];
	struct kexec_segment seg = {
		.buf = page,
		.bufsz = sizeof(page),
		.mem = (void *)0x1000000,
		.memsz = sizeof(page),
	};
	long rc;

	/* An unload, which nothing refuses where kexec_load() exists */
	if (syscall(SYS_kexec_load, 0UL, 0UL, NULL,
		    (unsigned long)KEXEC_ARCH_DEFAULT))
		SKIP(return, "no kexec_load() (CONFIG_KEXEC): %s",
		     strerror(errno));
	ASSERT_EQ(0, write_str(FINALIZE, "1"));
	rc = syscall(SYS_kexec_load, 0x1000000UL, 1UL, &seg,
		     (unsigned long)KEXEC_ARCH_DEFAULT);
	if (!rc)
		kexec_unload();
	EXPECT_EQ(-1, rc);
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(1, finalized());
	ASSERT_EQ(0, write_str(FINALIZE, "0"));
	/* Unloading, which loads nothing, is not refused */
	ASSERT_EQ(0, write_str(FINALIZE, "1"));
	EXPECT_EQ(0, syscall(SYS_kexec_load, 0UL, 0UL, NULL,
			     (unsigned long)KEXEC_ARCH_DEFAULT));
	ASSERT_EQ(0, write_str(FINALIZE, "0"));
}

TEST_HARNESS_MAIN
