// SPDX-License-Identifier: GPL-2.0
/*
 * timed_write PATH VALUE: write VALUE to PATH in one write(2) and print
 * how long the write took, in microseconds ("us=N"). Exit status 1, with
 * the error, if the write failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	ssize_t n;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PATH VALUE\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = write(fd, argv[2], strlen(argv[2]));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n < 0) {
		fprintf(stderr, "write %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(fd);
	printf("us=%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000 +
	       (t1.tv_nsec - t0.tv_nsec) / 1000);
	return 0;
}
