/* tether-bridge: command line entry point. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "version") == 0) {
		puts("tether-bridge 0.1.0");
		return 0;
	}
	fprintf(stderr, "usage: tether-bridge [run|check|explain|auth|dlq|version] [-c FILE]\n");
	return 2;
}
