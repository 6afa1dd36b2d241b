// SPDX-License-Identifier: GPL-2.0
/*
 * edu_dma: DMA from QEMU's edu device (1234:11e8) into guestmemfs files,
 * through VFIO and the vIOMMU, and check that a file range a device can
 * reach keeps its blocks.
 *
 *   edu_dma iommufd GMFS_DIR	(VFIO cdev + iommufd, IOMMU_IOAS_MAP_FILE)
 *   edu_dma type1 GMFS_DIR	(legacy container, vfio_iommu_type1)
 *
 * GMFS_DIR is a mounted guestmemfs. The device is bound to vfio-pci for
 * the test and given back (driver_override cleared) at the end.
 *
 * iommufd mode, file A (8 MiB) mapped whole at IOVA 0x4000000:
 *   a. edu reads a pattern from A and writes it back elsewhere in A;
 *   b. shrinking A below the mapping fails with EBUSY, growing and
 *      shrinking back to the mapping's end work;
 *   c. unlink and close of A keep its blocks (f_bfree), DMA still lands
 *      in A's mmap;
 *   d. munmap of A: f_bfree unchanged, and the device still reads A's
 *      data: now only the IOAS holds A's blocks;
 *   e. file B takes all the free space: it reads zero, and a DMA to A's
 *      IOVA changes nothing in B but lands in A (read back by the device);
 *   f. IOMMU_IOAS_UNMAP frees A's 4 blocks.
 * d and e run after the munmap on purpose: before it, the mmap alone
 * holds A's blocks and e could not catch a pin that holds nothing.
 *
 * type1 mode, A mapped with VFIO_IOMMU_MAP_DMA from its mmap:
 *   a. as above;
 *   b. ftruncate(A, 0) fails with EBUSY. If it succeeds (type1 mapped
 *      the file without pinning it), a file B made of all the free space
 *      gets A's freed blocks, and a DMA through A's old IOVA is looked
 *      for in B: "cross-file leak" if found;
 *   c. after VFIO_IOMMU_UNMAP_DMA, ftruncate(A, 0) works and frees
 *      A's 4 blocks.
 *
 * edu's DMA engine copies between its 4 KiB buffer (device address
 * 0x40000) and bus addresses masked to 28 bits, ~100 ms after it is
 * started. Transfers are 2048 bytes: QEMU 7.2 aborts on one that ends at
 * the end of the buffer.
 *
 * mapbench (make bench): IOMMU_IOAS_MAP_FILE of 1 GiB into edu's domain from
 * guestmemfs, a hugetlbfs memfd and a shmem memfd: time and page tables.
 *
 * Persistent IOMMU domains across a real kexec, as a VMM does it:
 *
 *   edu_dma lu-prepare GMFS_DIR STATE	(old kernel, before KHO finalize)
 *   edu_dma lu-check GMFS_DIR STATE	(next kernel)
 *
 * lu-prepare maps file L (GMFS_DIR/.gmfs_edu_lu, 4 MiB: ".gmfs_" keeps
 * it out of the guestmemfs kexec test's tree) with IOMMU_IOAS_MAP_FILE
 * into a paging HWPT, attaches edu to it, checks a DMA (a), loads edu's
 * buffer with pattern B from L, and marks the HWPT for preservation
 * (IOMMU_HWPT_LU_SET_PRESERVE). A child then keeps every fd open until
 * the kexec: kexec-reboot sends it SIGUSR1 just before
 * reboot(LINUX_REBOOT_CMD_KEXEC), and it starts a DMA of B into L (b),
 * which edu completes ~100 ms later, in the middle of the kexec.
 *
 * lu-check, in the next kernel, with edu bound to no driver and reached
 * through sysfs: bus mastering is still on, L holds (a) and (b), and a
 * round trip through the translation the old kernel handed over (L ->
 * edu -> L, with no iommufd in this kernel) lands (c).
 *
 *   edu_dma lu-exit GMFS_DIR STATE	(old kernel, after KHO finalize)
 *
 * has lu-prepare's child exit instead (SIGUSR2), as a VMM that does not
 * call reboot() itself does: its VFIO_DEVICE_DETACH_IOMMUFD_PT is refused
 * with EBUSY, it closes everything, and edu's DMA goes on through the
 * HWPT handed over, bus mastering kept: a DMA of B into L, started
 * through sysfs, lands where (b) goes.
 *
 *   edu_dma lu-aborted GMFS_DIR STATE	(old kernel, lu-exit, then abort)
 *
 * checks that an abort of the handover ends that: a DMA to L's old IOVA
 * no longer lands, and L is no longer pinned.
 *
 *   edu_dma lu-blocked GMFS_DIR STATE	(after a damaged VT-d handover)
 *
 * checks that the DMA of a device the next kernel cannot take over is
 * blocked: (a) is in L, (b) landed whole or not at all, and a DMA to L's
 * old IOVA no longer lands.
 *
 *   edu_dma lu-unrestored GMFS_DIR STATE	(iommufd could not restore)
 *
 * makes a DMA to L's old IOVA, which must fault: iommufd moved edu out of
 * the domain it could not take over. A new VMM then takes edu over and
 * DMAs through an IOAS of its own, and gives edu back.
 *
 *   edu_dma lu-quiesced GMFS_DIR STATE	(after a kexec that handed none over)
 *
 * checks that such a kexec stopped edu's DMA as kexec always did: bus
 * mastering is off, and the IOMMU took over nothing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/memfd.h>
#include <linux/magic.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

/* So that this also builds against headers from before the series. */
#ifndef IOMMU_IOAS_MAP_FILE
struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE	_IO(IOMMUFD_TYPE, 0x8f)
#endif

#ifndef GUESTMEMFS_MAGIC
#define GUESTMEMFS_MAGIC	0x474d4653
#endif

#define KiB		(1ULL << 10)
#define MiB		(1ULL << 20)
#define PAGE		4096UL
#define GMFS_BLOCK	(2 * MiB)

/* edu registers (BAR0) */
#define EDU_ID		0x00
#define EDU_LIVENESS	0x04
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_DMA_START	0x1	/* cleared by the device when done */
#define EDU_DMA_TO_RAM	0x2	/* direction: device buffer -> RAM */
#define EDU_ID_VALUE	0x010000ed
#define EDU_BUF		0x40000	/* device address of its DMA buffer */
#define XFER		2048	/* well inside the 4 KiB buffer */
#define DMA_TIMEOUT_S	10

/* Bus addresses: edu masks them to 28 bits, so stay below 256 MiB. */
#define IOVA_A		0x4000000ULL
#define IOVA_BOUNCE	0x8000000ULL

#define A_SIZE		(8 * MiB)
#define A_SRC1		(3 * MiB + 123)
#define A_DST1		(5 * MiB + 77)
#define A_SRC2		(6 * MiB + 321)
#define A_DST2		(4 * MiB - 1000)	/* across A's 2nd/3rd block */
#define A_DST3		(7 * MiB + 555)
#define A_LEAK		(1 * MiB + 99)

/* iommufd mode's bounce buffer (anonymous memory, IOMMU_IOAS_MAP) */
#define BOUNCE_SIZE	(64 * KiB)
#define BNC_ZERO	0x0000		/* never written: zeroes edu's buffer */
#define BNC_SRC		0x4000
#define BNC_DST1	(0x8000 + 55)
#define BNC_DST2	(0xc000 + 99)

#define GUARD		PAGE		/* bytes checked either side of a DMA */

static int passes, fails;
static uint64_t seed;
static unsigned int nr_dma;
static double dma_ms;

/* What the signal handler and main() need to give the device back. */
static struct {
	char bdf[64];
	char orig_drv[64];		/* driver before vfio-pci, "" if none */
	char override_path[PATH_MAX];
	bool override_set;
	bool bound;
	int dev_fd, group_fd, container_fd, iommu_fd;
	uint32_t devid;
	bool container_set;
	bool held;			/* lu-prepare: a child keeps the device */
} g = { .dev_fd = -1, .group_fd = -1, .container_fd = -1, .iommu_fd = -1 };

static void __attribute__((format(printf, 1, 2))) ok(const char *fmt, ...)
{
	va_list ap;

	printf("ok: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	passes++;
}

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fails++;
}

/* sysfs */

/* Only open/write/close: also used from the signal handler. */
static int write_str(const char *path, const char *s)
{
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

static int read_hex(const char *dir, const char *file, unsigned int *val)
{
	char path[PATH_MAX];
	FILE *f;
	int found;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	found = fscanf(f, "%x", val) == 1;
	fclose(f);
	return found ? 0 : -1;
}

/* snprintf("%s") without -Wformat-truncation's guesses: cut to fit. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The last component of a sysfs link: a driver, an IOMMU group. */
static int link_name(const char *path, char *buf, size_t len)
{
	char target[PATH_MAX];
	const char *base;
	ssize_t n;

	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	copy_str(buf, len, base ? base + 1 : target);
	return 0;
}

static int find_edu(void)
{
	const char *base = "/sys/bus/pci/devices";
	DIR *dir = opendir(base);
	struct dirent *d;
	int found = -1;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		char path[PATH_MAX];
		unsigned int ven, id;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, d->d_name);
		if (read_hex(path, "vendor", &ven) || read_hex(path, "device", &id))
			continue;
		if (ven == 0x1234 && id == 0x11e8) {
			copy_str(g.bdf, sizeof(g.bdf), d->d_name);
			found = 0;
			break;
		}
	}
	closedir(dir);
	return found;
}

static void dev_path(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "/sys/bus/pci/devices/%s/%s", g.bdf, file);
}

static int bind_vfio(void)
{
	char path[PATH_MAX], drv[64];
	int err;

	dev_path(path, sizeof(path), "driver");
	if (!link_name(path, drv, sizeof(drv)) && strcmp(drv, "vfio-pci"))
		copy_str(g.orig_drv, sizeof(g.orig_drv), drv);

	dev_path(g.override_path, sizeof(g.override_path), "driver_override");
	err = write_str(g.override_path, "vfio-pci");
	if (err) {
		fail("write vfio-pci to %s: %s", g.override_path, strerror(-err));
		return -1;
	}
	g.override_set = true;
	if (g.orig_drv[0]) {
		dev_path(path, sizeof(path), "driver/unbind");
		err = write_str(path, g.bdf);
		if (err) {
			fail("unbind %s from %s: %s", g.bdf, g.orig_drv,
			     strerror(-err));
			return -1;
		}
	}
	/* EEXIST/EBUSY if vfio-pci already has it (an aborted earlier run) */
	write_str("/sys/bus/pci/drivers_probe", g.bdf);
	dev_path(path, sizeof(path), "driver");
	if (link_name(path, drv, sizeof(drv)) || strcmp(drv, "vfio-pci")) {
		fail("%s is not bound to vfio-pci after drivers_probe", g.bdf);
		return -1;
	}
	g.bound = true;
	printf("edu %s bound to vfio-pci (was: %s)\n", g.bdf,
	       g.orig_drv[0] ? g.orig_drv : "no driver");
	return 0;
}

/*
 * Unbinding waits until every VFIO user has closed the device, so the
 * fds go first. Only syscalls: also used from the signal handler.
 */
static void close_vfio(void)
{
	if (g.dev_fd >= 0)
		close(g.dev_fd);
	g.dev_fd = -1;
	if (g.group_fd >= 0) {
		if (g.container_set)
			ioctl(g.group_fd, VFIO_GROUP_UNSET_CONTAINER);
		close(g.group_fd);
	}
	g.container_set = false;
	g.group_fd = -1;
	if (g.container_fd >= 0)
		close(g.container_fd);
	g.container_fd = -1;
	if (g.iommu_fd >= 0)
		close(g.iommu_fd);
	g.iommu_fd = -1;
}

static int restore_device(void)
{
	int err = 0;

	if (g.bound)
		err = write_str("/sys/bus/pci/drivers/vfio-pci/unbind", g.bdf);
	g.bound = false;
	if (g.override_set && write_str(g.override_path, "\n") && !err)
		err = -EIO;
	g.override_set = false;
	if (g.orig_drv[0])
		write_str("/sys/bus/pci/drivers_probe", g.bdf);
	return err;
}

static void on_fatal_signal(int sig)
{
	static const char bus[] = "FAIL: SIGBUS: a mapping lost its memory\n";
	static const char segv[] = "FAIL: SIGSEGV\n";

	if (sig == SIGBUS) {
		if (write(1, bus, sizeof(bus) - 1) < 0)
			_exit(1);
	} else if (write(1, segv, sizeof(segv) - 1) < 0) {
		_exit(1);
	}
	close_vfio();
	restore_device();
	_exit(1);
}

/* guestmemfs */

static int gmfs_free(const char *dir, uint64_t *bfree)
{
	struct statfs sf;

	if (statfs(dir, &sf)) {
		fail("statfs %s: %s", dir, strerror(errno));
		return -1;
	}
	*bfree = sf.f_bfree;
	return 0;
}

static int gmfs_create(const char *path, uint64_t size)
{
	int fd;

	unlink(path);	/* left over by an aborted run */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		fail("create %s: %s", path, strerror(errno));
		return -1;
	}
	if (ftruncate(fd, size)) {
		fail("ftruncate(%s, %llu MiB): %s", path,
		     (unsigned long long)(size / MiB), strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

static uint8_t *map_file(int fd, size_t size, const char *name)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		fail("mmap %s (%llu MiB): %s", name,
		     (unsigned long long)(size / MiB), strerror(errno));
		return NULL;
	}
	return p;
}

static int file_size(int fd, off_t *size)
{
	struct stat st;

	if (fstat(fd, &st)) {
		fail("fstat: %s", strerror(errno));
		return -1;
	}
	*size = st.st_size;
	return 0;
}

/* patterns */

/* A different, nonzero-looking stream per @which and per run. */
static void pattern(uint8_t *buf, size_t len, unsigned int which)
{
	uint64_t x = seed ^ (0x9e3779b97f4a7c15ULL * (which + 1));
	size_t i;

	if (!x)
		x = 1;
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 29);
	}
}

static long first_diff(const uint8_t *p, const uint8_t *want, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != want[i])
			return (long)i;
	return -1;
}

static long first_nonzero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return (long)i;
	return -1;
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * The XFER bytes at @off of @buf must be @want, and the @guard bytes on
 * either side must still be zero: the DMA wrote where it was told, only.
 */
static bool check_landed(const char *what, const uint8_t *buf, size_t size,
			 size_t off, const uint8_t *want, size_t guard)
{
	size_t lo = off > guard ? off - guard : 0;
	size_t hi = off + XFER + guard < size ? off + XFER + guard : size;
	long i;

	i = first_diff(buf + off, want, XFER);
	if (i >= 0) {
		fail("%s: byte %ld of %d at offset 0x%zx is 0x%02x, expected 0x%02x",
		     what, i, XFER, off, buf[off + i], want[i]);
		return false;
	}
	i = first_nonzero(buf + lo, off - lo);
	if (i >= 0) {
		fail("%s: byte at offset 0x%zx, before the destination, changed to 0x%02x",
		     what, lo + i, buf[lo + i]);
		return false;
	}
	i = first_nonzero(buf + off + XFER, hi - off - XFER);
	if (i >= 0) {
		fail("%s: byte at offset 0x%zx, after the destination, changed to 0x%02x",
		     what, off + XFER + i, buf[off + XFER + i]);
		return false;
	}
	ok("%s: %d bytes at offset 0x%zx match, %zu bytes before and %zu after untouched",
	   what, XFER, off, off - lo, hi - off - XFER);
	return true;
}

/*
 * Look for anything nonzero in a big file B, cheaply. A stray DMA aimed
 * at offset @win of A lands at the same offset within a 2 MiB block of
 * whatever file got that block (both the IOMMU and the file map whole,
 * aligned blocks), so that window is checked in full in every block;
 * besides, every page's first and last 8 bytes and the 8 bytes at the
 * window's offset within a page, and all of the first, middle and last
 * pages. Returns the offset of a nonzero byte, or -1.
 */
static long scan_zero(const uint8_t *b, size_t size, size_t win,
		      unsigned long *samples)
{
	size_t pw = ((win % PAGE) + 7) & ~7UL;	/* inside the window */
	size_t bw = win % GMFS_BLOCK;
	size_t spot[3] = { 0, (size / 2) & ~(PAGE - 1), size - PAGE };
	size_t off;
	long i;
	int k;

	*samples = 0;
	for (off = 0; off + PAGE <= size; off += PAGE) {
		if (ld64(b + off))
			return (long)off;
		if (ld64(b + off + PAGE - 8))
			return (long)(off + PAGE - 8);
		if (pw + 8 <= PAGE && ld64(b + off + pw))
			return (long)(off + pw);
		*samples += 3;
	}
	for (off = 0; off + GMFS_BLOCK <= size; off += GMFS_BLOCK) {
		i = first_nonzero(b + off + bw, XFER);
		if (i >= 0)
			return (long)(off + bw + i);
		(*samples)++;
	}
	for (k = 0; k < 3; k++) {
		i = first_nonzero(b + spot[k], PAGE);
		if (i >= 0)
			return (long)(spot[k] + i);
		(*samples)++;
	}
	return -1;
}

/* Where, in any 2 MiB block of @b, the window at @win holds @pat. */
static long find_pattern(const uint8_t *b, size_t size, size_t win,
			 const uint8_t *pat)
{
	size_t bw = win % GMFS_BLOCK;
	size_t off;

	for (off = 0; off + GMFS_BLOCK <= size; off += GMFS_BLOCK)
		if (!memcmp(b + off + bw, pat, XFER))
			return (long)(off + bw);
	return -1;
}

/* The edu device through VFIO */

struct edu {
	int fd;
	volatile uint8_t *bar;	/* BAR0's first page, or NULL: pread/pwrite */
	uint64_t bar_off;	/* BAR0's and config space's offsets in fd */
	uint64_t cfg_off;
};

static int region_info(int fd, unsigned int index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	return ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, ri);
}

static uint64_t edu_rd64(struct edu *e, unsigned int reg)
{
	uint64_t v;

	if (e->bar)
		return *(volatile uint64_t *)(e->bar + reg);
	if (pread(e->fd, &v, sizeof(v), e->bar_off + reg) != sizeof(v))
		return ~0ULL;	/* looks busy: the DMA wait times out */
	return v;
}

static uint32_t edu_rd32(struct edu *e, unsigned int reg)
{
	uint32_t v;

	if (e->bar)
		return *(volatile uint32_t *)(e->bar + reg);
	if (pread(e->fd, &v, sizeof(v), e->bar_off + reg) != sizeof(v))
		return ~0U;
	return v;
}

/* 64-bit stores: edu takes a 4-byte store at 0x80.. as the whole value */
static void edu_wr64(struct edu *e, unsigned int reg, uint64_t v)
{
	if (e->bar)
		*(volatile uint64_t *)(e->bar + reg) = v;
	else if (pwrite(e->fd, &v, sizeof(v), e->bar_off + reg) != sizeof(v))
		printf("pwrite edu register 0x%x: %s\n", reg, strerror(errno));
}

static void edu_wr32(struct edu *e, unsigned int reg, uint32_t v)
{
	if (e->bar)
		*(volatile uint32_t *)(e->bar + reg) = v;
	else if (pwrite(e->fd, &v, sizeof(v), e->bar_off + reg) != sizeof(v))
		printf("pwrite edu register 0x%x: %s\n", reg, strerror(errno));
}

static int edu_open(struct edu *e, int fd)
{
	struct vfio_region_info bar, cfg;
	uint32_t id, probe = 0x5a17c0de ^ (uint32_t)seed, live;
	uint16_t cmd;

	e->fd = fd;
	e->bar = NULL;
	if (region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &bar)) {
		fail("VFIO_DEVICE_GET_REGION_INFO(BAR0): %s", strerror(errno));
		return -1;
	}
	if (bar.size < PAGE || (~bar.flags & (VFIO_REGION_INFO_FLAG_READ |
					      VFIO_REGION_INFO_FLAG_WRITE))) {
		fail("edu BAR0: size %llu, flags 0x%x", (unsigned long long)bar.size,
		     bar.flags);
		return -1;
	}
	e->bar_off = bar.offset;
	if (bar.flags & VFIO_REGION_INFO_FLAG_MMAP) {
		void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fd, bar.offset);

		if (p != MAP_FAILED)
			e->bar = p;
		else
			printf("mmap of BAR0 failed (%s): using pread/pwrite\n",
			       strerror(errno));
	}
	if (region_info(fd, VFIO_PCI_CONFIG_REGION_INDEX, &cfg)) {
		fail("VFIO_DEVICE_GET_REGION_INFO(config): %s", strerror(errno));
		return -1;
	}
	e->cfg_off = cfg.offset;

	/* Without bus mastering, edu's DMA silently does nothing. */
	if (pread(fd, &cmd, sizeof(cmd), e->cfg_off + PCI_COMMAND) != sizeof(cmd)) {
		fail("read PCI_COMMAND: %s", strerror(errno));
		return -1;
	}
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(fd, &cmd, sizeof(cmd), e->cfg_off + PCI_COMMAND) != sizeof(cmd)) {
		fail("write PCI_COMMAND: %s", strerror(errno));
		return -1;
	}
	if (pread(fd, &cmd, sizeof(cmd), e->cfg_off + PCI_COMMAND) != sizeof(cmd) ||
	    (~cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))) {
		fail("PCI_COMMAND reads 0x%04x: memory space or bus master off", cmd);
		return -1;
	}

	id = edu_rd32(e, EDU_ID);
	edu_wr32(e, EDU_LIVENESS, probe);
	live = edu_rd32(e, EDU_LIVENESS);
	if (id != EDU_ID_VALUE || live != ~probe) {
		fail("edu through VFIO: id 0x%08x (expected 0x%08x), liveness 0x%08x for 0x%08x",
		     id, EDU_ID_VALUE, live, probe);
		return -1;
	}
	ok("edu BAR0 (%llu KiB, %s) through VFIO: id 0x%08x, liveness answers; PCI_COMMAND 0x%04x",
	   (unsigned long long)bar.size / KiB, e->bar ? "mmap" : "pread/pwrite",
	   id, cmd);
	return 0;
}

static void edu_close(struct edu *e)
{
	if (e->bar)
		munmap((void *)e->bar, PAGE);
	e->bar = NULL;
}

static int edu_wait(struct edu *e, double *ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (!(edu_rd64(e, EDU_DMA_CMD) & EDU_DMA_START))
			break;
		if (t.tv_sec - t0.tv_sec > DMA_TIMEOUT_S)
			return -1;
		usleep(1000);
	}
	if (ms)
		*ms = (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
	return 0;
}

/* One XFER-byte transfer; a timeout is fatal to the mode. */
static int edu_dma(struct edu *e, uint64_t src, uint64_t dst, bool to_ram)
{
	double ms;

	if (edu_wait(e, NULL)) {
		fail("edu DMA engine still busy after %d s", DMA_TIMEOUT_S);
		return -1;
	}
	/* the CPU's stores to the source are visible before the device reads */
	__sync_synchronize();
	edu_wr64(e, EDU_DMA_SRC, src);
	edu_wr64(e, EDU_DMA_DST, dst);
	edu_wr64(e, EDU_DMA_CNT, XFER);
	edu_wr64(e, EDU_DMA_CMD, EDU_DMA_START | (to_ram ? EDU_DMA_TO_RAM : 0));
	if (edu_wait(e, &ms)) {
		fail("edu DMA 0x%" PRIx64 " -> 0x%" PRIx64 " (%d bytes) not done after %d s",
		     src, dst, XFER, DMA_TIMEOUT_S);
		return -1;
	}
	__sync_synchronize();
	nr_dma++;
	dma_ms += ms;
	return 0;
}

static int dma_to_dev(struct edu *e, uint64_t iova)
{
	return edu_dma(e, iova, EDU_BUF, false);
}

static int dma_to_ram(struct edu *e, uint64_t iova)
{
	return edu_dma(e, EDU_BUF, iova, true);
}

/* Checks both modes share */

static int check_new_a(const uint8_t *a)
{
	long i = first_nonzero(a, A_SIZE);

	if (i >= 0) {
		fail("new file A has byte 0x%02x at offset 0x%lx", a[i], i);
		return -1;
	}
	ok("new file A (%llu MiB) reads zero", A_SIZE / MiB);
	return 0;
}

/* a: edu reads a pattern from A and writes it back elsewhere in A. */
static int check_roundtrip(struct edu *e, uint8_t *a, uint8_t *p1)
{
	pattern(p1, XFER, 1);
	memcpy(a + A_SRC1, p1, XFER);
	if (dma_to_dev(e, IOVA_A + A_SRC1) || dma_to_ram(e, IOVA_A + A_DST1))
		return -1;
	check_landed("a: A+3 MiB+123 -> edu -> A+5 MiB+77", a, A_SIZE, A_DST1,
		     p1, GUARD);
	return 0;
}

static int check_size(int fd, off_t want, const char *when)
{
	off_t size;

	if (file_size(fd, &size))
		return -1;
	if (size != want) {
		fail("%s: A's size is %lld, expected %lld", when, (long long)size,
		     (long long)want);
		return -1;
	}
	ok("%s: A's size is %lld MiB", when, (long long)size / (long long)MiB);
	return 0;
}

static void check_bfree(const char *dir, uint64_t want, const char *when)
{
	uint64_t bfree;

	if (gmfs_free(dir, &bfree))
		return;
	if (bfree != want)
		fail("%s: f_bfree %" PRIu64 ", expected %" PRIu64, when, bfree, want);
	else
		ok("%s: f_bfree %" PRIu64, when, bfree);
}

/* iommufd mode */

static int vfio_cdev(char *buf, size_t len)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;
	int found = -1;

	dev_path(path, sizeof(path), "vfio-dev");
	dir = opendir(path);
	if (!dir) {
		fail("%s: %s (no VFIO cdev: CONFIG_VFIO_DEVICE_CDEV?)", path,
		     strerror(errno));
		return -1;
	}
	while ((d = readdir(dir))) {
		if (!strncmp(d->d_name, "vfio", 4)) {
			snprintf(buf, len, "/dev/vfio/devices/%s", d->d_name);
			found = 0;
			break;
		}
	}
	closedir(dir);
	if (found)
		fail("no vfioN in %s", path);
	return found;
}

/*
 * The leaves of edu's VT-d page table over [iova, iova + len), counted by
 * size, from the driver's debugfs dump (CONFIG_INTEL_IOMMU_DEBUGFS): a row
 * per leaf, "IOVA_PFN | PML5E PML4E PDPE [PDE [PTE]]", so its number of
 * entries says its level. Return: -1 if the dump cannot be read.
 */
static int vtd_leaves(uint64_t iova, uint64_t len, unsigned long *n1g,
		      unsigned long *n2m, unsigned long *n4k)
{
	char line[512], dev[80], path[PATH_MAX];
	bool ours = false;
	FILE *f;

	*n1g = *n2m = *n4k = 0;
	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/iommu/intel/%s/domain_translation_struct",
		 g.bdf);
	f = fopen(path, "r");
	if (!f)
		return -1;
	snprintf(dev, sizeof(dev), "Device %s ", g.bdf);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long pfn, e[5];
		int n;

		if (!strncmp(line, "Device ", 7)) {
			ours = !strncmp(line, dev, strlen(dev));
			continue;
		}
		n = sscanf(line, "0x%llx | %llx %llx %llx %llx %llx", &pfn,
			   &e[0], &e[1], &e[2], &e[3], &e[4]);
		if (!ours || n < 4 || pfn << 12 < iova || pfn << 12 >= iova + len)
			continue;
		if (n == 4)
			(*n1g)++;
		else if (n == 5)
			(*n2m)++;
		else
			(*n4k)++;
	}
	fclose(f);
	return 0;
}

/* Open /dev/iommu and the device's cdev, bind them, and make an IOAS. */
static int iommufd_bind(uint32_t *ioas)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char cdev[PATH_MAX];

	g.iommu_fd = open("/dev/iommu", O_RDWR);
	if (g.iommu_fd < 0) {
		fail("open /dev/iommu: %s", strerror(errno));
		return -1;
	}
	if (vfio_cdev(cdev, sizeof(cdev)))
		return -1;
	g.dev_fd = open(cdev, O_RDWR);
	if (g.dev_fd < 0) {
		fail("open %s: %s", cdev, strerror(errno));
		return -1;
	}
	bind.iommufd = g.iommu_fd;
	if (ioctl(g.dev_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		fail("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
		return -1;
	}
	if (ioctl(g.iommu_fd, IOMMU_IOAS_ALLOC, &alloc)) {
		fail("IOMMU_IOAS_ALLOC: %s", strerror(errno));
		return -1;
	}
	*ioas = alloc.out_ioas_id;
	g.devid = bind.out_devid;
	ok("%s bound to iommufd (devid %u), IOAS %u", cdev, bind.out_devid,
	   *ioas);
	return 0;
}

/* IOMMU_IOAS_MAP_FILE of @fd from its start, read-write, at @iova */
static int ioas_map_file(uint32_t ioas, int fd, uint64_t length,
			 uint64_t iova)
{
	struct iommu_ioas_map_file mf = {
		.size = sizeof(mf),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
			 IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.fd = fd,
		.length = length,
		.iova = iova,
	};

	return ioctl(g.iommu_fd, IOMMU_IOAS_MAP_FILE, &mf);
}

static void run_iommufd(const char *dir)
{
	uint8_t p1[XFER], p2[XFER], p3[XFER];
	uint8_t *a = NULL, *b = NULL, *bounce = NULL;
	char pa[PATH_MAX], pb[PATH_MAX];
	uint64_t bfree0, bfree_c, bfree, bsize = 0;
	int afd = -1, bfd = -1;
	uint32_t ioas = 0;
	bool attached = false, a_mapped = false;
	struct edu e = { .fd = -1 };
	unsigned long samples;
	off_t size;
	long off;
	int r;

	snprintf(pa, sizeof(pa), "%s/edu_dma_A", dir);
	snprintf(pb, sizeof(pb), "%s/edu_dma_B", dir);

	if (iommufd_bind(&ioas))
		goto out;

	afd = gmfs_create(pa, A_SIZE);
	if (afd < 0)
		goto out;
	a = map_file(afd, A_SIZE, "A");
	if (!a || check_new_a(a) || gmfs_free(dir, &bfree0))
		goto out;

	if (ioas_map_file(ioas, afd, A_SIZE, IOVA_A)) {
		fail("IOMMU_IOAS_MAP_FILE of A (%llu MiB at IOVA 0x%llx): %s",
		     A_SIZE / MiB, IOVA_A, strerror(errno));
		goto out;
	}
	a_mapped = true;
	ok("IOMMU_IOAS_MAP_FILE: A's %llu MiB at IOVA 0x%llx", A_SIZE / MiB,
	   IOVA_A);

	/* Plain memory the device can reach, to see A once A's mmap is gone. */
	bounce = mmap(NULL, BOUNCE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (bounce == MAP_FAILED) {
		bounce = NULL;
		fail("mmap bounce buffer: %s", strerror(errno));
		goto out;
	}
	{
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
				 IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = ioas,
			.user_va = (uintptr_t)bounce,
			.length = BOUNCE_SIZE,
			.iova = IOVA_BOUNCE,
		};
		struct vfio_device_attach_iommufd_pt at = {
			.argsz = sizeof(at),
			.pt_id = ioas,
		};

		if (ioctl(g.iommu_fd, IOMMU_IOAS_MAP, &map)) {
			fail("IOMMU_IOAS_MAP of the bounce buffer: %s", strerror(errno));
			goto out;
		}
		if (ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
			fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT(IOAS %u): %s", ioas,
			     strerror(errno));
			goto out;
		}
		attached = true;
		ok("edu attached to IOAS %u (pt %u); bounce buffer at IOVA 0x%llx",
		   ioas, at.pt_id, IOVA_BOUNCE);
	}
	{
		unsigned long g1, m2, k4;

		/* guestmemfs blocks, 2 MiB aligned: 2 MiB IOPTEs on VT-d */
		if (vtd_leaves(IOVA_A, A_SIZE, &g1, &m2, &k4))
			fail("VT-d page table dump: %s", strerror(errno));
		else if (m2 != A_SIZE / GMFS_BLOCK || g1 || k4)
			fail("A's %llu MiB in VT-d IOPTEs: %lu of 1 GiB, %lu of 2 MiB, %lu of 4 KiB; expected %llu of 2 MiB",
			     A_SIZE / MiB, g1, m2, k4, A_SIZE / GMFS_BLOCK);
		else
			ok("A's %llu MiB in %lu VT-d IOPTEs of 2 MiB",
			   A_SIZE / MiB, m2);
	}
	if (edu_open(&e, g.dev_fd))
		goto out;

	/* a */
	if (check_roundtrip(&e, a, p1))
		goto out;

	/* b */
	errno = 0;
	r = ftruncate(afd, 4 * MiB);
	if (!r) {
		/* A's mmap above 4 MiB is gone: touching it would SIGBUS */
		fail("b: ftruncate(A, 4 MiB) succeeded while A's 8 MiB are IOAS-mapped");
		goto out;
	}
	if (errno != EBUSY)
		fail("b: ftruncate(A, 4 MiB) failed with %s, expected EBUSY",
		     strerror(errno));
	else
		ok("b: ftruncate(A, 4 MiB) below the mapped range: EBUSY");
	if (check_size(afd, A_SIZE, "b: after the refused shrink"))
		goto out;
	if (ftruncate(afd, 16 * MiB))
		fail("b: ftruncate(A, 16 MiB) (growing): %s", strerror(errno));
	else
		ok("b: ftruncate(A, 16 MiB) (growing) works");
	check_size(afd, 16 * MiB, "b: after growing");
	if (ftruncate(afd, A_SIZE))
		fail("b: ftruncate(A, 8 MiB) (back to the mapping's end): %s",
		     strerror(errno));
	else
		ok("b: ftruncate(A, 8 MiB) (back to the mapping's end) works");
	if (file_size(afd, &size) || size < (off_t)A_SIZE)
		goto out;	/* the mmap's tail may be gone */
	check_bfree(dir, bfree0, "b: after growing and shrinking back");
	check_landed("b: a's data after the truncates", a, A_SIZE, A_DST1, p1,
		     GUARD);

	/* c */
	if (gmfs_free(dir, &bfree_c))
		goto out;
	if (unlink(pa)) {
		fail("c: unlink A: %s", strerror(errno));
		goto out;
	}
	close(afd);
	afd = -1;
	check_bfree(dir, bfree_c, "c: A unlinked and closed, still mmapped and IOAS-mapped");
	pattern(p2, XFER, 2);
	memcpy(a + A_SRC2, p2, XFER);
	if (dma_to_dev(&e, IOVA_A + A_SRC2) || dma_to_ram(&e, IOVA_A + A_DST2))
		goto out;
	check_landed("c: unlinked A+6 MiB+321 -> edu -> A+4 MiB-1000 (across two blocks)",
		     a, A_SIZE, A_DST2, p2, GUARD);

	/* d */
	munmap(a, A_SIZE);
	a = NULL;
	check_bfree(dir, bfree_c, "d: A munmapped: only the IOAS holds its blocks");
	/* zero edu's buffer first, so that a read of A that fails shows */
	if (dma_to_dev(&e, IOVA_BOUNCE + BNC_ZERO) ||
	    dma_to_dev(&e, IOVA_A + A_DST2) ||
	    dma_to_ram(&e, IOVA_BOUNCE + BNC_DST1))
		goto out;
	check_landed("d: A+4 MiB-1000 -> edu -> bounce: A still holds c's data",
		     bounce, BOUNCE_SIZE, BNC_DST1, p2, KiB);

	/* e */
	if (gmfs_free(dir, &bfree))
		goto out;
	{
		struct statfs sf;

		if (!statfs(dir, &sf))
			bsize = sf.f_bsize;
	}
	if (!bfree || !bsize) {
		printf("e: no free space left for file B: B skipped\n");
	} else {
		uint64_t bsz = bfree * bsize;

		bfd = gmfs_create(pb, bsz);
		if (bfd < 0)
			goto out;
		b = map_file(bfd, bsz, "B");
		if (!b)
			goto out;
		check_bfree(dir, 0, "e: B took all free blocks");
		off = scan_zero(b, bsz, A_DST3, &samples);
		if (off >= 0)
			fail("e: new file B (%llu MiB) has byte 0x%02x at offset 0x%lx",
			     (unsigned long long)(bsz / MiB), b[off], off);
		else
			ok("e: new file B (%" PRIu64 " blocks, %llu MiB) reads zero (%lu samples)",
			   bfree, (unsigned long long)(bsz / MiB), samples);
	}
	pattern(p3, XFER, 3);
	memcpy(bounce + BNC_SRC, p3, XFER);
	if (dma_to_dev(&e, IOVA_BOUNCE + BNC_SRC) ||
	    dma_to_ram(&e, IOVA_A + A_DST3))
		goto out;
	if (b) {
		uint64_t bsz = bfree * bsize;

		off = scan_zero(b, bsz, A_DST3, &samples);
		if (off >= 0)
			fail("e: a DMA to A's IOVA changed file B at offset 0x%lx%s",
			     off, find_pattern(b, bsz, A_DST3, p3) >= 0 ?
			     " (B holds the DMA's data)" : "");
		else
			ok("e: DMA to A's IOVA+7 MiB+555 left B untouched (%lu samples)",
			   samples);
	}
	if (dma_to_dev(&e, IOVA_BOUNCE + BNC_ZERO) ||
	    dma_to_dev(&e, IOVA_A + A_DST3) ||
	    dma_to_ram(&e, IOVA_BOUNCE + BNC_DST2))
		goto out;
	check_landed("e: the DMA landed in A: A+7 MiB+555 -> edu -> bounce",
		     bounce, BOUNCE_SIZE, BNC_DST2, p3, KiB);
	if (b) {
		munmap(b, bfree * bsize);
		b = NULL;
		close(bfd);
		bfd = -1;
		if (unlink(pb))
			fail("e: unlink B: %s", strerror(errno));
		check_bfree(dir, bfree_c, "e: B removed");
	}

	/* f */
	{
		struct iommu_ioas_unmap um = {
			.size = sizeof(um),
			.ioas_id = ioas,
			.iova = IOVA_A,
			.length = A_SIZE,
		};

		if (ioctl(g.iommu_fd, IOMMU_IOAS_UNMAP, &um)) {
			fail("f: IOMMU_IOAS_UNMAP of A: %s", strerror(errno));
			goto out;
		}
		a_mapped = false;
		if (um.length != A_SIZE)
			fail("f: IOMMU_IOAS_UNMAP unmapped %llu bytes, expected %llu",
			     (unsigned long long)um.length, A_SIZE);
		check_bfree(dir, bfree_c + A_SIZE / GMFS_BLOCK,
			    "f: IOMMU_IOAS_UNMAP of A frees its 4 blocks");
	}

out:
	if (attached) {
		struct vfio_device_detach_iommufd_pt dt = { .argsz = sizeof(dt) };

		if (ioctl(g.dev_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt))
			fail("VFIO_DEVICE_DETACH_IOMMUFD_PT: %s", strerror(errno));
	}
	edu_close(&e);
	if (g.dev_fd >= 0)
		close(g.dev_fd);
	g.dev_fd = -1;
	if (ioas) {
		struct iommu_destroy de = { .size = sizeof(de), .id = ioas };

		/* also unpins A if a failure left it mapped */
		if (ioctl(g.iommu_fd, IOMMU_DESTROY, &de))
			fail("IOMMU_DESTROY(IOAS %u): %s", ioas, strerror(errno));
	}
	if (a_mapped)
		printf("A was still IOAS-mapped: unmapped by IOMMU_DESTROY\n");
	close_vfio();
	if (b)
		munmap(b, bfree * bsize);
	if (bfd >= 0)
		close(bfd);
	if (a)
		munmap(a, A_SIZE);
	if (afd >= 0)
		close(afd);
	if (bounce)
		munmap(bounce, BOUNCE_SIZE);
	unlink(pa);
	unlink(pb);
}

/* type1 mode */

/*
 * ftruncate(A, 0) worked although A is DMA-mapped: show where the
 * device's writes to A's old IOVA go now. B takes all the free space,
 * so it holds A's freed blocks whatever the allocator's order.
 */
static void show_leak(const char *dir, const char *pb, struct edu *e,
		      const uint8_t *p1, uint64_t bsize)
{
	unsigned long samples;
	uint64_t bfree, bsz;
	uint8_t *b = NULL;
	long off, at;
	int bfd;

	printf("b: ftruncate(A, 0) succeeded on a DMA-mapped file: looking for the device's writes in another file\n");
	if (gmfs_free(dir, &bfree) || !bfree || !bsize) {
		fail("ftruncate of a DMA-mapped file succeeded");
		return;
	}
	bsz = bfree * bsize;
	bfd = gmfs_create(pb, bsz);
	if (bfd >= 0)
		b = map_file(bfd, bsz, "B");
	if (!b) {
		fail("ftruncate of a DMA-mapped file succeeded");
		goto out;
	}
	off = scan_zero(b, bsz, A_LEAK, &samples);
	if (off >= 0)
		printf("new file B already has a nonzero byte at 0x%lx\n", off);
	/* edu's buffer still holds p1, from check a */
	if (dma_to_ram(e, IOVA_A + A_LEAK)) {
		fail("ftruncate of a DMA-mapped file succeeded");
		goto out;
	}
	at = find_pattern(b, bsz, A_LEAK, p1);
	if (at >= 0) {
		fail("cross-file leak: a DMA through A's old mapping landed in file B (B offset 0x%lx of %llu MiB, %d bytes)",
		     at, (unsigned long long)(bsz / MiB), XFER);
	} else {
		off = scan_zero(b, bsz, A_LEAK, &samples);
		if (off >= 0)
			printf("B changed at offset 0x%lx, not with the DMA's data\n",
			       off);
		fail("ftruncate of a DMA-mapped file succeeded");
	}
out:
	if (b)
		munmap(b, bsz);
	if (bfd >= 0)
		close(bfd);
	unlink(pb);
}

static void run_type1(const char *dir)
{
	char path[PATH_MAX], grp[64], pa[PATH_MAX], pb[PATH_MAX];
	uint64_t bfree0, bfree_c, bsize = 0;
	bool dma_mapped = false;
	struct edu e = { .fd = -1 };
	uint8_t p1[XFER];
	uint8_t *a = NULL;
	struct statfs sf;
	int afd = -1, r;

	snprintf(pa, sizeof(pa), "%s/edu_dma_A", dir);
	snprintf(pb, sizeof(pb), "%s/edu_dma_B", dir);

	g.container_fd = open("/dev/vfio/vfio", O_RDWR);
	if (g.container_fd < 0) {
		fail("open /dev/vfio/vfio: %s", strerror(errno));
		goto out;
	}
	r = ioctl(g.container_fd, VFIO_GET_API_VERSION);
	if (r != VFIO_API_VERSION) {
		fail("VFIO_GET_API_VERSION: %d, expected %d", r, VFIO_API_VERSION);
		goto out;
	}
	r = ioctl(g.container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	if (r <= 0) {
		fail("VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU): %d", r);
		goto out;
	}
	dev_path(path, sizeof(path), "iommu_group");
	if (link_name(path, grp, sizeof(grp))) {
		fail("%s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", grp);
	g.group_fd = open(path, O_RDWR);
	if (g.group_fd < 0) {
		fail("open %s: %s", path, strerror(errno));
		goto out;
	}
	{
		struct vfio_group_status st = { .argsz = sizeof(st) };

		if (ioctl(g.group_fd, VFIO_GROUP_GET_STATUS, &st)) {
			fail("VFIO_GROUP_GET_STATUS: %s", strerror(errno));
			goto out;
		}
		if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
			fail("group %s not viable (flags 0x%x): another device of the group is not bound to vfio",
			     grp, st.flags);
			goto out;
		}
	}
	if (ioctl(g.group_fd, VFIO_GROUP_SET_CONTAINER, &g.container_fd)) {
		fail("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
		goto out;
	}
	g.container_set = true;
	if (ioctl(g.container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		fail("VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU): %s", strerror(errno));
		goto out;
	}
	ok("container: VFIO API %d, TYPE1v2; group %s viable and set", VFIO_API_VERSION,
	   grp);

	if (!statfs(dir, &sf))
		bsize = sf.f_bsize;
	afd = gmfs_create(pa, A_SIZE);
	if (afd < 0)
		goto out;
	a = map_file(afd, A_SIZE, "A");
	if (!a || check_new_a(a) || gmfs_free(dir, &bfree0))
		goto out;
	{
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)a,
			.iova = IOVA_A,
			.size = A_SIZE,
		};

		if (ioctl(g.container_fd, VFIO_IOMMU_MAP_DMA, &map)) {
			fail("VFIO_IOMMU_MAP_DMA of A's mmap (%llu MiB at IOVA 0x%llx): %s",
			     A_SIZE / MiB, IOVA_A, strerror(errno));
			goto out;
		}
		dma_mapped = true;
		ok("VFIO_IOMMU_MAP_DMA: A's mmap, %llu MiB at IOVA 0x%llx",
		   A_SIZE / MiB, IOVA_A);
	}
	g.dev_fd = ioctl(g.group_fd, VFIO_GROUP_GET_DEVICE_FD, g.bdf);
	if (g.dev_fd < 0) {
		fail("VFIO_GROUP_GET_DEVICE_FD(%s): %s", g.bdf, strerror(errno));
		goto out;
	}
	if (edu_open(&e, g.dev_fd))
		goto out;

	/* a */
	if (check_roundtrip(&e, a, p1))
		goto out;

	/* b */
	errno = 0;
	r = ftruncate(afd, 0);
	if (!r) {
		/* A's mmap is all gone: never touch it again */
		munmap(a, A_SIZE);
		a = NULL;
		show_leak(dir, pb, &e, p1, bsize);
		goto out;
	}
	if (errno != EBUSY)
		fail("b: ftruncate(A, 0) of the DMA-mapped file failed with %s, expected EBUSY",
		     strerror(errno));
	else
		ok("b: ftruncate(A, 0) of the DMA-mapped file: EBUSY");
	if (check_size(afd, A_SIZE, "b: after the refused truncate"))
		goto out;
	check_bfree(dir, bfree0, "b: after the refused truncate");
	check_landed("b: a's data after the refused truncate", a, A_SIZE, A_DST1,
		     p1, GUARD);

	/* c */
	{
		struct vfio_iommu_type1_dma_unmap um = {
			.argsz = sizeof(um),
			.iova = IOVA_A,
			.size = A_SIZE,
		};

		if (ioctl(g.container_fd, VFIO_IOMMU_UNMAP_DMA, &um)) {
			fail("c: VFIO_IOMMU_UNMAP_DMA: %s", strerror(errno));
			goto out;
		}
		dma_mapped = false;
		if (um.size != A_SIZE)
			fail("c: VFIO_IOMMU_UNMAP_DMA unmapped %llu bytes, expected %llu",
			     (unsigned long long)um.size, A_SIZE);
	}
	if (gmfs_free(dir, &bfree_c))
		goto out;
	if (ftruncate(afd, 0)) {
		fail("c: ftruncate(A, 0) after VFIO_IOMMU_UNMAP_DMA: %s",
		     strerror(errno));
		goto out;
	}
	ok("c: ftruncate(A, 0) after VFIO_IOMMU_UNMAP_DMA works");
	munmap(a, A_SIZE);
	a = NULL;
	close(afd);
	afd = -1;
	if (unlink(pa))
		fail("c: unlink A: %s", strerror(errno));
	check_bfree(dir, bfree_c + A_SIZE / GMFS_BLOCK,
		    "c: A truncated and unlinked: its 4 blocks are free");

out:
	edu_close(&e);
	if (g.dev_fd >= 0)
		close(g.dev_fd);
	g.dev_fd = -1;
	if (dma_mapped) {
		struct vfio_iommu_type1_dma_unmap um = {
			.argsz = sizeof(um),
			.iova = IOVA_A,
			.size = A_SIZE,
		};

		if (ioctl(g.container_fd, VFIO_IOMMU_UNMAP_DMA, &um))
			fail("VFIO_IOMMU_UNMAP_DMA: %s", strerror(errno));
	}
	close_vfio();	/* group: unset container, close; then container */
	if (a)
		munmap(a, A_SIZE);
	if (afd >= 0)
		close(afd);
	unlink(pa);
	unlink(pb);
}

/*
 * make bench: IOMMU_IOAS_MAP_FILE of 1 GiB into the edu's VT-d domain,
 * from a guestmemfs file, a 2 MiB hugetlbfs memfd and a shmem memfd, each
 * populated first, so that the time is the pinning and the mapping. The
 * IOMMU page-table pages are the rise of nr_iommu_pages in /proc/vmstat.
 * guestmemfs is mapped a second time at an IOVA that is only 2 MiB
 * aligned, where 1 GiB IOPTEs cannot be used.
 */
#define BENCH_SIZE	(1024 * MiB)

static long iommu_pages(void)
{
	char line[128];
	long v = -1;
	FILE *f;

	/* Fold the per-CPU deltas, or small changes do not show */
	write_str("/proc/sys/vm/stat_refresh", "1");
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nr_iommu_pages %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int bench_file(const char *dir, const char *kind)
{
	char path[PATH_MAX];
	uint8_t *m;
	size_t i;
	int fd;

	if (!strcmp(kind, "guestmemfs")) {
		snprintf(path, sizeof(path), "%s/edu_dma_bench", dir);
		fd = gmfs_create(path, BENCH_SIZE);
		unlink(path);
		return fd;
	}
	fd = memfd_create(kind, strcmp(kind, "hugetlbfs") ? 0 :
			  MFD_HUGETLB | MFD_HUGE_2MB);
	if (fd < 0 || ftruncate(fd, BENCH_SIZE)) {
		fail("%s memfd of 1 GiB: %s", kind, strerror(errno));
		return -1;
	}
	/* Populated, as guest RAM is before a device is given it */
	m = map_file(fd, BENCH_SIZE, kind);
	if (!m) {
		close(fd);
		return -1;
	}
	for (i = 0; i < BENCH_SIZE; i += PAGE)
		m[i] = 1;
	munmap(m, BENCH_SIZE);
	return fd;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define BENCH_RUNS	5

/* Map and unmap BENCH_RUNS times; the median times, the first run's tables */
static void bench_one(uint32_t ioas, int fd, const char *kind,
		      uint64_t iova)
{
	struct iommu_ioas_map_file mf = {
		.size = sizeof(mf),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.fd = fd,
		.length = BENCH_SIZE,
		.iova = iova,
	};
	struct iommu_ioas_unmap um = {
		.size = sizeof(um),
		.ioas_id = ioas,
		.iova = iova,
		.length = BENCH_SIZE,
	};
	double map_us[BENCH_RUNS], unmap_us[BENCH_RUNS], t0;
	unsigned long g1 = 0, m2 = 0, k4 = 0;
	long p0 = 0, p1 = 0, p2 = 0;
	int run;

	for (run = 0; run < BENCH_RUNS; run++) {
		if (!run)
			p0 = iommu_pages();
		t0 = now_us();
		if (ioctl(g.iommu_fd, IOMMU_IOAS_MAP_FILE, &mf)) {
			fail("IOMMU_IOAS_MAP_FILE of 1 GiB of %s: %s", kind,
			     strerror(errno));
			return;
		}
		map_us[run] = now_us() - t0;
		if (!run) {
			p1 = iommu_pages();
			vtd_leaves(iova, BENCH_SIZE, &g1, &m2, &k4);
		}
		t0 = now_us();
		if (ioctl(g.iommu_fd, IOMMU_IOAS_UNMAP, &um)) {
			fail("IOMMU_IOAS_UNMAP of %s: %s", kind, strerror(errno));
			return;
		}
		unmap_us[run] = now_us() - t0;
		if (!run)
			p2 = iommu_pages();
	}
	qsort(map_us, BENCH_RUNS, sizeof(double), cmp_double);
	qsort(unmap_us, BENCH_RUNS, sizeof(double), cmp_double);
	ok("%s: 1 GiB at IOVA 0x%llx mapped in %.0f us (median of %d) with %ld IOMMU page-table pages (IOPTEs: %lu of 1 GiB, %lu of 2 MiB, %lu of 4 KiB), unmapped in %.0f us",
	   kind, (unsigned long long)iova, map_us[BENCH_RUNS / 2], BENCH_RUNS,
	   p1 - p0, g1, m2, k4, unmap_us[BENCH_RUNS / 2]);
	printf("BENCH: iommufd_map_file kind=%s mib=%llu iova=0x%llx runs=%d map_us=%.0f map_min_us=%.0f map_max_us=%.0f unmap_us=%.0f pt_pages=%ld pt_pages_left=%ld iopte_1g=%lu iopte_2m=%lu iopte_4k=%lu\n",
	       kind, BENCH_SIZE / MiB, (unsigned long long)iova, BENCH_RUNS,
	       map_us[BENCH_RUNS / 2], map_us[0], map_us[BENCH_RUNS - 1],
	       unmap_us[BENCH_RUNS / 2], p1 - p0, p2 - p0, g1, m2, k4);
}

static void run_mapbench(const char *dir)
{
	static const char * const kinds[] = { "guestmemfs", "hugetlbfs",
					      "shmem" };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	uint32_t ioas = 0;
	unsigned int i;
	int fd;

	if (iommufd_bind(&ioas))
		return;
	/* A domain to map into: the device is attached before any map */
	at.pt_id = ioas;
	if (ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT(IOAS %u): %s", ioas,
		     strerror(errno));
		return;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		fd = bench_file(dir, kinds[i]);
		if (fd < 0)
			continue;
		/* 1 GiB aligned IOVAs: each kind may use 1 GiB IOPTEs */
		bench_one(ioas, fd, kinds[i], (4ULL + 2 * i) << 30);
		if (!strcmp(kinds[i], "guestmemfs"))
			bench_one(ioas, fd, "guestmemfs-iova-2M-aligned",
				  (12ULL << 30) + 2 * MiB);
		close(fd);
	}
	ioctl(g.dev_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT,
	      &(struct vfio_device_detach_iommufd_pt){ .argsz = sizeof(struct vfio_device_detach_iommufd_pt) });
}

/* Persistent IOMMU domains across a real kexec */

#define LU_FILE		".gmfs_edu_lu"
#define LU_SIZE		(4 * MiB)
#define LU_IOVA		0xc000000ULL	/* under edu's 28-bit DMA mask */
#define LU_TOKEN	0x4c55ed0000000001ULL
#define LU_SRC_A	(1 * MiB + 1000)
#define LU_DST_A	(2 * MiB + 3000)	/* L's second block */
#define LU_SRC_B	(3 * MiB + 500)
#define LU_DST_B	(64 * KiB + 77)
#define LU_SRC_C	(3 * MiB + 256 * KiB + 9)
#define LU_DST_C	(2 * MiB + 512 * KiB + 33)
#define LU_SRC_D	(3 * MiB + 512 * KiB + 17)
#define LU_DST_D	(2 * MiB + 768 * KiB + 5)
#define LU_SRC_E	(3 * MiB + 768 * KiB + 3)
#define LU_DST_E	(1 * MiB + 512 * KiB + 11)
#define LU_SRC_D2	(3 * MiB + 896 * KiB + 21)
#define LU_DST_D2	(1 * MiB + 640 * KiB + 7)
#define LU_SRC_F	(1 * MiB + 128 * KiB + 19)
#define LU_DST_F	(1 * MiB + 768 * KiB + 13)
#define LU_PID		"/tmp/kexec-hook.pid"	/* not carried by the kexec */
#define LU_ACK		"/tmp/kexec-hook.ack"
#define LU_EXIT		"/tmp/edu-lu-exit"	/* the holder's exit report */

#ifndef IOMMU_HWPT_LU_SET_PRESERVE
struct iommu_hwpt_lu_set_preserve {
	__u32 size;
	__u32 hwpt_id;
	__aligned_u64 hwpt_token;
	__u32 flags;
	__u32 __reserved;
};
#define IOMMU_HWPT_LU_SET_PRESERVE	_IO(IOMMUFD_TYPE, 0x95)
#endif

static volatile sig_atomic_t lu_kick, lu_exit;

static void lu_on_usr1(int sig __attribute__((unused)))
{
	lu_kick = 1;
}

static void lu_on_usr2(int sig __attribute__((unused)))
{
	lu_exit = 1;
}

/*
 * The VMM exits after the handover is finalized, before the kexec (as a
 * VMM that is not the one calling reboot() does): a detach is refused
 * first; then the device is closed, and opened and bound again to the
 * same iommufd, which must be refused too (it would reset the device);
 * then iommufd and every mapping are closed, and LU_EXIT says so, with
 * the detach's and the bind's errno. Never returns.
 */
static void __attribute__((noreturn)) lu_vmm_exit(struct edu *e)
{
	struct vfio_device_detach_iommufd_pt dt = { .argsz = sizeof(dt) };
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	char buf[64], cdev[PATH_MAX];
	int fd, err = 0, rebind = 0;

	if (ioctl(g.dev_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &dt))
		err = errno;
	/* The device file is released once its BAR is unmapped too */
	edu_close(e);
	if (close(g.dev_fd) || vfio_cdev(cdev, sizeof(cdev)))
		_exit(1);
	fd = open(cdev, O_RDWR);
	if (fd < 0)
		_exit(1);
	bind.iommufd = g.iommu_fd;
	if (ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		rebind = errno;
	if (close(fd) || close(g.iommu_fd))
		_exit(1);
	snprintf(buf, sizeof(buf), "detach %d rebind %d\n", err, rebind);
	fd = open(LU_EXIT ".new", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, strlen(buf)) < 0 || close(fd) ||
	    rename(LU_EXIT ".new", LU_EXIT))
		_exit(1);
	_exit(0);
}

static int lu_write_state(const char *state, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/edu_lu", state);
	f = fopen(path, "w");
	if (!f) {
		fail("create %s: %s", path, strerror(errno));
		return -1;
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f) ? -1 : 0;
}

/*
 * The VMM's side of the kexec: hold every fd (the device stays attached
 * to the marked HWPT) and, when kexec-reboot says the reboot is next,
 * start DMA (b). Never returns.
 */
static void __attribute__((noreturn)) lu_hold(struct edu *e)
{
	struct sigaction sa = { .sa_handler = lu_on_usr1 };
	struct sigaction sx = { .sa_handler = lu_on_usr2 };
	struct timespec t;
	char buf[64];
	int fd;

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sx, NULL);
	setsid();
	snprintf(buf, sizeof(buf), "%d\n", getpid());
	fd = open(LU_PID ".new", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, strlen(buf)) < 0 || close(fd) ||
	    rename(LU_PID ".new", LU_PID))
		_exit(1);
	while (!lu_kick && !lu_exit)
		pause();
	if (lu_exit)
		lu_vmm_exit(e);
	if (!e->bar)	/* make bench: no DMA, only the handover */
		goto out;
	edu_wr64(e, EDU_DMA_SRC, EDU_BUF);
	edu_wr64(e, EDU_DMA_DST, LU_IOVA + LU_DST_B);
	edu_wr64(e, EDU_DMA_CNT, XFER);
	edu_wr64(e, EDU_DMA_CMD, EDU_DMA_START | EDU_DMA_TO_RAM);
	clock_gettime(CLOCK_MONOTONIC, &t);
	snprintf(buf, sizeof(buf), "%ld.%06ld\n", (long)t.tv_sec,
		 t.tv_nsec / 1000);
	fd = open(LU_ACK, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, buf, strlen(buf)) < 0)
			_exit(1);
		close(fd);
	}
out:
	for (;;)
		pause();
}

/* Fork the holder that keeps every fd open until the kexec (lu_hold) */
static pid_t lu_start_holder(struct edu *e)
{
	pid_t pid;
	int i;

	unlink(LU_PID);
	unlink(LU_ACK);
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return -1;
	}
	if (!pid)
		lu_hold(e);
	for (i = 0; i < 500 && access(LU_PID, F_OK); i++)
		usleep(10000);
	if (access(LU_PID, F_OK)) {
		fail("the holder (pid %d) did not start", pid);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* PCI_COMMAND read through sysfs, with no driver's help */
static int sysfs_pci_command(uint16_t *cmd)
{
	char path[PATH_MAX];
	int fd, n;

	dev_path(path, sizeof(path), "config");
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : pread(fd, cmd, sizeof(*cmd), PCI_COMMAND);
	if (n != sizeof(*cmd))
		fail("read PCI_COMMAND through %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return n == sizeof(*cmd) ? 0 : -1;
}

/*
 * The kernel stopped edu when nothing carried its DMA on any more: its bus
 * mastering is off (@when names the check). Set it again through sysfs,
 * as a stray config write could: the IOMMU must block edu all the same,
 * which the caller checks with a DMA.
 */
static int lu_master_again(const char *when)
{
	char path[PATH_MAX];
	uint16_t cmd;
	int fd, n;

	if (sysfs_pci_command(&cmd))
		return -1;
	if (cmd & PCI_COMMAND_MASTER) {
		fail("PCI_COMMAND 0x%04x %s: bus mastering still on", cmd, when);
		return -1;
	}
	ok("PCI_COMMAND 0x%04x %s: bus mastering cleared", cmd, when);
	cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	dev_path(path, sizeof(path), "config");
	fd = open(path, O_WRONLY);
	n = fd < 0 ? -1 : pwrite(fd, &cmd, sizeof(cmd), PCI_COMMAND);
	if (fd >= 0)
		close(fd);
	if (n != sizeof(cmd)) {
		fail("set bus mastering through %s: %s", path, strerror(errno));
		return -1;
	}
	ok("bus mastering set again through sysfs: only the IOMMU stops edu now");
	return 0;
}

/* Bus mastering still on, read through sysfs: a check named by @when */
static int check_master(const char *when)
{
	uint16_t cmd;

	if (sysfs_pci_command(&cmd))
		return -1;
	if (!(cmd & PCI_COMMAND_MASTER))
		fail("PCI_COMMAND 0x%04x %s: bus mastering cleared", cmd, when);
	else
		ok("PCI_COMMAND 0x%04x %s: bus mastering kept", cmd, when);
	return 0;
}

static void run_lu_prepare(const char *dir, const char *state)
{
	uint8_t pa[XFER], pb[XFER], *l = NULL;
	char path[PATH_MAX];
	struct edu e = { .fd = -1 };
	uint32_t ioas, hwpt;
	pid_t pid;
	int lfd;

	snprintf(path, sizeof(path), "%s/%s", dir, LU_FILE);
	if (iommufd_bind(&ioas))
		return;
	lfd = gmfs_create(path, LU_SIZE);
	if (lfd < 0)
		return;
	l = map_file(lfd, LU_SIZE, "L");
	if (!l) {
		close(lfd);
		return;
	}
	{
		struct iommu_hwpt_alloc ha = {
			.size = sizeof(ha),
			.dev_id = g.devid,
			.pt_id = ioas,
		};
		struct vfio_device_attach_iommufd_pt at = {
			.argsz = sizeof(at),
		};

		if (ioas_map_file(ioas, lfd, LU_SIZE, LU_IOVA)) {
			fail("IOMMU_IOAS_MAP_FILE of L: %s", strerror(errno));
			goto out;
		}
		if (ioctl(g.iommu_fd, IOMMU_HWPT_ALLOC, &ha)) {
			fail("IOMMU_HWPT_ALLOC: %s", strerror(errno));
			goto out;
		}
		hwpt = ha.out_hwpt_id;
		at.pt_id = hwpt;
		if (ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
			fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT(HWPT %u): %s", hwpt,
			     strerror(errno));
			goto out;
		}
		ok("L (%llu MiB) at IOVA 0x%llx in HWPT %u, edu attached",
		   LU_SIZE / MiB, LU_IOVA, hwpt);
	}
	if (edu_open(&e, g.dev_fd))
		goto out;

	/* (a): a DMA before marking, and B into edu's buffer for (b) */
	pattern(pa, XFER, 100);
	pattern(pb, XFER, 101);
	memcpy(l + LU_SRC_A, pa, XFER);
	memcpy(l + LU_SRC_B, pb, XFER);
	if (dma_to_dev(&e, LU_IOVA + LU_SRC_A) ||
	    dma_to_ram(&e, LU_IOVA + LU_DST_A) ||
	    !check_landed("(a) DMA before marking", l, LU_SIZE, LU_DST_A, pa,
			  GUARD) ||
	    dma_to_dev(&e, LU_IOVA + LU_SRC_B))
		goto out;

	{
		struct iommu_hwpt_lu_set_preserve sp = {
			.size = sizeof(sp),
			.hwpt_id = hwpt,
			.hwpt_token = LU_TOKEN,
		};

		if (ioctl(g.iommu_fd, IOMMU_HWPT_LU_SET_PRESERVE, &sp)) {
			fail("IOMMU_HWPT_LU_SET_PRESERVE(HWPT %u): %s", hwpt,
			     strerror(errno));
			goto out;
		}
		ok("HWPT %u marked for preservation, token 0x%llx", hwpt,
		   (unsigned long long)LU_TOKEN);
	}

	if (lu_write_state(state, "%s %" PRIx64 "\n", g.bdf, seed))
		goto out;
	pid = lu_start_holder(&e);
	if (pid < 0)
		goto out;
	ok("pid %d holds edu, the HWPT and L until the kexec; (b) starts just before reboot",
	   pid);
	/* The holder keeps the device: nothing to give back */
	g.held = true;
	g.dev_fd = g.iommu_fd = -1;
out:
	/* The device is released only once its BAR is unmapped too */
	edu_close(&e);
	munmap(l, LU_SIZE);
	close(lfd);
}

static int sysfs_edu_open(struct edu *e)
{
	char path[PATH_MAX];
	void *p;

	dev_path(path, sizeof(path), "resource0");
	e->fd = open(path, O_RDWR | O_SYNC);
	if (e->fd < 0) {
		fail("open %s: %s", path, strerror(errno));
		return -1;
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
	if (p == MAP_FAILED) {
		fail("mmap %s: %s", path, strerror(errno));
		return -1;
	}
	e->bar = p;
	if (edu_rd32(e, EDU_ID) != EDU_ID_VALUE) {
		fail("edu through sysfs: id 0x%08x", edu_rd32(e, EDU_ID));
		return -1;
	}
	return 0;
}

/* A line in the kernel log, to find what the kernel logged around it */
static void kmsg(const char *msg)
{
	int fd = open("/dev/kmsg", O_WRONLY);

	if (fd < 0)
		return;
	if (write(fd, msg, strlen(msg)) < 0)
		printf("write /dev/kmsg: %s\n", strerror(errno));
	close(fd);
}

/* A DMA round trip from @src to @dst of L, with pattern @which */
static bool lu_roundtrip(struct edu *e, uint8_t *l, uint64_t src,
			 uint64_t dst, unsigned int which, const char *what)
{
	uint8_t p[XFER];

	pattern(p, XFER, which);
	memcpy(l + src, p, XFER);
	if (dma_to_dev(e, LU_IOVA + src) || dma_to_ram(e, LU_IOVA + dst))
		return false;
	return check_landed(what, l, LU_SIZE, dst, p, GUARD);
}

/*
 * The new VMM takes the device over: vfio-pci, a new iommufd, the HWPT of
 * the inherited domain by its token. The device's DMA goes on through the
 * domain; a HWPT that does not map what the domain maps cannot replace it.
 */
static void lu_take_over(uint8_t *l, int lfd, const char *path)
{
	struct iommu_hwpt_lu_restore rs = {
		.size = sizeof(rs),
		.hwpt_token = LU_TOKEN + 1,
	};
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	struct iommu_hwpt_alloc ha = { .size = sizeof(ha) };
	struct edu e = { .fd = -1 };
	double t0, t1;
	uint32_t ioas;

	/* lu_edu.sh looks for a reset between the two marks */
	kmsg("edu_dma: lu-check: binding edu to vfio-pci and iommufd\n");
	if (bind_vfio() || iommufd_bind(&ioas))
		return;
	/* Opened: vfio-pci must have left the guest's DMA alone */
	if (check_master("after vfio-pci opened edu"))
		return;
	if (!ioctl(g.iommu_fd, IOMMU_HWPT_LU_RESTORE, &rs) || errno != ENOENT)
		fail("IOMMU_HWPT_LU_RESTORE of an unknown token: %s, expected ENOENT",
		     strerror(errno));
	else
		ok("IOMMU_HWPT_LU_RESTORE of an unknown token: ENOENT");
	rs.hwpt_token = LU_TOKEN;
	if (ioctl(g.iommu_fd, IOMMU_HWPT_LU_RESTORE, &rs)) {
		fail("IOMMU_HWPT_LU_RESTORE(0x%llx): %s", LU_TOKEN,
		     strerror(errno));
		return;
	}
	ok("IOMMU_HWPT_LU_RESTORE(0x%llx): HWPT %u, the inherited domain",
	   LU_TOKEN, rs.out_hwpt_id);
	if (edu_open(&e, g.dev_fd))
		return;
	lu_roundtrip(&e, l, LU_SRC_D, LU_DST_D, 103,
		     "(c) DMA through the inherited domain, bound to a new iommufd");

	/* (e): an empty HWPT would take the guest's memory away */
	ha.dev_id = g.devid;
	ha.pt_id = ioas;
	if (ioctl(g.iommu_fd, IOMMU_HWPT_ALLOC, &ha)) {
		fail("IOMMU_HWPT_ALLOC: %s", strerror(errno));
		goto out;
	}
	at.pt_id = ha.out_hwpt_id;
	if (!ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) ||
	    errno != EINVAL)
		fail("replacing the inherited domain with an empty HWPT: %s, expected EINVAL",
		     strerror(errno));
	else
		ok("replacing the inherited domain with an empty HWPT: EINVAL");
	if (!lu_roundtrip(&e, l, LU_SRC_E, LU_DST_E, 104,
			  "(e) DMA after the refused replace"))
		goto out;

	/* (d): the same memory at the same IOVA replaces it, atomically */
	kmsg("edu_dma: lu-check: replacing the inherited domain\n");
	if (ioas_map_file(ioas, lfd, LU_SIZE, LU_IOVA)) {
		fail("IOMMU_IOAS_MAP_FILE of L: %s", strerror(errno));
		goto out;
	}
	ha.pt_id = ioas;
	if (ioctl(g.iommu_fd, IOMMU_HWPT_ALLOC, &ha)) {
		fail("IOMMU_HWPT_ALLOC: %s", strerror(errno));
		goto out;
	}
	at.pt_id = ha.out_hwpt_id;
	t0 = now_us();
	if (ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		fail("replacing the inherited domain with HWPT %u, which maps L: %s",
		     ha.out_hwpt_id, strerror(errno));
		goto out;
	}
	t1 = now_us();
	ok("the inherited domain replaced by HWPT %u, which maps L at the same IOVA",
	   ha.out_hwpt_id);
	/* A figure for the note and make bench, not a check */
	printf("replace of the inherited domain (with the check of %llu MiB): %.0f us\n",
	       LU_SIZE / MiB, t1 - t0);
	if (!lu_roundtrip(&e, l, LU_SRC_D2, LU_DST_D2, 105,
			  "(d) DMA after the replace"))
		goto out;

	/* (f): the inherited domain goes, its tables freed (dmesg, .vmt) */
	{
		struct iommu_destroy de = {
			.size = sizeof(de),
			.id = rs.out_hwpt_id,
		};

		if (ioctl(g.iommu_fd, IOMMU_DESTROY, &de)) {
			fail("IOMMU_DESTROY of the inherited HWPT %u: %s",
			     rs.out_hwpt_id, strerror(errno));
			goto out;
		}
		ok("IOMMU_DESTROY of the inherited HWPT %u", rs.out_hwpt_id);
	}
	if (!truncate(path, GMFS_BLOCK) || errno != EBUSY)
		fail("truncating L, still mapped by HWPT %u: %s, expected EBUSY",
		     ha.out_hwpt_id, strerror(errno));
	lu_roundtrip(&e, l, LU_SRC_F, LU_DST_F, 106,
		     "(f) DMA after the inherited domain is gone");
out:
	edu_close(&e);
}

/* The seed and device lu-prepare saved before the kexec */
static int lu_read_state(const char *state)
{
	char path[PATH_MAX], bdf[64];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/edu_lu", state);
	f = fopen(path, "r");
	if (!f) {
		fail("%s: %s (lu-prepare did not run before this kexec)", path,
		     strerror(errno));
		return -1;
	}
	n = fscanf(f, "%63s %" SCNx64, bdf, &seed);
	fclose(f);
	if (n != 2 || strcmp(bdf, g.bdf)) {
		fail("%s: edu was %s, is %s", path, n == 2 ? bdf : "?", g.bdf);
		return -1;
	}
	return 0;
}

/* L, as lu-prepare left it, mapped; (a) must be in it */
static uint8_t *lu_map_l(const char *path, int *fd)
{
	uint8_t pa[XFER], *l;

	*fd = open(path, O_RDWR);
	if (*fd < 0) {
		fail("open %s: %s", path, strerror(errno));
		return NULL;
	}
	l = map_file(*fd, LU_SIZE, "L");
	if (!l)
		return NULL;
	pattern(pa, XFER, 100);
	check_landed("(a) the DMA before marking, still in L", l, LU_SIZE,
		     LU_DST_A, pa, GUARD);
	return l;
}

static void run_lu_check(const char *dir, const char *state)
{
	uint8_t pb[XFER], pc[XFER], *l;
	char path[PATH_MAX], drv[64];
	struct edu e = { .fd = -1 };
	int fd;

	if (lu_read_state(state))
		return;

	/* The device: no driver took it, bus mastering kept */
	dev_path(path, sizeof(path), "driver");
	if (!link_name(path, drv, sizeof(drv))) {
		fail("edu is bound to %s: a driver took the device", drv);
		return;
	}
	if (check_master("through the kexec"))
		return;

	snprintf(path, sizeof(path), "%s/%s", dir, LU_FILE);
	/* The inherited domain pinned L again at boot */
	if (!unlink(path) || errno != EBUSY)
		fail("unlink of L, which edu still reaches: %s, expected EBUSY",
		     strerror(errno));
	else
		ok("unlink of L, which edu still reaches: EBUSY");
	if (!truncate(path, GMFS_BLOCK) || errno != EBUSY)
		fail("truncating L under edu's mapping: %s, expected EBUSY",
		     strerror(errno));
	else
		ok("truncating L under edu's mapping: EBUSY");
	l = lu_map_l(path, &fd);
	if (!l)
		return;
	pattern(pb, XFER, 101);
	pattern(pc, XFER, 102);
	check_landed("(b) the DMA started just before the kexec", l, LU_SIZE,
		     LU_DST_B, pb, GUARD);

	/* (c): a round trip through the inherited translation */
	if (sysfs_edu_open(&e))
		return;
	memcpy(l + LU_SRC_C, pc, XFER);
	if (dma_to_dev(&e, LU_IOVA + LU_SRC_C) ||
	    dma_to_ram(&e, LU_IOVA + LU_DST_C))
		return;
	check_landed("(c) DMA through the handed-over translation", l, LU_SIZE,
		     LU_DST_C, pc, GUARD);
	edu_close(&e);

	lu_take_over(l, fd, path);
}

/*
 * After KHO finalize, the VMM that holds edu (lu-prepare's holder) exits
 * instead of calling reboot(): its detach must have been refused, and
 * edu's DMA must go on through the HWPT handed over with no process
 * behind it: bus mastering kept, and a DMA started through sysfs lands
 * in L. That DMA writes B where (b) goes: the next kernel checks it.
 */
static void run_lu_exit(const char *dir, const char *state)
{
	char path[PATH_MAX];
	struct edu e = { .fd = -1 };
	uint8_t pb[XFER], *l;
	int pid = 0, err, rebind, i, fd;
	FILE *f;

	if (lu_read_state(state))
		return;
	unlink(LU_EXIT);
	f = fopen(LU_PID, "r");
	if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 1) {
		fail("no holder pid in %s: did lu-prepare run?", LU_PID);
		if (f)
			fclose(f);
		return;
	}
	fclose(f);
	/* Nothing left to kick at reboot() */
	unlink(LU_PID);
	if (kill(pid, SIGUSR2)) {
		fail("signal the holder (pid %d): %s", pid, strerror(errno));
		return;
	}
	for (i = 0; i < 1000 && access(LU_EXIT, F_OK); i++)
		usleep(10000);
	f = fopen(LU_EXIT, "r");
	if (!f || fscanf(f, "detach %d rebind %d", &err, &rebind) != 2) {
		fail("the holder (pid %d) did not report its exit", pid);
		if (f)
			fclose(f);
		return;
	}
	fclose(f);
	if (err != EBUSY)
		fail("VFIO_DEVICE_DETACH_IOMMUFD_PT after finalize: %s, expected EBUSY",
		     err ? strerror(err) : "success");
	else
		ok("VFIO_DEVICE_DETACH_IOMMUFD_PT after finalize: EBUSY");
	if (rebind != EBUSY)
		fail("VFIO_DEVICE_BIND_IOMMUFD of the closed device to the same iommufd: %s, expected EBUSY",
		     rebind ? strerror(rebind) : "success");
	else
		ok("VFIO_DEVICE_BIND_IOMMUFD of the closed device to the same iommufd: EBUSY");
	ok("the VMM (pid %d) closed edu, iommufd and its mappings", pid);
	if (check_master("after the VMM exited"))
		return;

	snprintf(path, sizeof(path), "%s/%s", dir, LU_FILE);
	l = lu_map_l(path, &fd);
	if (!l)
		return;
	pattern(pb, XFER, 101);
	if (!sysfs_edu_open(&e) && !dma_to_ram(&e, LU_IOVA + LU_DST_B))
		check_landed("(b) a DMA after the VMM exited, through the HWPT handed over",
			     l, LU_SIZE, LU_DST_B, pb, GUARD);
	edu_close(&e);
	munmap(l, LU_SIZE);
	close(fd);
}

/*
 * After a kexec whose VT-d handover was damaged: the unit was blocked at
 * boot, before memory went to the page allocator, and this kernel took
 * nothing over. (a) is in L; (b), started just before the kexec, either
 * landed before the block or was stopped by it, never half of it. A DMA
 * edu is told to make now to L's old IOVA, through no translation this
 * kernel set up for it, faults: L does not change.
 */
static void run_lu_blocked(const char *dir, const char *state)
{
	uint8_t pb[XFER], *l;
	char path[PATH_MAX];
	struct edu e = { .fd = -1 };
	long i;
	int fd, n;

	if (lu_read_state(state))
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, LU_FILE);
	l = lu_map_l(path, &fd);
	if (!l)
		return;
	pattern(pb, XFER, 101);
	if (first_diff(l + LU_DST_B, pb, XFER) < 0) {
		check_landed("(b) landed before the unit was blocked", l,
			     LU_SIZE, LU_DST_B, pb, GUARD);
	} else {
		i = first_nonzero(l + LU_DST_B - GUARD, XFER + 2 * GUARD);
		if (i >= 0)
			fail("(b) neither landed nor was stopped: byte 0x%02x at offset 0x%lx",
			     l[LU_DST_B - GUARD + i], (long)(LU_DST_B - GUARD + i));
		else
			ok("(b) stopped: the DMA started just before the kexec did not land");
	}

	/* Bus mastering on, or the DMA below could not fault */
	n = fails;
	if (check_master("through the kexec") || fails != n)
		goto out;
	if (sysfs_edu_open(&e))
		goto out;
	/* edu's buffer still holds B: write it to where D would go */
	if (dma_to_ram(&e, LU_IOVA + LU_DST_D))
		goto out;
	i = first_nonzero(l + LU_DST_D - GUARD, XFER + 2 * GUARD);
	if (i >= 0)
		fail("a DMA to L's old IOVA landed in L (byte 0x%02x at 0x%lx): the old translation survived",
		     l[LU_DST_D - GUARD + i], (long)(LU_DST_D - GUARD + i));
	else
		ok("a DMA to L's old IOVA did not land: the old translation is gone");
	/* L is no device's now: nothing pinned it again */
	if (ftruncate(fd, 0))
		fail("truncating L, which no device reaches now: %s",
		     strerror(errno));
	else
		ok("L truncated: nothing pinned it in this kernel");
out:
	edu_close(&e);
	munmap(l, LU_SIZE);
	close(fd);
}

/*
 * make bench: the cost of a persistent domain by size and IOPTE size.
 *
 *   edu_dma lu-bench-prepare GMFS_DIR STATE MIB IOVA
 *   edu_dma lu-bench-check GMFS_DIR STATE MIB IOVA
 *
 * prepare maps file LB (MIB MiB) at IOVA into a HWPT edu is attached to,
 * marks it and holds it through the kexec, with no DMA; check, in the
 * next kernel, restores the HWPT, maps LB again at IOVA and times the
 * replace (with its check of the whole mapping), destroys the inherited
 * HWPT (the kernel logs the table pages freed), and removes LB. The
 * IOVA's alignment against LB's memory decides the IOPTE size: 1 GiB,
 * 2 MiB, or 4 KiB when it is only 4 KiB-aligned. The kernel logs the
 * table pages and the times of finalize and of the restore at boot.
 */
#define LUB_FILE	".gmfs_edu_lub"
#define LUB_TOKEN	0x4c55ed00000000b0ULL

static void run_lu_bench(const char *dir, bool prepare, uint64_t size,
			 uint64_t iova)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	struct iommu_hwpt_alloc ha = { .size = sizeof(ha) };
	struct iommu_hwpt_lu_restore rs = {
		.size = sizeof(rs),
		.hwpt_token = LUB_TOKEN,
	};
	struct iommu_hwpt_lu_set_preserve sp = {
		.size = sizeof(sp),
		.hwpt_token = LUB_TOKEN,
	};
	struct iommu_destroy de = { .size = sizeof(de) };
	struct edu e = { .fd = -1 };
	char path[PATH_MAX];
	double t0, t1;
	uint32_t ioas;
	pid_t pid;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, LUB_FILE);
	fd = prepare ? gmfs_create(path, size) : open(path, O_RDWR);
	if (fd < 0) {
		fail("LB: %s", strerror(errno));
		return;
	}
	if (bind_vfio() || iommufd_bind(&ioas))
		goto out;
	if (!prepare) {
		if (ioctl(g.iommu_fd, IOMMU_HWPT_LU_RESTORE, &rs)) {
			fail("IOMMU_HWPT_LU_RESTORE: %s", strerror(errno));
			goto out;
		}
		ok("IOMMU_HWPT_LU_RESTORE: HWPT %u", rs.out_hwpt_id);
	}
	t0 = now_us();
	if (ioas_map_file(ioas, fd, size, iova)) {
		fail("IOMMU_IOAS_MAP_FILE of LB: %s", strerror(errno));
		goto out;
	}
	t1 = now_us();
	printf("lu-bench: map of %llu MiB at IOVA 0x%llx: %.0f us\n",
	       (unsigned long long)(size / MiB), (unsigned long long)iova,
	       t1 - t0);
	ha.dev_id = g.devid;
	ha.pt_id = ioas;
	if (ioctl(g.iommu_fd, IOMMU_HWPT_ALLOC, &ha)) {
		fail("IOMMU_HWPT_ALLOC: %s", strerror(errno));
		goto out;
	}
	at.pt_id = ha.out_hwpt_id;
	t0 = now_us();
	if (ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		fail("%s HWPT %u: %s", prepare ? "attaching" : "replacing with",
		     ha.out_hwpt_id, strerror(errno));
		goto out;
	}
	t1 = now_us();
	if (!prepare) {
		/* A figure for make bench, not a check */
		printf("lu-bench: replace (with the check of %llu MiB): %.0f us\n",
		       (unsigned long long)(size / MiB), t1 - t0);
		de.id = rs.out_hwpt_id;
		if (ioctl(g.iommu_fd, IOMMU_DESTROY, &de))
			fail("IOMMU_DESTROY of the inherited HWPT: %s",
			     strerror(errno));
		else
			ok("replaced, and the inherited HWPT destroyed");
		goto out;
	}
	sp.hwpt_id = ha.out_hwpt_id;
	if (ioctl(g.iommu_fd, IOMMU_HWPT_LU_SET_PRESERVE, &sp)) {
		fail("IOMMU_HWPT_LU_SET_PRESERVE: %s", strerror(errno));
		goto out;
	}
	pid = lu_start_holder(&e);
	if (pid < 0)
		goto out;
	ok("HWPT %u (LB, %llu MiB at IOVA 0x%llx) marked and held by pid %d",
	   ha.out_hwpt_id, (unsigned long long)(size / MiB),
	   (unsigned long long)iova, pid);
	g.held = true;
	g.dev_fd = g.iommu_fd = -1;
out:
	close(fd);
	if (prepare)
		return;
	/* Nothing maps LB once the iommufd is closed: its blocks go back */
	close_vfio();
	if (unlink(path))
		fail("unlink LB: %s", strerror(errno));
}

/*
 * After a kexec whose iommufd handover could not be restored (the file it
 * maps is gone): edu was taken over by VT-d, then moved out of its
 * inherited domain by iommufd, which could not take it over. A DMA to L's
 * old IOVA must no longer go through the old translation: it faults
 * (lu_edu.sh finds the fault in the kernel log).
 */
/*
 * After lu-exit, the handover was aborted: iommufd detached and unbound
 * the device its VMM had closed. The HWPT's translation is gone (a DMA
 * to L's old IOVA does not land: it faults, as lu_edu.sh expects), and
 * the iommufd that was kept open for it is gone too: L is not pinned.
 */
static void run_lu_aborted(const char *dir, const char *state)
{
	char path[PATH_MAX];
	struct edu e = { .fd = -1 };
	uint8_t *l;
	long i;
	int fd;

	if (lu_read_state(state))
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, LU_FILE);
	l = lu_map_l(path, &fd);
	if (!l)
		return;
	if (lu_master_again("after the abort") || sysfs_edu_open(&e) ||
	    dma_to_ram(&e, LU_IOVA + LU_DST_D))
		goto out;
	i = first_nonzero(l + LU_DST_D - GUARD, XFER + 2 * GUARD);
	if (i >= 0)
		fail("a DMA to L's old IOVA landed after the abort (byte 0x%02x at 0x%lx)",
		     l[LU_DST_D - GUARD + i], (long)(LU_DST_D - GUARD + i));
	else
		ok("a DMA to L's old IOVA did not land: the abort detached edu");
	/* The closed iommufd goes with the unbind, its pins with it */
	for (i = 0; i < 50 && ftruncate(fd, 0); i++)
		usleep(100000);
	if (i == 50)
		fail("truncating L after the abort: %s (still pinned)",
		     strerror(errno));
	else
		ok("L truncated after the abort: no iommufd pins it any more");
out:
	edu_close(&e);
	munmap(l, LU_SIZE);
	close(fd);
}

/* Anonymous memory a new VMM maps at L's old IOVA (lu-unrestored) */
#define LU_NEW_SIZE	(64 * KiB)
#define LU_NEW_SRC	(8 * KiB + 5)
#define LU_NEW_DST	(40 * KiB + 9)

/*
 * A new VMM takes over a device whose inherited domain could not be: its
 * group can be owned (vfio-pci and iommufd bind), and a DMA through a new
 * IOAS that maps other memory at the old IOVA lands there.
 */
static void lu_new_vmm(void)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.length = LU_NEW_SIZE,
		.iova = LU_IOVA,
	};
	struct edu e = { .fd = -1 };
	uint8_t p[XFER], *buf;
	uint32_t ioas;

	if (bind_vfio() || iommufd_bind(&ioas))
		return;
	ok("a new VMM took edu over: vfio-pci and a new iommufd");
	buf = mmap(NULL, LU_NEW_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		return;
	}
	map.ioas_id = ioas;
	map.user_va = (uintptr_t)buf;
	at.pt_id = ioas;
	if (ioctl(g.iommu_fd, IOMMU_IOAS_MAP, &map)) {
		fail("IOMMU_IOAS_MAP at IOVA 0x%llx: %s", LU_IOVA,
		     strerror(errno));
		goto out;
	}
	if (ioctl(g.dev_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT(IOAS %u): %s", ioas,
		     strerror(errno));
		goto out;
	}
	if (edu_open(&e, g.dev_fd))
		goto out;
	pattern(p, XFER, 105);
	memcpy(buf + LU_NEW_SRC, p, XFER);
	if (!dma_to_dev(&e, LU_IOVA + LU_NEW_SRC) &&
	    !dma_to_ram(&e, LU_IOVA + LU_NEW_DST))
		check_landed("a DMA through the new VMM's IOAS, at L's old IOVA",
			     buf, LU_NEW_SIZE, LU_NEW_DST, p, GUARD);
	edu_close(&e);
out:
	munmap(buf, LU_NEW_SIZE);
}

/*
 * edu, bound to vfio-pci, has its group claimed and released through a
 * VFIO container, as a type1 VMM starts, but without opening the device
 * (lu_new_vmm() does that later): nothing reset edu or cleared its bus
 * mastering, so a group blocked after a handover must stay blocked
 * (checked by the DMA that follows faulting, with iommu=pt too).
 */
static int lu_container_claim(void)
{
	char path[PATH_MAX], grp[64];
	int group = -1, container = -1, r = -1;

	dev_path(path, sizeof(path), "iommu_group");
	if (link_name(path, grp, sizeof(grp))) {
		fail("%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", grp);
	group = open(path, O_RDWR);
	container = open("/dev/vfio/vfio", O_RDWR);
	if (group < 0 || container < 0)
		fail("open %s and /dev/vfio/vfio: %s", path, strerror(errno));
	else if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container))
		fail("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
	else if (ioctl(group, VFIO_GROUP_UNSET_CONTAINER))
		fail("VFIO_GROUP_UNSET_CONTAINER: %s", strerror(errno));
	else
		r = 0;
	if (!r)
		ok("edu's group %s claimed and released through a VFIO container, edu not opened",
		   grp);
	if (group >= 0)
		close(group);
	if (container >= 0)
		close(container);
	return r;
}

static void run_lu_unrestored(void)
{
	struct edu e = { .fd = -1 };
	int n = fails;

	/* Bus mastering on again, or the DMA below could not fault */
	if (lu_master_again("once iommufd gave edu up") || fails != n)
		return;
	if (bind_vfio() || lu_container_claim() || sysfs_edu_open(&e))
		return;
	if (!dma_to_ram(&e, LU_IOVA + LU_DST_D))
		ok("a DMA to L's old IOVA was made; it must fault");
	edu_close(&e);
	lu_new_vmm();
}

static void run_lu_quiesced(void)
{
	uint16_t cmd;

	if (sysfs_pci_command(&cmd))
		return;
	if (cmd & PCI_COMMAND_MASTER)
		fail("PCI_COMMAND 0x%04x: bus mastering survived a kexec that handed no DMA over",
		     cmd);
	else
		ok("PCI_COMMAND 0x%04x: the kexec stopped edu's bus mastering",
		   cmd);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX], drv[64];
	struct sigaction sa;
	struct timespec ts;
	struct statfs sf;
	const char *mode, *dir;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 6 && (!strcmp(argv[1], "lu-bench-prepare") ||
			  !strcmp(argv[1], "lu-bench-check"))) {
		/* STATE MIB IOVA */
	} else if (argc == 4 && (!strcmp(argv[1], "lu-prepare") ||
			  !strcmp(argv[1], "lu-check") ||
			  !strcmp(argv[1], "lu-exit") ||
			  !strcmp(argv[1], "lu-aborted") ||
			  !strcmp(argv[1], "lu-blocked") ||
			  !strcmp(argv[1], "lu-unrestored") ||
			  !strcmp(argv[1], "lu-quiesced"))) {
		/* both need the mode's STATE directory */
	} else if (argc != 3 || (strcmp(argv[1], "iommufd") &&
				 strcmp(argv[1], "type1") &&
				 strcmp(argv[1], "mapbench"))) {
		fprintf(stderr, "usage: %s iommufd|type1|mapbench GMFS_DIR\n"
			"       %s lu-prepare|lu-exit|lu-aborted|lu-check|lu-blocked|lu-unrestored|lu-quiesced GMFS_DIR STATE\n"
			"       %s lu-bench-prepare|lu-bench-check GMFS_DIR STATE MIB IOVA\n",
			argv[0], argv[0], argv[0]);
		return 2;
	}
	mode = argv[1];
	dir = argv[2];

	/* After a refused guestmemfs handover there is none to mount */
	if (!strcmp(mode, "lu-unrestored")) {
		memset(&sf, 0, sizeof(sf));
		goto no_fs;
	}
	if (statfs(dir, &sf)) {
		printf("FAIL: statfs %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (sf.f_type != GUESTMEMFS_MAGIC) {
		printf("FAIL: %s is not a guestmemfs (f_type 0x%lx)\n", dir,
		       (unsigned long)sf.f_type);
		return 1;
	}
	if ((uint64_t)sf.f_bsize != GMFS_BLOCK) {
		printf("FAIL: %s: f_bsize %ld, expected 2 MiB\n", dir,
		       (long)sf.f_bsize);
		return 1;
	}
no_fs:
	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 16);
	if (find_edu()) {
		printf("FAIL: no edu device (1234:11e8) on the PCI bus\n");
		return 1;
	}
	printf("edu_dma %s: edu at %s, guestmemfs %s (%llu of %llu blocks free), seed 0x%016" PRIx64 "\n",
	       mode, g.bdf, dir, (unsigned long long)sf.f_bfree,
	       (unsigned long long)sf.f_blocks, seed);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	if (!strcmp(mode, "lu-check")) {
		run_lu_check(dir, argv[3]);
	} else if (!strncmp(mode, "lu-bench-", 9)) {
		run_lu_bench(dir, !strcmp(mode, "lu-bench-prepare"),
			     strtoull(argv[4], NULL, 0) * MiB,
			     strtoull(argv[5], NULL, 0));
	} else if (!strcmp(mode, "lu-unrestored")) {
		run_lu_unrestored();
	} else if (!strcmp(mode, "lu-exit")) {
		run_lu_exit(dir, argv[3]);
	} else if (!strcmp(mode, "lu-aborted")) {
		run_lu_aborted(dir, argv[3]);
	} else if (!strcmp(mode, "lu-blocked")) {
		run_lu_blocked(dir, argv[3]);
	} else if (!strcmp(mode, "lu-quiesced")) {
		run_lu_quiesced();
	} else if (!bind_vfio()) {
		if (!strcmp(mode, "lu-prepare"))
			run_lu_prepare(dir, argv[3]);
		else if (!strcmp(mode, "iommufd"))
			run_iommufd(dir);
		else if (!strcmp(mode, "mapbench"))
			run_mapbench(dir);
		else
			run_type1(dir);
	}
	close_vfio();
	/* lu-check gives edu back: its group stays in the inherited domain */
	if (g.held || !strcmp(mode, "lu-prepare") ||
	    !strcmp(mode, "lu-exit") || !strcmp(mode, "lu-aborted") ||
	    !strcmp(mode, "lu-blocked") ||
	    !strcmp(mode, "lu-quiesced"))
		goto out;

	/* give the device back as other tests expect to find it */
	err = restore_device();
	dev_path(path, sizeof(path), "driver");
	drv[0] = '\0';
	link_name(path, drv, sizeof(drv));
	if (err)
		fail("releasing %s from vfio-pci: %s", g.bdf, strerror(-err));
	else if (strcmp(drv, g.orig_drv))
		fail("%s has driver '%s' after the test, expected '%s'", g.bdf,
		     drv, g.orig_drv);
	else
		ok("%s released: driver '%s' as before, driver_override cleared",
		   g.bdf, g.orig_drv[0] ? g.orig_drv : "none");
out:
	if (nr_dma)
		printf("%u DMAs, %.0f ms each on average\n", nr_dma, dma_ms / nr_dma);
	if (fails)
		printf("edu_dma %s: %d checks passed, %d FAILED\n", mode, passes,
		       fails);
	else
		printf("edu_dma %s: %d checks passed\n", mode, passes);
	return fails ? 1 : 0;
}
