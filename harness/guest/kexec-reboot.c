// SPDX-License-Identifier: GPL-2.0
/*
 * kexec-reboot KERNEL INITRD CMDLINE
 *
 * Loads KERNEL and INITRD with kexec_file_load(2) and reboots into them
 * with reboot(LINUX_REBOOT_CMD_KEXEC), as a live update does. Kept apart
 * from kexec-tools so the test VM needs no shared libraries and the path
 * under test is exactly the in-kernel bzImage loader.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int kfd, ifd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s KERNEL INITRD CMDLINE\n", argv[0]);
		return 2;
	}
	kfd = open(argv[1], O_RDONLY | O_CLOEXEC);
	ifd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (kfd < 0 || ifd < 0) {
		perror("open");
		return 1;
	}
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(argv[3]) + 1,
		    argv[3], 0UL)) {
		fprintf(stderr, "kexec_file_load: %s\n", strerror(errno));
		return 1;
	}
	/* The host times the reboot from here (make bench). */
	printf("VMTEST-STEP: loaded, reboot(LINUX_REBOOT_CMD_KEXEC)\n");
	fflush(stdout);
	sync();
	if (reboot(LINUX_REBOOT_CMD_KEXEC))
		fprintf(stderr, "reboot(KEXEC): %s\n", strerror(errno));
	return 1;
}
