/*
 * check — `auth0-importd check FILE|- [options]`: validates a users file
 * offline exactly as POST /v1/imports does (API.md, "Checking a file
 * offline"), with no config and no state.
 *
 * Diagnostics go to stdout: text (one line per problem, then a summary), or
 * with --format json the 422 body shape {errors[], errors_total, truncated,
 * warnings[], warnings_total} (plus users and format), or for a file that is
 * not a users file the problem+json body with offset/line/column.
 * Exit 0: every user valid (warnings allowed); 1: invalid users or a
 * malformed / empty / non-array file; 2: bad command line or unreadable file.
 */
#pragma once

/* argv[0] is "check" (or the program name), argv[1..] the arguments. */
int check_main(int argc, char **argv);
