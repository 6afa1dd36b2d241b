// SPDX-License-Identifier: GPL-2.0
/*
 * kexec-reboot KERNEL INITRD CMDLINE
 *
 * Loads KERNEL and INITRD with kexec_file_load(2) and reboots into them
 * with reboot(LINUX_REBOOT_CMD_KEXEC), as a live update does. Kept apart
 * from kexec-tools so the test VM needs no shared libraries and the path
 * under test is exactly the in-kernel bzImage loader.
 *
 * A process that wants to act as late as possible before the kexec (the
 * VMM of edu_dma lu-prepare, starting a DMA that must land during it)
 * leaves its pid in /tmp/kexec-hook.pid: it gets SIGUSR1 right before
 * reboot(), and reboot() waits until it has written /tmp/kexec-hook.ack
 * (up to 2 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

static void kick_hook(void)
{
	char buf[64] = "";
	struct timespec t;
	FILE *f;
	int pid, i;

	f = fopen("/tmp/kexec-hook.pid", "r");
	if (!f)
		return;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 1 || kill(pid, SIGUSR1)) {
		fprintf(stderr, "kexec hook: no process to signal\n");
		fclose(f);
		return;
	}
	fclose(f);
	for (i = 0; i < 200; i++) {
		f = fopen("/tmp/kexec-hook.ack", "r");
		if (f && fgets(buf, sizeof(buf), f)) {
			fclose(f);
			break;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	buf[strcspn(buf, "\n")] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t);
	printf("VMTEST-STEP: kexec hook (pid %d) acted at %s s, reboot at %ld.%06ld s (CLOCK_MONOTONIC)\n",
	       pid, buf[0] ? buf : "(no ack)", (long)t.tv_sec,
	       t.tv_nsec / 1000);
	fflush(stdout);
}

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
	kick_hook();
	if (reboot(LINUX_REBOOT_CMD_KEXEC))
		fprintf(stderr, "reboot(KEXEC): %s\n", strerror(errno));
	return 1;
}
