/* Composition root: argv → config → log → store → auth0 → api → loop. */
#include "build_config.h"
#include "daemon/check.h"
#include "daemon/log.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("auth0-importd %s\n", IMPORTD_VERSION);
		return 0;
	}
	log_error("main", "not implemented yet");
	return 1;
}
