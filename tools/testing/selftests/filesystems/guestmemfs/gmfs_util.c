// SPDX-License-Identifier: GPL-2.0
/*
 * gmfs_util: what shell scripts need to test guestmemfs, whose files can
 * only be reached through mmap().
 *
 *   gmfs_util fill FILE SIZE SEED   size FILE and fill it with the stream
 *                                   of SEED
 *   gmfs_util check FILE SEED       does FILE hold the stream of SEED, up
 *                                   to its size?
 *   gmfs_util freeze FILE FINALIZE  with FILE mapped, finalize the kexec
 *                                   handover (write 1 to FINALIZE):
 *                                   namespace changes must fail with EBUSY
 *                                   and mapped data must stay writable;
 *                                   then abort, and they must work again
 *   gmfs_util touch FILE SIZE       create FILE of SIZE bytes, map it,
 *                                   write every byte of it; print the
 *                                   page faults and the times taken
 *   gmfs_util mount DIR             mount guestmemfs on DIR, print the
 *                                   time mount(2) took
 *   gmfs_util usage DIR             do the blocks the files under DIR hold
 *                                   add up to what statfs() says is used?
 *   gmfs_util fill-rest FILE        take every free block with FILE, check
 *                                   that nothing more can be had (ENOSPC),
 *                                   and remove FILE
 *
 * Exit status 0 on success; 1, with a message, otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("FAIL: ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 1;
}

static uint64_t next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void *map_file(const char *path, int flags, off_t *size)
{
	struct stat st;
	void *p;
	int fd = open(path, flags);

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	*size = st.st_size;
	if (!st.st_size) {
		close(fd);
		return "";
	}
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static int cmd_fill(const char *path, off_t size, uint64_t seed)
{
	uint64_t s = seed | 1, *w;
	off_t i, got;
	int fd = open(path, O_RDWR | O_CREAT, 0644);

	if (fd < 0 || ftruncate(fd, size))
		return fail("%s: size %lld: %s", path, (long long)size, strerror(errno));
	close(fd);
	w = map_file(path, O_RDWR, &got);
	if (!w)
		return fail("%s: mmap: %s", path, strerror(errno));
	for (i = 0; i + 8 <= size; i += 8)
		w[i / 8] = next(&s);
	for (; i < size; i++)
		((char *)w)[i] = next(&s);
	if (size)
		munmap(w, size);
	return 0;
}

static int cmd_check(const char *path, uint64_t seed)
{
	uint64_t s = seed | 1, *w;
	off_t size, i;

	w = map_file(path, O_RDWR, &size);
	if (!w)
		return fail("%s: mmap: %s", path, strerror(errno));
	for (i = 0; i + 8 <= size; i += 8)
		if (w[i / 8] != next(&s))
			return fail("%s: byte %lld differs", path, (long long)i);
	for (; i < size; i++)
		if (((unsigned char *)w)[i] != (unsigned char)next(&s))
			return fail("%s: byte %lld differs", path, (long long)i);
	if (size)
		munmap(w, size);
	return 0;
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) < 0)
		err = errno;
	close(fd);
	return err;
}

/* Each namespace change, in @dir next to @file: the errno it gives. */
static int try_changes(const char *file, int want)
{
	char dir[2048], path[4096], copy[2048];
	struct timespec ts[2] = { { 1, 0 }, { 2, 0 } };
	static const char * const what[] = { "mkdir", "create", "unlink",
		"rename", "truncate", "chmod", "chown", "utimes" };
	int i, got, fd, bad = 0;

	snprintf(copy, sizeof(copy), "%s", file);
	snprintf(dir, sizeof(dir), "%s", dirname(copy));
	for (i = 0; i < 8; i++) {
		/* unlink and truncate would destroy the file when thawed */
		if (!want && (i == 2 || i == 4))
			continue;
		snprintf(path, sizeof(path), "%s/.gmfs_util_probe", dir);
		errno = 0;
		switch (i) {
		case 0:
			got = mkdir(path, 0700) ? errno : 0;
			if (!got)
				rmdir(path);
			break;
		case 1:
			fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
			got = fd < 0 ? errno : 0;
			if (fd >= 0) {
				close(fd);
				unlink(path);
			}
			break;
		case 2:
			got = unlink(file) ? errno : 0;
			break;
		case 3:
			got = rename(file, path) ? errno : 0;
			if (!got && rename(path, file))
				return fail("cannot rename %s back", file);
			break;
		case 4:
			got = truncate(file, 0) ? errno : 0;
			break;
		case 5:
			got = chmod(file, 0600) ? errno : 0;
			break;
		case 6:
			got = chown(file, 0, 0) ? errno : 0;
			break;
		default:
			got = utimensat(AT_FDCWD, file, ts, 0) ? errno : 0;
			break;
		}
		if (got != want) {
			printf("%s: %s, expected %s\n", what[i], strerror(got),
			       strerror(want));
			bad++;
		}
	}
	return bad;
}

static int cmd_freeze(const char *file, const char *finalize)
{
	off_t size, i;
	char *p = map_file(file, O_RDWR, &size);
	int err;

	if (!p || size < 4096)
		return fail("%s: mmap: %s", file, strerror(errno));
	err = write_str(finalize, "1");
	if (err)
		return fail("finalize: %s", strerror(err));
	err = try_changes(file, EBUSY);
	for (i = 0; i < size; i += 4096)
		p[i] = (char)(i >> 12);
	for (i = 0; i < size; i += 4096)
		if (p[i] != (char)(i >> 12))
			err++;
	if (write_str(finalize, "0"))
		return fail("abort: %s", strerror(errno));
	err += try_changes(file, 0);
	munmap(p, size);
	if (err)
		return fail("%d checks failed", err);
	printf("frozen: namespace changes failed with EBUSY, mapped data stayed writable\n");
	printf("thawed by abort: namespace changes work again\n");
	return 0;
}

static long long us_between(const struct timespec *a, const struct timespec *b)
{
	return (long long)(b->tv_sec - a->tv_sec) * 1000000 +
	       (b->tv_nsec - a->tv_nsec) / 1000;
}

/*
 * Sizing and first touch both count: guestmemfs allocates and zeroes when
 * a file grows, hugetlbfs and tmpfs when a page is first touched.
 */
static int cmd_touch(const char *file, const char *size_arg)
{
	off_t size = strtoll(size_arg, NULL, 0), i;
	struct timespec t0, t1, t2;
	struct rusage r0, r1;
	int fd;
	char *p;

	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail("%s: %s", file, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ftruncate(fd, size))
		return fail("%s: ftruncate: %s", file, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("%s: mmap: %s", file, strerror(errno));
	getrusage(RUSAGE_SELF, &r0);
	memset(p, 0x5a, size);
	getrusage(RUSAGE_SELF, &r1);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	for (i = 0; i < size; i += 4096)
		if (p[i] != 0x5a)
			return fail("%s: byte %lld not written", file, (long long)i);
	printf("bytes=%lld faults=%ld size_us=%lld touch_us=%lld\n",
	       (long long)size, r1.ru_minflt - r0.ru_minflt,
	       us_between(&t0, &t1), us_between(&t1, &t2));
	munmap(p, size);
	close(fd);
	return 0;
}

#define BLK (2UL << 20)

static int cmd_mount(const char *dir)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (mount("none", dir, "guestmemfs", 0, NULL))
		return fail("mount %s: %s", dir, strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("us=%lld\n", us_between(&t0, &t1));
	return 0;
}

static unsigned long long held;

static int add_blocks(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	if (type == FTW_F)
		held += st->st_blocks / (BLK / 512);
	return 0;
}

static int cmd_usage(const char *dir)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) || nftw(dir, add_blocks, 16, FTW_PHYS))
		return fail("%s: %s", dir, strerror(errno));
	printf("blocks=%llu free=%llu held_by_files=%llu\n",
	       (unsigned long long)sfs.f_blocks,
	       (unsigned long long)sfs.f_bfree, held);
	if (sfs.f_bfree != sfs.f_blocks - held)
		return fail("free blocks %llu, expected %llu",
			    (unsigned long long)sfs.f_bfree,
			    (unsigned long long)(sfs.f_blocks - held));
	return 0;
}

static int cmd_fill_rest(const char *file)
{
	char copy[2048], probe[4096], *dir;
	struct statfs sfs;
	int fd, err = 0;

	snprintf(copy, sizeof(copy), "%s", file);
	dir = dirname(copy);
	snprintf(probe, sizeof(probe), "%s/.gmfs_util_probe", dir);
	if (statfs(dir, &sfs))
		return fail("statfs %s: %s", dir, strerror(errno));
	fd = open(file, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return fail("%s: %s", file, strerror(errno));
	if (ftruncate(fd, (off_t)sfs.f_bfree * BLK))
		err = fail("taking the %llu free blocks: %s",
			   (unsigned long long)sfs.f_bfree, strerror(errno));
	else if (!ftruncate(fd, (off_t)(sfs.f_bfree + 1) * BLK) || errno != ENOSPC)
		err = fail("one block more: %s, expected ENOSPC", strerror(errno));
	close(fd);
	fd = open(probe, O_RDWR | O_CREAT, 0600);
	if (!err && (fd < 0 || !ftruncate(fd, 1) || errno != ENOSPC))
		err = fail("another file: %s, expected ENOSPC", strerror(errno));
	if (fd >= 0) {
		close(fd);
		unlink(probe);
	}
	if (unlink(file))
		err = fail("%s: %s", file, strerror(errno));
	if (!err)
		printf("filled %llu free blocks, then ENOSPC\n",
		       (unsigned long long)sfs.f_bfree);
	return err;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "mount"))
		return cmd_mount(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "usage"))
		return cmd_usage(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "fill-rest"))
		return cmd_fill_rest(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "fill"))
		return cmd_fill(argv[2], strtoll(argv[3], NULL, 0),
				strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "check"))
		return cmd_check(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "freeze"))
		return cmd_freeze(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "touch"))
		return cmd_touch(argv[2], argv[3]);
	fprintf(stderr, "usage: %s fill FILE SIZE SEED | check FILE SEED |\n", argv[0]);
	fprintf(stderr, "\tfreeze FILE FINALIZE | touch FILE SIZE | mount DIR | usage DIR |\n");
	fprintf(stderr, "\tfill-rest FILE\n");
	return 2;
}
