// SPDX-License-Identifier: GPL-2.0
/*
 * edu: check that QEMU's edu PCI device (1234:11e8) answers.
 *
 * BAR0 is mapped through sysfs. The device must report identification
 * 0x010000ed, return the complement of what is written to its liveness
 * register, and compute a factorial. Later tests drive its DMA engine
 * through the IOMMU; this one proves the device is there to drive.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EDU_ID		0x00
#define EDU_LIVENESS	0x04
#define EDU_FACT	0x08
#define EDU_STATUS	0x20
#define EDU_STATUS_BUSY	0x01

static int read_hex(const char *dir, const char *file, unsigned int *val)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fscanf(f, "%x", val) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static int find_edu(char *dev, size_t len)
{
	const char *base = "/sys/bus/pci/devices";
	struct dirent *d;
	DIR *dir = opendir(base);
	int found = -1;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		char path[300];
		unsigned int ven, id;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, d->d_name);
		if (read_hex(path, "vendor", &ven) || read_hex(path, "device", &id))
			continue;
		if (ven == 0x1234 && id == 0x11e8) {
			snprintf(dev, len, "%s", path);
			found = 0;
			break;
		}
	}
	closedir(dir);
	return found;
}

int main(void)
{
	volatile uint32_t *bar;
	char dev[300], path[400];
	uint32_t v, probe = 0x5a17c0de;
	struct timespec t0, t;
	int fd, fails = 0;

	if (find_edu(dev, sizeof(dev))) {
		printf("FAIL: no edu device (1234:11e8) on the PCI bus\n");
		return 1;
	}
	printf("edu device at %s\n", dev);
	snprintf(path, sizeof(path), "%s/enable", dev);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, "1", 1) != 1) {
		perror("enable");
		return 1;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/resource0", dev);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	bar = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED) {
		perror("mmap BAR0");
		return 1;
	}

	v = bar[EDU_ID / 4];
	printf("identification 0x%08x\n", v);
	if (v != 0x010000ed) {
		printf("FAIL: identification 0x%08x, expected 0x010000ed\n", v);
		fails++;
	}

	bar[EDU_LIVENESS / 4] = probe;
	v = bar[EDU_LIVENESS / 4];
	if (v != ~probe) {
		printf("FAIL: liveness 0x%08x for 0x%08x, expected 0x%08x\n",
		       v, probe, ~probe);
		fails++;
	}

	bar[EDU_FACT / 4] = 10;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (bar[EDU_STATUS / 4] & EDU_STATUS_BUSY) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10) {
			printf("FAIL: factorial still busy after 10 s\n");
			return 1;
		}
		usleep(1000);
	}
	v = bar[EDU_FACT / 4];
	if (v != 3628800) {
		printf("FAIL: 10! = %u, expected 3628800\n", v);
		fails++;
	}
	munmap((void *)bar, 4096);
	close(fd);
	if (!fails)
		printf("edu answers: id, liveness and 10! = %u\n", v);
	return fails ? 1 : 0;
}
