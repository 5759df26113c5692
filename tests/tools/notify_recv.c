/* Stands in for systemd's notification socket in tests: binds a datagram socket at PATH (as
 * NOTIFY_SOCKET names it) and prints each datagram received as one line, flushed, until
 * killed. Newlines inside a datagram (several assignments at once) become spaces. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_recv PATH (shorter than %zu bytes)\n",
		        sizeof(sa.sun_path));
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify_recv");
		return 1;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0) {
			perror("notify_recv: recv");
			return 1;
		}
		while (n > 0 && buf[n - 1] == '\n')
			n--;
		buf[n] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		printf("%s\n", buf);
		fflush(stdout);
	}
}
