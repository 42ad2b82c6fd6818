// Prototype (bench/tried.md 29): runc's CRIU. go-criu's version probe (swrk on a descriptor other than 3) is
// answered with the reply recorded by faas-criu-criu record (criu-version-runtime.patch; stamp not checked here);
// runc's dump and restore (swrk 3) and anything else exec the real CRIU. gcc -O2 -static -o cdisp cdisp.c
#include <unistd.h>
#include <string.h>
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
static void criu(char **argv) { argv[0] = "/usr/local/sbin/criu"; execv(argv[0], argv); _exit(127); }
int main(int argc, char **argv) {
	if (argc != 3 || strcmp(argv[1], "swrk") || !strcmp(argv[2], "3")) criu(argv);
	int fd = atoi(argv[2]);
	char buf[4096], rep[256];
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, 1000) != 1) criu(argv);
	ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	if (n != 2 || buf[0] != 0x08 || buf[1] != 0x0a) criu(argv);
	int c = open("/tmp/dockside/faas-criu-criu.version", O_RDONLY);
	ssize_t m = c < 0 ? -1 : read(c, rep, sizeof rep);
	char *nl = m > 0 ? memchr(rep, '\n', m) : NULL;
	if (!nl) criu(argv);
	recv(fd, buf, sizeof buf, 0);
	write(fd, nl + 1, rep + m - nl - 1);
	return 0;
}
