// Prototype (bench/tried.md 29): the engine runtime's path; execs runc with this directory's cdisp as its CRIU.
// gcc -O2 -static -o rt rt.c; daemon.json "runtimes": {"faas-criu": {"path": "/DIR/rt"}} (paths below are the test's).
#include <unistd.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	char **a = calloc(argc + 3, sizeof(char *));
	a[0] = "runc"; a[1] = "--criu"; a[2] = "/tmp/dockside/c/cdisp";
	for (int i = 1; i < argc; i++) a[i + 2] = argv[i];
	execv("/usr/sbin/runc", a);
	return 127;
}
